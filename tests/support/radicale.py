"""A real Radicale CalDAV server for the calendar-connection tests, and plain-HTTP helpers to fill it.

Radicale (pinned in requirements-dev.txt) runs as ``python -m radicale`` in
its own process group, on a free loopback port, with its config, users file,
collections and log in one folder of its own. Users are checked against an
htpasswd file in plain text (these are throwaway test passwords) that Radicale
re-reads on every request, so a user added while the server runs can log in
at once. Rights are Radicale's default ``owner_only``: each user reads and
writes below ``/<user>/`` only, and that principal collection is made by
Radicale on the user's first authenticated request.

``stop()`` then ``start()`` brings the same server back on the same port and
storage, for "the calendar server was down, then back" tests.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit
from xml.sax.saxutils import escape

import pytest
import requests

from tests.support.servers import ServerError, free_port, kill_group, stop_group

Auth = tuple[str, str]

START_TIMEOUT = 15.0
REQUEST_TIMEOUT = 10.0
READY_LINE = "Radicale server ready"
DAV = "{DAV:}"
CALDAV = "{urn:ietf:params:xml:ns:caldav}"
# A slug or user name that is one safe path segment.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class CalDAVError(RuntimeError):
    """A CalDAV request got an answer other than the expected one."""

    def __init__(self, method: str, url: str, response: requests.Response) -> None:
        self.status = response.status_code
        self.body = response.text
        super().__init__(f"{method} {url} answered {self.status}: {self.body[:2000]}")


class RadicaleServer:
    """One Radicale process on 127.0.0.1, restartable on the same port and storage.

    Everything lives in ``root``: ``config``, ``users`` (htpasswd, plain),
    ``collections/`` (the storage) and ``radicale.log`` (stdout and stderr of
    every start, appended).
    """

    def __init__(
        self, root: Path, *, port: int | None = None, auth_delay: float = 0.0, log_level: str = "info"
    ) -> None:
        """Prepare ``root``; nothing runs until start().

        ``port`` None picks a free one at the first start and keeps it.
        ``auth_delay`` is Radicale's ``[auth] delay``, the seconds it waits
        before a 401/403 answer (its own default is 1; 0 keeps tests fast).
        """
        self.root = root
        self.storage_dir = root / "collections"
        self.users_file = root / "users"
        self.config_file = root / "config"
        self.log_path = root / "radicale.log"
        self._fixed_port = port
        self._port: int | None = port
        self._auth_delay = auth_delay
        self._log_level = log_level
        self._process: subprocess.Popen[bytes] | None = None
        self._users: dict[str, str] = {}
        self._started_before = False
        self._log_offset = 0  # where this start's part of the log begins
        self._lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)
        self.storage_dir.mkdir(exist_ok=True)
        if not self.users_file.exists():
            self.users_file.write_text("")

    @property
    def port(self) -> int:
        if self._port is None:
            raise ServerError("the Radicale server has no port before its first start()")
        return self._port

    @property
    def url(self) -> str:
        """The server root, ``http://127.0.0.1:PORT/``."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log(self, last: int = 4000) -> str:
        """Return the tail of the server's log."""
        try:
            return self.log_path.read_text(errors="replace")[-last:]
        except OSError:
            return ""

    def start(self, timeout: float = START_TIMEOUT, attempts: int = 3) -> None:
        """Start Radicale and return once it answers HTTP; do nothing if it is running.

        The first start of a server without a fixed port retries on another
        free port when the picked one was taken meanwhile; later starts reuse
        the port (a test restarting the server means the same URL).
        """
        if self.running:
            return
        for attempt in range(1, attempts + 1):
            if self._port is None:
                self._port = free_port()
            try:
                self._start_once(timeout)
                return
            except ServerError:
                taken = "Address already in use" in self._log_since_start()
                if taken and self._fixed_port is None and attempt < attempts and not self._started_before:
                    self._port = None
                    continue
                raise
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> None:
        self._write_config()
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        env = {k: v for k, v in os.environ.items() if k != "RADICALE_CONFIG"}
        env["PYTHONUNBUFFERED"] = "1"
        with self.log_path.open("ab") as log:
            log.write(f"--- start on port {self.port} at {datetime.now(UTC).isoformat()}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                [sys.executable, "-m", "radicale", "--config", str(self.config_file)],
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_until_ready(timeout)
        except ServerError:
            self._stop_process(grace=5)
            raise
        self._started_before = True

    def _log_since_start(self) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def _wait_until_ready(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ServerError(
                    f"Radicale exited with {self._process.returncode} on port {self.port}; "
                    f"log {self.log_path}:\n{self.log()}"
                )
            # The log line says Radicale itself bound the port (not some other
            # process holding it); the answer says it serves requests.
            if READY_LINE in self._log_since_start():
                try:
                    requests.request("OPTIONS", self.url, timeout=1).close()
                    return
                except requests.RequestException:
                    pass
            time.sleep(0.05)
        raise ServerError(
            f"Radicale on {self.url} did not answer within {timeout}s; log {self.log_path}:\n{self.log()}"
        )

    def stop(self, grace: float = 10) -> None:
        """SIGTERM Radicale (SIGKILL after ``grace`` seconds) and wait until it is gone; storage stays."""
        self._stop_process(grace)

    def kill(self) -> None:
        """SIGKILL Radicale at once, as a crash would; storage stays."""
        if self._process is not None:
            kill_group(self._process)
            self._process = None

    def _stop_process(self, grace: float) -> None:
        if self._process is not None:
            stop_group(self._process, grace)
            self._process = None

    def __enter__(self) -> RadicaleServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def add_user(self, username: str, password: str) -> None:
        """Add a login; it works at once, running server or not (the users file is re-read per request)."""
        if not _SEGMENT.fullmatch(username):
            raise ValueError(f"user name {username!r} is not one plain path segment")
        if "\n" in password or "\r" in password:
            raise ValueError("a password cannot hold a line break")
        with self._lock:
            if username in self._users:
                raise ValueError(f"user {username!r} exists already")
            self._users[username] = password
            # Write whole and rename, so Radicale never reads half a file.
            text = "".join(f"{name}:{secret}\n" for name, secret in self._users.items())
            partial = self.users_file.with_suffix(".partial")
            partial.write_text(text)
            os.replace(partial, self.users_file)

    def make_calendar(self, username: str, password: str, slug: str, display_name: str) -> str:
        """MKCALENDAR ``/<username>/<slug>/``; return its URL."""
        return make_calendar(self.url, username, password, slug, display_name)

    def _write_config(self) -> None:
        self.config_file.write_text(
            f"""\
[server]
hosts = 127.0.0.1:{self.port}
max_connections = 32
timeout = 10
# Radicale's default waits 1 s before every 5xx answer.
delay_on_error = 0

[auth]
type = htpasswd
htpasswd_filename = {self.users_file}
htpasswd_encryption = plain
# No caching: the users file is read on every request, so new users work at once.
htpasswd_cache = False
cache_logins = False
delay = {self._auth_delay}

[rights]
type = owner_only

[storage]
filesystem_folder = {self.storage_dir}

[web]
type = none

[logging]
level = {self._log_level}
"""
        )


# --- CalDAV over plain requests -------------------------------------------------------------


def _request(
    method: str,
    url: str,
    auth: Auth,
    *,
    expect: tuple[int, ...],
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    response = requests.request(method, url, auth=auth, data=data, headers=headers, timeout=REQUEST_TIMEOUT)
    if response.status_code not in expect:
        raise CalDAVError(method, url, response)
    return response


def make_calendar(server_url: str, username: str, password: str, slug: str, display_name: str) -> str:
    """MKCALENDAR ``<server_url><username>/<slug>/`` holding VEVENTs; return its URL (ending in '/')."""
    if not _SEGMENT.fullmatch(slug):
        raise ValueError(f"calendar slug {slug!r} is not one plain path segment")
    url = urljoin(server_url, f"/{username}/{slug}/")
    body = f"""<?xml version="1.0" encoding="utf-8"?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:set>
    <D:prop>
      <D:displayname>{escape(display_name)}</D:displayname>
      <C:supported-calendar-component-set><C:comp name="VEVENT"/></C:supported-calendar-component-set>
    </D:prop>
  </D:set>
</C:mkcalendar>
"""
    _request(
        "MKCALENDAR",
        url,
        (username, password),
        expect=(201,),
        data=body.encode(),
        headers={"Content-Type": "application/xml; charset=utf-8"},
    )
    return url


def event_url(calendar_url: str, uid: str) -> str:
    """The URL these helpers store the event ``uid`` at: ``<calendar_url><uid>.ics``."""
    return f"{calendar_url}{uid}.ics"


def put_event(
    calendar_url: str,
    uid: str,
    ics_text: str,
    auth: Auth,
    *,
    if_match: str | None = None,
    if_none_match: bool = False,
) -> str:
    """PUT ``ics_text`` at ``<calendar_url><uid>.ics``; return the new ETag (quoted, as sent).

    ``if_match`` sends If-Match (an ETag, or "*"); ``if_none_match`` sends
    ``If-None-Match: *`` (create only). A failed precondition raises
    CalDAVError with status 412.
    """
    headers = {"Content-Type": "text/calendar; charset=utf-8"}
    if if_match is not None:
        headers["If-Match"] = if_match
    if if_none_match:
        headers["If-None-Match"] = "*"
    url = event_url(calendar_url, uid)
    response = _request("PUT", url, auth, expect=(201, 204), data=ics_text.encode(), headers=headers)
    etag = response.headers.get("ETag")
    if not etag:
        raise CalDAVError("PUT", url, response)
    return etag


def get_event(calendar_url: str, uid: str, auth: Auth) -> str | None:
    """GET ``<calendar_url><uid>.ics``: its text (as Radicale re-serialized it), or None on 404."""
    response = _request("GET", event_url(calendar_url, uid), auth, expect=(200, 404))
    return None if response.status_code == 404 else response.text


def delete_event(calendar_url: str, uid: str, auth: Auth, *, if_match: str | None = None) -> bool:
    """DELETE ``<calendar_url><uid>.ics``; True if it was there, False on 404."""
    headers = {"If-Match": if_match} if if_match is not None else {}
    response = _request("DELETE", event_url(calendar_url, uid), auth, expect=(200, 204, 404), headers=headers)
    return response.status_code != 404


_LIST_BODY = b"""<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/><D:resourcetype/></D:prop></D:propfind>
"""


def list_etags(calendar_url: str, auth: Auth) -> dict[str, str]:
    """PROPFIND Depth 1: ``{href: etag}`` of the calendar's objects (the collection itself left out)."""
    response = _request(
        "PROPFIND",
        calendar_url,
        auth,
        expect=(207,),
        data=_LIST_BODY,
        headers={"Depth": "1", "Content-Type": "application/xml; charset=utf-8"},
    )
    own_path = unquote(urlsplit(calendar_url).path).rstrip("/")
    found: dict[str, str] = {}
    for entry in ET.fromstring(response.content).iter(f"{DAV}response"):
        href = entry.findtext(f"{DAV}href", "")
        if unquote(urlsplit(href).path).rstrip("/") == own_path:
            continue
        found[href] = entry.findtext(f".//{DAV}getetag", "")
    return found


def list_hrefs(calendar_url: str, auth: Auth) -> list[str]:
    """PROPFIND Depth 1: the sorted hrefs (server paths, e.g. ``/user-1/work/uid.ics``) of the calendar's objects."""
    return sorted(list_etags(calendar_url, auth))


def sample_event(
    uid: str,
    *,
    summary: str = "Test event",
    start: datetime | None = None,
    minutes: int = 30,
    extra_lines: tuple[str, ...] = (),
) -> str:
    """Return a one-VEVENT iCalendar text (CRLF lines) for ``uid``; ``extra_lines`` go inside the VEVENT."""
    start = start or datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
    end = start + timedelta(minutes=minutes)
    stamp = "%Y%m%dT%H%M%SZ"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//OnceCal tests//EN",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{datetime(2030, 1, 1, tzinfo=UTC).strftime(stamp)}",
        f"DTSTART:{start.astimezone(UTC).strftime(stamp)}",
        f"DTEND:{end.astimezone(UTC).strftime(stamp)}",
        f"SUMMARY:{summary}",
        *extra_lines,
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"


# --- fixtures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalDAVAccount:
    """A fresh Radicale user: the server root URL and the login, with helpers acting as that user."""

    url: str
    username: str
    password: str
    server: RadicaleServer = field(repr=False, compare=False)

    @property
    def auth(self) -> Auth:
        return (self.username, self.password)

    @property
    def home_url(self) -> str:
        """The user's principal and calendar home, ``<url><username>/``."""
        return f"{self.url}{self.username}/"

    def calendar_url(self, slug: str) -> str:
        return f"{self.home_url}{slug}/"

    def make_calendar(self, slug: str | None = None, display_name: str | None = None) -> str:
        slug = slug or f"cal-{secrets.token_hex(3)}"
        return make_calendar(self.url, self.username, self.password, slug, display_name or slug)

    def put_event(
        self,
        calendar_url: str,
        uid: str,
        ics_text: str | None = None,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        """PUT ``ics_text`` (a sample_event for ``uid`` by default); return the ETag."""
        text = ics_text if ics_text is not None else sample_event(uid)
        return put_event(calendar_url, uid, text, self.auth, if_match=if_match, if_none_match=if_none_match)

    def get_event(self, calendar_url: str, uid: str) -> str | None:
        return get_event(calendar_url, uid, self.auth)

    def delete_event(self, calendar_url: str, uid: str, *, if_match: str | None = None) -> bool:
        return delete_event(calendar_url, uid, self.auth, if_match=if_match)

    def list_hrefs(self, calendar_url: str) -> list[str]:
        return list_hrefs(calendar_url, self.auth)

    def list_etags(self, calendar_url: str) -> dict[str, str]:
        return list_etags(calendar_url, self.auth)


# Fixtures are named apart from their functions, so a test module can import them
# without its parameters shadowing the import (ruff F811).
@pytest.fixture(scope="session", name="radicale_server")
def radicale_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    """One Radicale for the session, on a fresh storage folder; stopped at the session's end."""
    server = RadicaleServer(tmp_path_factory.mktemp("radicale"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(name="caldav_account")
def caldav_account_fixture(radicale_server: RadicaleServer) -> CalDAVAccount:
    """A new user on the running Radicale (restarted first if an earlier test stopped it)."""
    radicale_server.start()
    username = f"user-{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(12)
    radicale_server.add_user(username, password)
    return CalDAVAccount(radicale_server.url, username, password, radicale_server)
