"""`flask --app app serve`: OnceCal facing browsers directly, on Waitress (what `make run` runs).

Gunicorn's sync workers belong behind a buffering proxy such as nginx: each
holds one connection from its first byte to its last, so two idle sockets (a
browser's preconnects, or a slowloris) hold two workers until their timeout.
Waitress reads requests and writes answers on one event loop and hands only
complete requests to its threads: an idle or slow client costs a socket, not
a thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import click
import waitress
from flask.cli import ScriptInfo, pass_script_info

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

access_log = logging.getLogger("oncecal.access")
# Waitress stops accepting at 100 open connections by default: 100 idle
# sockets would hold it until they time out (120 s). Its event loop uses
# select(), which cannot watch descriptors past 1024.
CONNECTION_LIMIT = 500


def access_logged(app: WSGIApplication) -> WSGIApplication:
    """Wrap a WSGI app to log one line per request (Waitress has no access log of its own)."""

    def logged(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.monotonic()
        status = "-"
        size = "-"

        def start(status_line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            nonlocal status, size
            status = status_line.split(" ", 1)[0]
            size = next((value for name, value in headers if name.lower() == "content-length"), "-")
            return start_response(status_line, headers, exc_info)

        try:
            return app(environ, start)
        finally:
            target = environ.get("PATH_INFO", "")
            if environ.get("QUERY_STRING"):
                target += "?" + environ["QUERY_STRING"]
            access_log.info(
                '%s "%s %s %s" %s %s %.1f ms',
                environ.get("REMOTE_ADDR", "-"),
                environ.get("REQUEST_METHOD", "-"),
                target,
                environ.get("SERVER_PROTOCOL", "-"),
                status,
                size,
                (time.monotonic() - started) * 1000,
            )

    return logged


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option("--threads", type=click.IntRange(1, 64), default=8, show_default=True)
@pass_script_info
def serve(info: ScriptInfo, host: str, port: int, threads: int) -> None:
    """Serve the app on Waitress, facing browsers directly (no proxy in front needed)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # No trusted_proxy: X-Forwarded-* headers from clients are not believed.
    waitress.serve(
        access_logged(info.load_app()),
        host=host,
        port=port,
        threads=threads,
        connection_limit=CONNECTION_LIMIT,
    )
