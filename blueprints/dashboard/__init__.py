"""The owner dashboard: calendars, Share dialog, links and bookings."""

from flask import Blueprint

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

from blueprints.dashboard import integrations, routes  # noqa: E402,F401
