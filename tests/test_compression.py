"""Text goes out compressed (Flask-Compress), and the loader's ETag/304 still works when it is."""

from __future__ import annotations

import gzip
from pathlib import Path

import brotli
import pytest
from flask.testing import FlaskClient

from tests.conftest import MakeLink

ROOT = Path(__file__).resolve().parent.parent
EMBED_JS = (ROOT / "widget" / "embed.js").read_bytes()
DECODE = {"gzip": gzip.decompress, "br": brotli.decompress}

pytestmark = pytest.mark.usefixtures("ctx")


@pytest.mark.parametrize(
    ("accept", "encoding"), [("gzip", "gzip"), ("br", "br"), ("gzip, deflate, br, zstd", "br")]
)
def test_embed_js_is_compressed_and_answers_304_to_its_encoded_etag(
    client: FlaskClient, accept: str, encoding: str
) -> None:
    with client.get("/widget/embed.js", headers={"Accept-Encoding": accept}) as first:
        assert first.status_code == 200
        assert first.headers["Content-Encoding"] == encoding
        assert "Accept-Encoding" in first.headers["Vary"]
        assert DECODE[encoding](first.get_data()) == EMBED_JS
        etag = first.headers["ETag"]
    assert etag.endswith(f':{encoding}"')
    with client.get("/widget/embed.js", headers={"Accept-Encoding": accept, "If-None-Match": etag}) as again:
        assert again.status_code == 304
        assert again.get_data() == b""
        assert "Content-Encoding" not in again.headers


def test_embed_js_uncompressed_without_accept_encoding(client: FlaskClient) -> None:
    with client.get("/widget/embed.js", headers={"Accept-Encoding": ""}) as response:
        assert "Content-Encoding" not in response.headers
        assert response.get_data() == EMBED_JS


def test_embed_js_gzipped_stays_within_its_budget(client: FlaskClient) -> None:
    """bench/run.py reports this too; 2 KB gzipped is the loader's budget."""
    with client.get("/widget/embed.js", headers={"Accept-Encoding": "gzip"}) as response:
        assert len(response.get_data()) <= 2048


def test_booking_page_and_stylesheet_are_compressed(client: FlaskClient, make_link: MakeLink) -> None:
    _link, token = make_link()
    page = client.get(f"/l/{token}", headers={"Accept-Encoding": "gzip"})
    assert page.status_code == 200
    assert page.headers["Content-Encoding"] == "gzip"
    assert b'name="csrf_token"' in gzip.decompress(page.get_data())
    with client.get("/static/app.css", headers={"Accept-Encoding": "br"}) as css:
        assert css.headers["Content-Encoding"] == "br"
        assert brotli.decompress(css.get_data()) == (ROOT / "static" / "app.css").read_bytes()


def test_small_answers_stay_plain(client: FlaskClient) -> None:
    response = client.get("/healthz", headers={"Accept-Encoding": "gzip, br"})
    assert "Content-Encoding" not in response.headers
    assert response.get_json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/widget/embed.js", "/static/app.css", "/static/booking.js"])
def test_static_text_goes_out_at_the_best_quality_not_the_pages_quick_one(
    client: FlaskClient, path: str
) -> None:
    source = ROOT / ("widget/embed.js" if path.startswith("/widget") else path.lstrip("/"))
    with client.get(path, headers={"Accept-Encoding": "br"}) as response:
        body = response.get_data()
    assert body == brotli.compress(source.read_bytes(), quality=11)
    quick = brotli.compress(source.read_bytes(), quality=client.application.config["COMPRESS_BR_LEVEL"])
    assert len(body) < len(quick)
