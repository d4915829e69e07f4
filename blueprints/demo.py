"""A stand-in customer website that embeds OnceCal (development only).

Open it on another site than the app (http://localhost:5000 when the app is
http://127.0.0.1:5000) to see the embed work across sites, as it will on a
real customer's page.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request

from oncecal.embed import INLINE_RESERVED_PX
from oncecal.services.tokens import looks_like_token
from oncecal.urls import base_url, link_url

bp = Blueprint("demo", __name__)


@bp.get("/demo/host")
def host_page() -> str:
    """Show a sample website with an inline widget and a popup button."""
    inline, popup = (request.args.get(k, "") for k in ("inline", "popup"))
    theme = request.args.get("theme") if request.args.get("theme") in ("light", "dark", "auto") else None
    return render_template(
        "demo/host.html",
        inline_url=link_url(inline) if looks_like_token(inline) else None,
        popup_url=link_url(popup) if looks_like_token(popup) else None,
        app_base=base_url(),
        theme=theme,
        inline_reserved_px=INLINE_RESERVED_PX,
    )
