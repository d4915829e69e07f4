"""The bookings on the owner's calendars: a calendar's list, cancelling one, the CSV export of all."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from blueprints.dashboard import bp
from blueprints.dashboard.csv_files import csv_download, csv_safe
from blueprints.dashboard.forms import CancelBookingForm
from blueprints.dashboard.owned import own_booking, own_calendar
from oncecal.models import utcnow
from oncecal.services import bookings, calendars, changes

BOOKINGS_CSV_HEADER = (
    "calendar",
    "start",
    "end",
    "invitee_name",
    "invitee_email",
    "notes",
    "status",
    "cancelled_by",
    "link_id",
    "booked_at",
)


@bp.get("/calendars/<int:calendar_id>/bookings")
def calendar_bookings(calendar_id: int) -> str:
    """List a calendar's upcoming and past bookings."""
    calendar = own_calendar(calendar_id, archived_too=True)
    now = utcnow()
    return render_template(
        "dashboard/bookings.html",
        calendar=calendar,
        upcoming=bookings.bookings_of(calendar.id, now, upcoming=True),
        past=bookings.bookings_of(calendar.id, now, upcoming=False),
        cancel_form=CancelBookingForm(),
    )


@bp.post("/bookings/<int:booking_id>/cancel")
def cancel_booking(booking_id: int) -> Response:
    """Cancel a booking; its time is free again and its link stays used."""
    booking = own_booking(booking_id)
    form = CancelBookingForm()
    if not form.validate_on_submit():
        abort(400)
    changes.cancel_booking(booking.id, utcnow(), by="owner", reason=form.message.data)
    flash(f"Cancelled the booking of {booking.invitee_name}.", "info")
    return redirect(url_for("dashboard.calendar_bookings", calendar_id=booking.calendar_id))


@bp.get("/bookings.csv")
def export_bookings() -> Response:
    """Export every booking of the owner's calendars as CSV, deleted (archived) calendars included."""
    rows = (
        [
            csv_safe(calendar_name),
            booking.start_at.isoformat(),
            booking.end_at.isoformat(),
            csv_safe(booking.invitee_name),
            csv_safe(booking.invitee_email),
            csv_safe(booking.invitee_notes or ""),
            "cancelled" if booking.cancelled_at else "confirmed",
            booking.cancelled_by or "",
            booking.link_id or "",
            booking.created_at.isoformat(),
        ]
        for booking, calendar_name in calendars.bookings_of_owner(current_user.id)
    )
    return csv_download("bookings.csv", BOOKINGS_CSV_HEADER, rows)
