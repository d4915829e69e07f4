"""The owner dashboard: calendars and their Share dialog, links, bookings, profile, integrations, connections."""

from flask import Blueprint
from flask_login import login_required

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")


@bp.before_request
@login_required
def _owners_only() -> None:
    """Every dashboard page needs a logged-in owner."""


from blueprints.dashboard import bookings, calendars, connections, integrations, links, profile  # noqa: E402,F401
