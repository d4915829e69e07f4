"""A tiny HTTP server whose answers each test sets per path: to play a slow, huge or hostile server.

    url = http_stub.route("/dav/", b"<not xml", status=207, methods=("PROPFIND",))
    http_stub.route("/old", b"", status=302, headers={"Location": "/dav/"})
    http_stub.route("/big", Repeated(b"x" * 65536, 11 * 1024 * 1024))
    ...
    assert http_stub.hits["/dav/"] == 1

It is stdlib ``ThreadingHTTPServer`` in a daemon thread on 127.0.0.1 at a
free port, speaking HTTP/1.1. A route answers the methods it was given (any
method name: PROPFIND, REPORT, PUT...); another method on a routed path gets
405, an unrouted path 404. Every request is counted in ``hits`` (by path,
without the query) and kept in ``requests``. ``stop()`` does not wait for a
handler sleeping in its ``delay``: the sleep is cut short and the
connections are shut down. A route callable that raises is answered 500 and
its exception kept in ``errors``.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

CHUNK = 64 * 1024
# Entity expansion to about 3 GB from a few hundred bytes ("billion laughs"); a safe parser refuses it.
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<D:multistatus xmlns:D="DAV:"><D:response><D:href>&lol9;</D:href></D:response></D:multistatus>
"""


@dataclass(frozen=True)
class Repeated:
    """A body of ``total`` bytes made of ``chunk`` repeated (the last piece cut): a big body held small.

    Unlike a generator it can be sent any number of times, and its known
    length goes out as Content-Length.
    """

    chunk: bytes
    total: int

    def __post_init__(self) -> None:
        if not self.chunk:
            raise ValueError("the chunk is empty")

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> Iterator[bytes]:
        left = self.total
        while left > 0:
            piece = self.chunk[:left]
            left -= len(piece)
            yield piece


@dataclass(frozen=True)
class StubRequest:
    """One request as the stub received it."""

    method: str
    path: str  # without the query
    query: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


@dataclass(frozen=True)
class StubResponse:
    """What a callable route may return to choose status and headers too."""

    body: Body = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


# bytes are sent whole; an iterable of bytes is streamed, with Content-Length for a
# Repeated, list or tuple, else chunked. A generator is spent after one request: pass a
# callable that makes one, or a Repeated.
Body = bytes | Iterable[bytes]
Handler = Callable[[StubRequest], "Body | StubResponse"]


