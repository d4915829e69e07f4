"""Routes of a booking's own pages: its confirmation, and the invitee's cancel, reschedule and .ics."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, make_response, render_template, request, url_for
from werkzeug.wrappers import Response

from blueprints.booking import bp
from blueprints.booking.forms import CancelForm, SlotForm
from blueprints.booking.pages import SLOT_TAKEN, guard_embedding, make_form, render_page, to_booking
from oncecal.extensions import db
from oncecal.flow import flow_args
from oncecal.models import Booking, utcnow
from oncecal.services import changes
from oncecal.services.bookings import SlotUnavailable
from oncecal.services.ics import booking_ics
from oncecal.services.policy import change_policy
from oncecal.templating import reader_prefers_12_hour
from oncecal.timezones import zone


def _booking_or_404(ref: str) -> Booking:
    booking = db.session.scalar(sa.select(Booking).where(Booking.ref == ref))
    if booking is None:
        abort(404)
    return booking


@bp.get("/b/<ref>")
def confirmation(ref: str) -> tuple[str, int]:
    """Show a booking: the confirmation, and the invitee's way to cancel or move it."""
    booking = _booking_or_404(ref)
    guard_embedding(booking.calendar)
    return _manage_page(booking, make_form(f"b:{booking.id}", CancelForm), status=200)


def _manage_page(
    booking: Booking, cancel_form: CancelForm, *, status: int, notice: str | None = None
) -> tuple[str, int]:
    calendar = booking.calendar
    args = flow_args()
    tz_name = args.get("tz") or booking.invitee_timezone
    page = render_template(
        "booking/confirmation.html",
        booking=booking,
        calendar=calendar,
        owner=calendar.owner,
        tz=zone(tz_name),
        tz_name=tz_name,
        calendar_tz=zone(calendar.timezone),
        flow=args,
        policy=change_policy(booking, utcnow()),
        cancel_form=cancel_form,
        notice=notice,
    )
    return page, status


def _refused(ref: str, status: int = 409) -> tuple[str, int]:
    """The manage page again, saying why the change is closed (read as the booking is now)."""
    booking = _booking_or_404(ref)
    notice = change_policy(booking, utcnow()).reason
    return _manage_page(booking, make_form(f"b:{booking.id}", CancelForm), status=status, notice=notice)


@bp.post("/b/<ref>/cancel")
def cancel(ref: str) -> Response | tuple[str, int]:
    """Cancel a booking as its invitee, within the owner's rules."""
    booking = _booking_or_404(ref)
    guard_embedding(booking.calendar)
    form = make_form(f"b:{booking.id}", CancelForm)
    if booking.cancelled_at is not None:
        return to_booking(booking)
    if not form.validate():
        return _manage_page(booking, form, status=400)
    try:
        changes.cancel_booking(
            booking.id, utcnow(), by="invitee", reason=form.reason.data, twelve_hour=reader_prefers_12_hour()
        )
    except changes.ChangeRefused:
        booking = _booking_or_404(ref)
        notice = change_policy(booking, utcnow()).reason
        return _manage_page(booking, form, status=409, notice=notice)
    return to_booking(booking)


@bp.route("/b/<ref>/reschedule", methods=["GET", "POST"])
def reschedule(ref: str) -> Response | tuple[str, int]:
    """Move a booking to another free time; it never needs or uses a one-time link."""
    booking = _booking_or_404(ref)
    calendar = booking.calendar
    guard_embedding(calendar)
    now = utcnow()
    if not change_policy(booking, now).can_reschedule:
        return _refused(ref)
    scope = f"r:{booking.id}"
    action = url_for("booking.reschedule", ref=ref, **flow_args())
    form = make_form(scope, SlotForm)
    if request.method == "GET":
        form.timezone.data = booking.invitee_timezone
        return render_page(calendar, form, now=now, status=200, action=action, moving=booking)
    if not form.validate():
        return render_page(calendar, form, now=now, status=400, action=action, moving=booking)
    assert form.slot_start is not None
    try:
        moved = changes.reschedule_booking(
            booking.id, form.slot_start, now, twelve_hour=reader_prefers_12_hour()
        )
    except changes.ChangeRefused:
        return _refused(ref)
    except SlotUnavailable:
        booking = _booking_or_404(ref)
        fresh = make_form(scope, SlotForm)
        return render_page(
            booking.calendar, fresh, now=now, status=409, action=action, notice=SLOT_TAKEN, moving=booking
        )
    return to_booking(moved)


@bp.get("/b/<ref>/invite.ics")
def invite_ics(ref: str) -> Response:
    """Download the booking as an iCalendar file."""
    booking = _booking_or_404(ref)
    response = make_response(booking_ics(booking))
    response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    response.headers["Content-Disposition"] = 'attachment; filename="invite.ics"'
    return response
