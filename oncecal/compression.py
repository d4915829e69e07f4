"""Files compressed once, at the best quality, before Flask-Compress (``compress`` in extensions.py) runs.

Static files and the embed loader are sent as file streams. Flask-Compress
compresses a stream chunk by chunk, without gzip, and leaves the file to be
closed by the garbage collector (a ResourceWarning); and it compresses every
answer at the quality set for pages made per request (config.py), which is
low for speed. Our text files are small and rarely change, so they are read
into memory and compressed here at the best quality, once per file version
(its ETag) and encoding; the ETag gets the encoding appended, and
If-None-Match with that ETag answers 304. Flask-Compress leaves an answer that
already has a Content-Encoding alone, but for its Vary header.
"""

from __future__ import annotations

import gzip
import threading

import brotli
from flask import request
from werkzeug.wrappers import Response

from oncecal.extensions import compress

# Larger files keep streaming untouched.
BUFFER_LIMIT = 512 * 1024
_ENCODERS = {
    "br": lambda data: brotli.compress(data, quality=11),
    "gzip": lambda data: gzip.compress(data, compresslevel=9, mtime=0),
}
_encoded: dict[tuple[str, str, str], bytes] = {}
_lock = threading.Lock()


def read_small_text_files(response: Response) -> Response:
    """Read a small text file answer into memory and compress it (an after_request hook before compress's)."""
    if not (
        response.direct_passthrough
        and response.status_code == 200
        and response.mimetype in compress.compress_mimetypes_set
        and response.content_length is not None
        and response.content_length <= BUFFER_LIMIT
    ):
        return response
    response.direct_passthrough = False
    # make_sequence reads the file and closes it when the response is closed.
    response.make_sequence()
    etag, weak = response.get_etag()
    algorithm = request.accept_encodings.best_match(compress.enabled_algorithms)
    if not etag or weak or algorithm not in _ENCODERS:
        return response
    key = (request.path, etag, algorithm)
    with _lock:
        body = _encoded.get(key)
    if body is None:
        body = _ENCODERS[algorithm](response.get_data())
        with _lock:
            _encoded[key] = body
    response.set_data(body)
    response.headers["Content-Encoding"] = algorithm
    response.set_etag(f"{etag}:{algorithm}")
    return response.make_conditional(request)
