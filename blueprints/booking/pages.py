"""What the invitee pages share: the embedding guard, the forms, the booking page itself."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import partial
from typing import TypeVar, overload
from zoneinfo import ZoneInfo

from flask import current_app, g, redirect, render_template, request, url_for
from werkzeug.exceptions import Forbidden
from werkzeug.wrappers import Response

from blueprints.booking.forms import BookingForm, FormScope, SignedForm, SlotForm
from oncecal.app_objects import runtime
from oncecal.embed import frame_ancestors, host_allowed
from oncecal.flow import first_day_arg, flow_args
from oncecal.forms import entered
from oncecal.models import Booking, Calendar, OneTimeLink
from oncecal.services import bookings, connections
from oncecal.services.bookings import Booked, Invitee
from oncecal.services.policy import change_rules
from oncecal.templating import reader_prefers_12_hour, slot_texts
from oncecal.timezones import zone, zone_choices
from oncecal.week import week_of_slots

F = TypeVar("F", bound=SignedForm)


def guard_embedding(calendar: Calendar) -> None:
    """Apply the calendar's list of sites allowed to embed it."""
    allowed = calendar.embed_origins or []
    g.frame_ancestors = frame_ancestors(allowed)
    host = flow_args().get("host")
    if host and not host_allowed(host, allowed):
        raise Forbidden(f"The owner of this calendar has not allowed it to be embedded on {host}.")


@overload
def make_form(scope: str, /, **data: object) -> BookingForm: ...
@overload
def make_form(scope: str, form_class: type[F], /, **data: object) -> F: ...
def make_form(scope: str, form_class: type[SignedForm] = BookingForm, /, **data: object) -> SignedForm:
    """The form of a page, bound to its scope's signed form id; filled from the POST, if any."""
    context = FormScope(runtime().form_tokens, scope, current_app.config["FORM_TOKEN_MAX_AGE"])
    formdata = request.form if request.method == "POST" else None
    return form_class(formdata, meta={"csrf_context": context}, data=data or None)


def invitee_of(form: BookingForm) -> Invitee:
    """The invitee as the booking form names them, with the clock their browser reads."""
    return Invitee(
        name=entered(form.name),
        email=entered(form.email),
        timezone=entered(form.timezone),
        notes=form.notes.data or None,
        twelve_hour=reader_prefers_12_hour(),
    )


def to_booking(booking: Booking | Booked) -> Response:
    """See the booking: its confirmation page (303, with the embed's flow arguments)."""
    return redirect(url_for("booking.confirmation", ref=booking.ref, **flow_args()), code=303)


def shown_zone(calendar: Calendar, form: SlotForm | None = None) -> str:
    args = flow_args()
    if "tz" in args:
        return args["tz"]
    if form is not None and form.timezone.data and not form.timezone.errors:
        return form.timezone.data
    return calendar.timezone


def first_day(calendar: Calendar, tz: ZoneInfo, now: datetime) -> date | None:
    """Return the first day the request asks to show, if the page offers anything then."""
    # The horizon, and a day more: in the invitee's zone its last slot may be on the next date.
    last_day = (now + timedelta(days=calendar.days_ahead + 1)).astimezone(tz).date()
    return first_day_arg(now.astimezone(tz).date(), last_day)


def render_page(
    calendar: Calendar,
    form: SlotForm,
    *,
    now: datetime,
    status: int,
    action: str,
    notice: str | None = None,
    moving: Booking | None = None,
    view_args: dict[str, str] | None = None,
    link: OneTimeLink | None = None,
) -> tuple[str, int]:
    connections.refresh_stale(calendar, now)
    tz_name = shown_zone(calendar, form)
    tz = zone(tz_name)
    # Lazily: only the shown week (and the first slot after it) is computed.
    slots = bookings.iter_open_slots(calendar, now, ignoring=moving.id if moving else None)
    if moving is not None:
        # Moving to the time it already has is no move: not offered.
        slots = (slot for slot in slots if slot != moving.start_at)
    shown_first = first_day(calendar, tz, now)
    week = week_of_slots(slots, tz, now.astimezone(tz).date(), shown_first)
    form.timezone.data = tz_name
    endpoint = request.endpoint
    assert endpoint is not None  # a page of a route
    return (
        render_template(
            "booking/page.html",
            calendar=calendar,
            owner=calendar.owner,
            form=form,
            week=week,
            tz_name=tz_name,
            tz=tz,
            zones=zone_choices(tz_name),
            action=action,
            flow=flow_args(),
            notice=notice,
            has_any_slot=week.first_open is not None,
            slot_texts=partial(slot_texts, tz=tz, twelve_hour=reader_prefers_12_hour()),
            chosen=form.slot.data,
            moving=moving,
            change_rules=change_rules(calendar, link),
            first_day=shown_first,
            day_url=lambda day: url_for(
                endpoint,
                **(view_args or request.view_args or {}),
                **flow_args(),
                date=day.isoformat(),
            ),
        ),
        status,
    )


SLOT_TAKEN = "Sorry, that time was just taken or is no longer available. Please choose another time."
# Says nothing of the booking the form made: whoever sent it again may not be its invitee (rule 8).
FORM_USED = "This form was already used to book. To book again, please choose a time."


def slot_taken(
    calendar: Calendar,
    scope: str,
    now: datetime,
    action: str,
    old: BookingForm,
    link: OneTimeLink | None = None,
    notice: str = SLOT_TAKEN,
) -> tuple[str, int]:
    """The form again, with a new form id, fresh slots and what the invitee typed: a 409."""
    form = make_form(scope)
    form.slot.data = None
    form.name.data, form.email.data, form.notes.data = old.name.data, old.email.data, old.notes.data
    return render_page(calendar, form, now=now, status=409, action=action, notice=notice, link=link)
