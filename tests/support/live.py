"""The real app behind a real socket, served from a background thread."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

from oncecal.extensions import db
from tests.support.apps import make_test_app

CHROMIUM = "/usr/bin/chromium"
# Debian's Chromium, as Playwright cannot download its own browsers here.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class _ClosingBody:
    """A response body that closes what it wraps when it is dropped, whatever the server did.

    Werkzeug's development server skips the body's ``close`` when a browser
    resets the connection while it drains the request (Chromium does, on a
    page it leaves): a static file's handle was then left to the garbage
    collector, whose ResourceWarning the suite turns into an error.
    """

    def __init__(self, body: Iterable[bytes]) -> None:
        self._body = body

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()

    def __del__(self) -> None:
        self.close()


def _closing(app: Flask) -> Callable[[dict[str, Any], Any], _ClosingBody]:
    def serve(environ: dict[str, Any], start_response: Any) -> _ClosingBody:
        return _ClosingBody(app(environ, start_response))

    return serve


@dataclass(frozen=True)
class LiveServer:
    app: Flask
    url: str


@contextmanager
def live_server(database_url: str, **config: Any) -> Iterator[LiveServer]:
    """Serve the app on a fresh schema at http://127.0.0.1:<free port>."""
    # Bind first and hand the listening socket to werkzeug: the port is known
    # before the app is built (its BASE_URL needs it) and nobody can take it.
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        app = make_test_app(database_url, BASE_URL=url, **config)
        with app.app_context():
            db.create_all()
        server = make_server("127.0.0.1", port, _closing(app), threaded=True, fd=sock.fileno())
    thread = threading.Thread(target=server.serve_forever, name=f"live-server-{port}", daemon=True)
    thread.start()
    try:
        yield LiveServer(app, url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
