"""A CalDAV account through the ``caldav`` library: discovery, events in a window, and writing one event.

Every request goes through the guarded session of oncecal.services.remote
(the library's own session is replaced), so the address rules hold for
discovery, redirects and writes alike. The library parses the server's XML
with entity expansion off (lxml, ``resolve_entities=False``): a
billion-laughs answer is an error, not a blow-up.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote, urljoin, urlsplit

from caldav.davclient import DAVClient
from caldav.lib import error as caldav_error
from lxml import etree

from oncecal.services import remote
from oncecal.services.remote import AuthFailed, Guard, RemoteError


@dataclass(frozen=True)
class Account:
    url: str
    username: str
    password: str = field(repr=False)
    guard: Guard

    @property
    def timeout(self) -> float:
        return self.guard.timeout


@dataclass(frozen=True)
class Found:
    """A calendar collection the account has: its URL and display name."""

    url: str
    name: str


class EventGone(RemoteError):
    """The event is not (or no longer) on the server."""


class EventChanged(RemoteError):
    """The server's event is not the one written last (its ETag moved, or one exists already)."""


@contextmanager
def _client(account: Account, url: str | None = None) -> Iterator[DAVClient]:
    client = DAVClient(
        url=url or account.url,
        username=account.username,
        password=account.password,
        timeout=account.timeout,  # type: ignore[arg-type]
        enable_rfc6764=False,  # its DNS and well-known look-ups would bypass the guard: done below
    )
    client.session.close()
    client.session = remote.session(account.guard)
    try:
        yield client
    except RemoteError:
        raise
    except caldav_error.AuthorizationError:
        raise AuthFailed("The server refused the username or password.") from None
    except etree.XMLSyntaxError:
        raise RemoteError("The server's answer is not valid WebDAV XML.") from None
    except caldav_error.DAVError as failure:
        # Not the library's message: it quotes what the server sent.
        raise RemoteError(f"The CalDAV server refused a request ({type(failure).__name__}).") from None
    except Exception as failure:
        raise RemoteError(remote.describe(failure)) from None
    finally:
        client.session.close()


def service_url(account: Account) -> str:
    """The account's CalDAV URL: a bare host is looked up at /.well-known/caldav (RFC 6764), redirects followed."""
    remote.check_url(account.url)
    parts = urlsplit(account.url)
    if parts.path not in ("", "/"):
        return account.url
    well_known = urljoin(account.url, "/.well-known/caldav")
    try:
        with remote.session(account.guard) as http:
            response = http.request(
                "PROPFIND",
                well_known,
                headers={"Depth": "0"},
                auth=(account.username, account.password),
                timeout=account.timeout,
                allow_redirects=True,
            )
    except Exception as failure:
        raise RemoteError(remote.describe(failure)) from None
    if response.status_code == 401:
        raise AuthFailed("The server refused the username or password.")
    if response.status_code in (200, 207) and response.url:
        return str(response.url)
    return account.url


def discover(account: Account) -> tuple[str, list[Found]]:
    """Find the account's calendars: the service URL, the principal, its calendar-home-set, a Depth 1 PROPFIND.

    Returns the service URL and the calendars that hold events. Raises
    AuthFailed or RemoteError.
    """
    url = service_url(account)
    with _client(account, url) as client:
        principal = client.principal()  # type: ignore[no-untyped-call]
        found = []
        for calendar in principal.calendars():
            components = calendar.get_supported_components()
            if components and "VEVENT" not in components:
                continue  # a task list or a journal
            href = str(calendar.url)
            name = calendar.get_display_name() or href.rstrip("/").rsplit("/", 1)[-1]
            found.append(Found(href, str(name)))
    return url, found


def events_between(account: Account, calendar_url: str, after: datetime, before: datetime) -> list[bytes]:
    """Return the calendar's events that may fall in [after, before) as iCalendar texts, recurrences unexpanded.

    The server filters by time range (a calendar-query REPORT); the caller
    expands recurrences itself (oncecal.services.busy).
    """
    with _client(account, calendar_url) as client:
        calendar = client.calendar(url=calendar_url)  # type: ignore[no-untyped-call]
        objects = calendar.search(start=after, end=before, event=True, expand=False)
        return [_as_bytes(obj.data) for obj in objects]


def _as_bytes(data: str | bytes) -> bytes:
    return data.encode() if isinstance(data, str) else data


def event_href(calendar_url: str, uid: str) -> str:
    """Where an event with ``uid`` is put in a calendar collection."""
    return urljoin(
        calendar_url if calendar_url.endswith("/") else calendar_url + "/", quote(uid, safe="@.-_") + ".ics"
    )


def put_event(
    account: Account, href: str, ics: bytes, etag: str | None, *, unconditional: bool = False
) -> tuple[int, str | None]:
    """PUT an event: a new one (``If-None-Match: *``) or the one with ``etag`` (``If-Match``).

    Returns the server's status and the event's new ETag.

    Raises EventChanged on 412 (an event is there already, or it changed).
    """
    headers = {"Content-Type": "text/calendar; charset=utf-8"}
    if not unconditional:
        headers["If-Match" if etag else "If-None-Match"] = etag or "*"
    with _client(account, href) as client:
        response = client.request(href, "PUT", ics.decode(), headers)
        status = response.status
        if status == 412:
            raise EventChanged("The event in the calendar changed since OnceCal wrote it.")
        if status not in (200, 201, 204):
            raise RemoteError(f"The server answered HTTP {status} to writing the event.")
        new_etag = response.headers.get("ETag")
        return status, str(new_etag) if new_etag else None


def current_etag(account: Account, href: str) -> str | None:
    """The ETag the event at ``href`` has now; raises EventGone on 404."""
    with _client(account, href) as client:
        response = client.request(href, "HEAD")
        if response.status == 404:
            raise EventGone("The event is no longer in the calendar.")
        if response.status >= 300:
            raise RemoteError(f"The server answered HTTP {response.status} to reading the event.")
        etag = response.headers.get("ETag")
        return str(etag) if etag else None


def delete_event(account: Account, href: str) -> int:
    """DELETE an event; one that is gone already counts as deleted. Returns the server's status."""
    with _client(account, href) as client:
        response = client.request(href, "DELETE")
        if response.status not in (200, 204, 404, 410):
            raise RemoteError(f"The server answered HTTP {response.status} to deleting the event.")
        return int(response.status)