@dataclass(frozen=True)
class Route:
    body: Body | Handler
    status: int
    headers: dict[str, str]
    delay: float
    chunk_delay: float
    chunk_size: int


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler still sleeping or sending never holds up stop()
    stub: HTTPStub

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gives up mid-answer (a timeout, a size limit) is what the tests provoke.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle kept-alive connection is dropped after this

    def setup(self) -> None:
        super().setup()
        self.server.stub._opened(self.connection)

    def finish(self) -> None:
        with suppress(OSError):
            super().finish()
        self.server.stub._closed(self.connection)

    def log_message(self, *_args: Any) -> None:
        pass

    def __getattr__(self, name: str) -> Callable[[], None]:
        # do_GET, do_PROPFIND, do_BREW...: every method goes to one place.
        if name.startswith("do_"):
            return self._answer
        raise AttributeError(name)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self) -> None:
        stub = self.server.stub
        split = urlsplit(self.path)
        request = StubRequest(
            method=self.command,
            path=split.path,
            query=split.query,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self._read_body(),
        )
        route = stub._record(request)
        try:
            if route is None:
                allowed = stub._methods(request.path)
                if allowed:
                    self._send(405, {"Allow": ", ".join(sorted(allowed))}, b"method not allowed\n")
                else:
                    self._send(404, {}, b"not found\n")
                return
            if route.delay and stub._stopping.wait(route.delay):
                self.close_connection = True
                return
            status, headers, body = route.status, dict(route.headers), route.body
            if callable(body):
                try:
                    made = body(request)
                except Exception as error:
                    stub.errors.append(error)
                    self._send(500, {}, f"the route's callable raised {error!r}\n".encode())
                    return
                if isinstance(made, StubResponse):
                    status, body = made.status, made.body
                    headers.update(made.headers)
                else:
                    body = made
            self._send(status, headers, body, route.chunk_delay, route.chunk_size)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True

    def _send(
        self,
        status: int,
        headers: dict[str, str],
        body: Body,
        chunk_delay: float = 0.0,
        chunk_size: int = CHUNK,
    ) -> None:
        stub = self.server.stub
        names = {name.lower() for name in headers}
        pieces: Iterable[bytes]
        if isinstance(body, bytes):
            length: int | None = len(body)
            pieces = (
                (body[i : i + chunk_size] for i in range(0, len(body), chunk_size)) if chunk_delay else [body]
            )
        elif isinstance(body, Repeated):
            length, pieces = body.total, body
        elif isinstance(body, list | tuple):
            length, pieces = sum(len(piece) for piece in body), body
        else:
            length, pieces = None, body
        # A test giving its own Content-Length or Transfer-Encoding (true or not) gets the
        # bytes raw, and the connection closed after them.
        own_framing = "content-length" in names or "transfer-encoding" in names
        self.close_connection = self.close_connection or own_framing
        chunked = length is None and not own_framing
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif not own_framing:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command == "HEAD":
            return
        first = True
        for piece in pieces:
            if not piece:
                continue
            if chunk_delay and not first and stub._stopping.wait(chunk_delay):
                self.close_connection = True
                return
            first = False
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class HTTPStub:
    """An HTTP server on 127.0.0.1 answering what ``route()`` registered; start() then stop()."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], Route] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.hits: Counter[str] = Counter()
        self.requests: list[StubRequest] = []
        self.errors: list[Exception] = []  # raised by route callables (answered 500)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        if self._server is None:
            raise RuntimeError("the stub is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def start(self) -> HTTPStub:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.stub = self
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(target=server.serve_forever, name="http-stub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut short handlers in their delay, shut open connections down."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> HTTPStub:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def route(
        self,
        path: str,
        body: Body | Handler = b"",
        status: int = 200,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        chunk_delay: float = 0.0,
        methods: Iterable[str] = ("GET",),
        chunk_size: int = CHUNK,
    ) -> str:
        """Answer ``methods`` on ``path`` (no query) with ``body``; return the path's full URL.

        ``body`` is bytes, an iterable of bytes (streamed: with Content-Length
        for a Repeated, list or tuple, else chunked), or a callable taking the StubRequest and
        returning either of those or a StubResponse. ``delay`` waits before the
        status line; ``chunk_delay`` waits between pieces of ``chunk_size``
        bytes (bytes bodies are cut into such pieces when it is set). A
        Content-Length in ``headers`` is sent as given, with the body raw.
        Registering a method on a path again replaces its answer.
        """
        if not path.startswith("/"):
            raise ValueError(f"path {path!r} must start with '/'")
        route = Route(body, status, dict(headers or {}), delay, chunk_delay, chunk_size)
        with self._lock:
            for method in methods:
                self._routes[(method.upper(), path)] = route
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302, methods: Iterable[str] = ("GET",)) -> str:
        """Answer ``path`` with a redirect to ``location`` (a path or a full URL); return the path's URL."""
        return self.route(path, b"", status=status, headers={"Location": location}, methods=methods)

    def reset(self) -> None:
        """Forget every route, hit and request."""
        with self._lock:
            self._routes.clear()
            self.hits.clear()
            self.requests.clear()
            self.errors.clear()

    def _record(self, request: StubRequest) -> Route | None:
        with self._lock:
            self.hits[request.path] += 1
            self.requests.append(request)
            return self._routes.get((request.method, request.path))

    def _methods(self, path: str) -> set[str]:
        with self._lock:
            return {method for method, routed in self._routes if routed == path}

    def _opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def _closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)


@pytest.fixture(name="http_stub")
def http_stub_fixture() -> Iterator[HTTPStub]:
    """A started HTTPStub with no routes, stopped after the test."""
    with HTTPStub() as stub:
        yield stub
