"""HTTP to calendar servers and feeds: one guarded session, bounded in time and size.

Every connection a calendar connection makes goes through ``session``: its
resolver refuses private and loopback addresses (unless allowed), and since
the connection is made to the addresses that resolver returned, the check is
on the address actually connected: a redirect, or a DNS answer that changes
between a check and the connection (rebinding), meets the same refusal.
Feeds are read as a stream and cut off past ``MAX_FEED_BYTES``.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import niquests
from niquests.packages.urllib3.contrib.resolver.system import SystemResolver

MAX_FEED_BYTES = 10 * 1024 * 1024
# Any one answer of a CalDAV server (a year of a busy calendar is a few MB).
MAX_ANSWER_BYTES = 25 * 1024 * 1024
TIMEOUT_SECONDS = 10.0
USER_AGENT = "OnceCal-Calendars/1"
T = TypeVar("T")


class RemoteError(Exception):
    """A calendar server or feed could not be read: the text says why, for the owner."""


class AuthFailed(RemoteError):
    """The server refused the username and password."""


class TooLarge(RemoteError):
    """The server's answer is larger than OnceCal reads."""


class PrivateAddress(RemoteError):
    """The target is a private or loopback address, and those are not allowed."""


class _GuardedResolver(SystemResolver):  # type: ignore[misc]
    """The system's resolver, refusing any answer that is not a global address.

    ``trusted``: addresses taken as global all the same (the tests' stand-in
    for a public server, since every server a test runs is on loopback).
    """

    def __init__(self, trusted: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self._trusted = trusted

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        answers = super().getaddrinfo(host, port, *args, **kwargs)
        for answer in answers:
            address = ipaddress.ip_address(str(answer[4][0]).split("%")[0])
            if not address.is_global and str(address) not in self._trusted:
                name = host.decode() if isinstance(host, bytes) else host
                raise PrivateAddress(
                    f"{name} points to a private or loopback address ({address}); "
                    "set ONCECAL_CONNECTIONS_ALLOW_PRIVATE=1 to allow that."
                )
        return answers


@dataclass(frozen=True)
class Guard:
    """Where connections may go (``allow_private``: ONCECAL_CONNECTIONS_ALLOW_PRIVATE; else global addresses
    and ``trusted``) and how long one request may take."""

    allow_private: bool = False
    trusted: frozenset[str] = frozenset()
    timeout: float = TIMEOUT_SECONDS

    @property
    def deadline(self) -> float:
        """How long one read of a calendar (a feed, a discovery, a REPORT, a write) may take in all."""
        return self.timeout * 3


def session(guard: Guard, max_bytes: int = MAX_ANSWER_BYTES) -> niquests.Session:
    """Return a new HTTP session for calendar servers: guarded unless private targets are allowed.

    Every answer's body is read by its hook, up to ``max_bytes`` and within
    the guard's timeout: a server that sends more, or trickles, is cut off
    with an error, whoever made the request (the caldav library too).
    """
    resolver = None if guard.allow_private else _GuardedResolver(guard.trusted)
    made = niquests.Session(resolver=resolver, retries=0)
    made.headers["User-Agent"] = USER_AGENT
    made.max_redirects = 5
    made.trust_env = False  # no proxy from the environment (the guard would check the proxy), no .netrc
    made.hooks["response"].append(_bounded_reader(max_bytes, guard.timeout))
    return made


def _bounded_reader(max_bytes: int, timeout: float) -> Callable[..., niquests.Response]:
    def read(response: niquests.Response, **_kwargs: Any) -> niquests.Response:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            response.close()
            raise TooLarge(_too_big(max_bytes))
        deadline = time.monotonic() + timeout
        body = bytearray()
        for chunk in response.iter_content(64 * 1024):
            body += chunk
            if len(body) > max_bytes:
                response.close()
                raise TooLarge(_too_big(max_bytes))
            if time.monotonic() > deadline:
                response.close()
                raise RemoteError("The server took too long to send its answer.")
        # What Response.content would have read, kept the way it keeps it.
        response._content = bytes(body)
        response._content_consumed = True
        return response

    return read


def check_url(url: str) -> None:
    """Refuse what is not an http(s) URL with a host, before anything is sent."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteError("Use an http:// or https:// URL.")
    if len(url) > 2000:
        raise RemoteError("That URL is too long.")


def describe(failure: BaseException) -> str:
    """The owner's words for a failed request: the guard's refusal, a timeout, or the network's reason.

    Never the library's own message: it quotes the URL, and a feed's URL is its secret.
    """
    chain = list(_chain(failure))
    for seen in chain:  # the resolver's refusal arrives wrapped in the library's errors
        if isinstance(seen, RemoteError):
            return str(seen)
    if any(isinstance(seen, niquests.exceptions.Timeout | TimeoutError) for seen in chain):
        return "The server did not answer in time."
    if any(isinstance(seen, niquests.exceptions.TooManyRedirects) for seen in chain):
        return "The server redirected too many times."
    if any(isinstance(seen, niquests.exceptions.SSLError) for seen in chain):
        return "Could not connect securely: the server's certificate was refused."
    if any(isinstance(seen, socket.gaierror) or "NameResolution" in type(seen).__name__ for seen in chain):
        return "Could not connect: the server's name does not resolve."
    reasons = [seen.strerror for seen in chain if isinstance(seen, OSError) and seen.strerror]
    if reasons:
        return f"Could not connect: {reasons[-1]}."
    if any(isinstance(seen, niquests.exceptions.ConnectionError | OSError) for seen in chain):
        return "Could not connect to the server."
    return f"The request failed ({type(failure).__name__})."


def _chain(failure: BaseException) -> Iterator[BaseException]:
    """The failure, what caused it, and the errors its arguments carry (urllib3 keeps its reason there)."""
    seen: set[int] = set()
    todo: list[BaseException] = [failure]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [
            c
            for c in (current.__cause__, current.__context__, getattr(current, "reason", None))
            if isinstance(c, BaseException)
        ]
        todo += [a for a in current.args if isinstance(a, BaseException)]


def within(seconds: float, read: Callable[..., T], *args: Any) -> T:
    """Run ``read(*args)`` (network only, no database) on a thread; RemoteError if it is not done in ``seconds``.

    Each request is bounded per socket read and in its body; this bounds
    the whole of it, however slowly a hostile server trickles its headers.
    A read left behind ends with its own timeouts, its result unused.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = read(*args)
        except BaseException as failure:  # handed to the caller below
            outcome["error"] = failure

    thread = threading.Thread(target=run, name="calendar-read", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise RemoteError(f"The server took longer than {seconds:g} s in all.")
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


def read_feed(
    url: str,
    guard: Guard,
    *,
    max_bytes: int = MAX_FEED_BYTES,
) -> bytes:
    """GET an ICS feed whole, within the guard's timeout and ``max_bytes``; raise RemoteError."""
    check_url(url)
    try:
        with session(guard, max_bytes) as http:
            response = http.get(url, timeout=guard.timeout, headers={"Accept": "text/calendar"})
    except RemoteError:
        raise
    except Exception as failure:
        raise RemoteError(describe(failure)) from None
    if response.status_code in (401, 403):
        raise RemoteError(f"The feed refused access (HTTP {response.status_code}).")
    if response.status_code != 200:
        raise RemoteError(f"The feed answered HTTP {response.status_code}.")
    return response.content or b""


def _too_big(max_bytes: int) -> str:
    return f"The answer is larger than {max_bytes // (1024 * 1024)} MB, the most OnceCal reads."
