"""Invitee-facing pages: one-time links, public calendar pages, confirmations."""

from flask import Blueprint

bp = Blueprint("booking", __name__)

from blueprints.booking import manage, routes  # noqa: E402,F401
