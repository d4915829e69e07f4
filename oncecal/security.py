"""Response headers every page gets: framing rules, sniffing, HSTS."""

from __future__ import annotations

from flask import Flask, Response, g, request

EMBEDDABLE_BLUEPRINTS = {"booking"}


def init_app(app: Flask) -> None:
    """Register the header policy."""
    production = app.config["ENV_NAME"] == "production"

    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if request.blueprint in EMBEDDABLE_BLUEPRINTS:
            # Booking pages may be framed by any site unless their calendar
            # lists the origins allowed to embed it.
            policy = g.get("frame_ancestors")
            if policy:
                response.headers["Content-Security-Policy"] = policy
        else:
            response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
            response.headers.setdefault("X-Frame-Options", "DENY")
        if production:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response
