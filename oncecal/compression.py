"""Files read into memory before Flask-Compress (``compress`` in extensions.py) runs.

Static files and the embed loader are sent as file streams. Flask-Compress
compresses a stream chunk by chunk, without gzip, and leaves the file to be
closed by the garbage collector (a ResourceWarning). Our text files are
small, so they are read into memory first: then they are compressed whole
(Brotli or gzip), their ETag gets the encoding appended, and If-None-Match
with that ETag answers 304.
"""

from __future__ import annotations

from flask import Response

from oncecal.extensions import compress

# Larger files keep streaming untouched.
BUFFER_LIMIT = 512 * 1024


def read_small_text_files(response: Response) -> Response:
    """Read a small text file answer into memory (an after_request hook that runs before compress's)."""
    if (
        response.direct_passthrough
        and response.status_code == 200
        and response.mimetype in compress.compress_mimetypes_set
        and response.content_length is not None
        and response.content_length <= BUFFER_LIMIT
    ):
        response.direct_passthrough = False
        # make_sequence reads the file and closes it when the response is closed.
        response.make_sequence()
    return response
