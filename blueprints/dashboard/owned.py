"""The logged-in owner's objects by id: 404 for anyone else's."""

from __future__ import annotations

from flask import abort
from flask_login import current_user

from oncecal.extensions import db
from oncecal.models import Booking, Calendar, OneTimeLink


def own_calendar(calendar_id: int, *, archived_too: bool = False) -> Calendar:
    """The owner's calendar; an archived one only where its records are read (``archived_too``)."""
    calendar = db.session.get(Calendar, calendar_id)
    if calendar is None or calendar.owner_id != current_user.id:
        abort(404)
    if calendar.archived_at is not None and not archived_too:
        abort(404)
    return calendar


def own_link(link_id: int) -> OneTimeLink:
    link = db.session.get(OneTimeLink, link_id)
    if link is None or link.calendar.owner_id != current_user.id:
        abort(404)
    return link


def own_booking(booking_id: int) -> Booking:
    booking = db.session.get(Booking, booking_id)
    if booking is None or booking.calendar.owner_id != current_user.id:
        abort(404)
    return booking
