"""Response headers every page gets: content policy, framing rules, sniffing, HSTS."""

from __future__ import annotations

from flask import Flask, Response, g, request

from oncecal.embed import frame_stylesheet

EMBEDDABLE_BLUEPRINTS = {"booking"}
# The demo host page stands for a customer's site, with its own inline script.
UNPOLICED_BLUEPRINTS = {"demo"}
# No inline scripts anywhere: every script is a file served by the app. No
# inline style either, but on the pages that may be framed the one stylesheet
# a page in a frame carries inline, named by its hash (embed.frame_stylesheet).
CONTENT_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'{frame_style}; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'"
)


def init_app(app: Flask) -> None:
    """Register the header policy."""
    production = app.config["ENV_NAME"] == "production"

    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.blueprint in UNPOLICED_BLUEPRINTS:
            return response
        if request.blueprint in EMBEDDABLE_BLUEPRINTS:
            # Booking pages may be framed by any site unless their calendar
            # lists the origins allowed to embed it.
            ancestors = g.get("frame_ancestors")
            policy = CONTENT_POLICY.format(frame_style=f" {frame_stylesheet().source}")
            policy = f"{policy}; {ancestors}" if ancestors else policy
        else:
            policy = CONTENT_POLICY.format(frame_style="") + "; frame-ancestors 'none'"
            response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy", policy)
        if production:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response
