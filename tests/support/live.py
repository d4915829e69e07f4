"""The real app behind a real socket, served from a background thread."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
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
        server = make_server("127.0.0.1", port, app, threaded=True, fd=sock.fileno())
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
