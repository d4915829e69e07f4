"""Routes of the invitee pages: parse the request, call a service, render."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask import Response, abort, current_app, g, make_response, redirect, render_template, request, url_for
from werkzeug.exceptions import Forbidden, TooManyRequests

from blueprints.booking import bp
from blueprints.booking.flow import first_day_arg, flow_args, prefill_args
from blueprints.booking.forms import BookingForm, FormScope
from oncecal import events
from oncecal.embed import frame_ancestors, host_allowed
from oncecal.extensions import db
from oncecal.models import Booking, Calendar, OneTimeLink, utcnow
from oncecal.runtime import runtime
from oncecal.services import bookings, links
from oncecal.services.bookings import Invitee, SlotUnavailable
from oncecal.services.formtokens import InvalidFormToken
from oncecal.services.ics import booking_ics
from oncecal.services.links import LinkNotActive, LinkStatus
from oncecal.services.schedule import week_of_slots
from oncecal.timezones import zone, zone_choices


@bp.after_request
def _private_page_headers(response: Response) -> Response:
    # Token pages must not be cached, indexed or leak their URL to other sites.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def _guard_embedding(calendar: Calendar) -> None:
    """Apply the calendar's list of sites allowed to embed it."""
    allowed = calendar.embed_origins or []
    g.frame_ancestors = frame_ancestors(allowed)
    host = flow_args().get("host")
    if host and not host_allowed(host, allowed):
        raise Forbidden(f"The owner of this calendar has not allowed it to be embedded on {host}.")


def _link_or_404(token: str) -> OneTimeLink:
    link = links.find_link(runtime().link_keys, token)
    if link is None:
        wait = runtime().token_throttle.record_failure(request.remote_addr or "unknown")
        if wait is not None:
            raise TooManyRequests(retry_after=wait)
        abort(404)
    return link


def _form(scope: str, **data: object) -> BookingForm:
    context = FormScope(runtime().form_tokens, scope, current_app.config["FORM_TOKEN_MAX_AGE"])
    formdata = request.form if request.method == "POST" else None
    return BookingForm(formdata, meta={"csrf_context": context}, data=data or None)


def _replayed_booking(scope: str) -> Booking | None:
    """Return the booking this exact form already made (PRODUCT.md rule 8)."""
    try:
        form_id = runtime().form_tokens.read(
            request.form.get("csrf_token", ""), scope, current_app.config["FORM_TOKEN_MAX_AGE"]
        )
    except InvalidFormToken:
        return None
    return bookings.booking_for_form(form_id)


def _shown_zone(calendar: Calendar, form: BookingForm | None = None) -> str:
    args = flow_args()
    if "tz" in args:
        return args["tz"]
    if form is not None and form.timezone.data and not form.timezone.errors:
        return form.timezone.data
    return calendar.timezone


def _render_page(
    calendar: Calendar,
    form: BookingForm,
    *,
    now: datetime,
    status: int,
    action: str,
    notice: str | None = None,
) -> tuple[str, int]:
    tz_name = _shown_zone(calendar, form)
    tz = zone(tz_name)
    slots = bookings.open_slots(calendar, now)
    week = week_of_slots(slots, tz, now.astimezone(tz).date(), first_day_arg())
    if form.timezone.errors:
        # The zone travels in a hidden field, so its error is shown on top.
        notice = notice or form.timezone.errors[0]
    form.timezone.data = tz_name
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
            has_any_slot=bool(slots),
            day_url=lambda day: url_for(
                request.endpoint, **(request.view_args or {}), **flow_args(), date=day.isoformat()
            ),
        ),
        status,
    )


def _expired(link: OneTimeLink, status: LinkStatus) -> tuple[str, int]:
    calendar = link.calendar
    return (
        render_template(
            "booking/expired.html", calendar=calendar, owner=calendar.owner, status=status, flow=flow_args()
        ),
        410,
    )


def _to_booking(booking: Booking) -> Response:
    return redirect(url_for("booking.confirmation", ref=booking.ref, **flow_args()), code=303)


@bp.route("/l/<token>", methods=["GET", "POST"])
def one_time_link(token: str) -> Response | tuple[str, int]:
    """Show a one-time link's booking page, or book through it."""
    link = _link_or_404(token)
    _guard_embedding(link.calendar)
    scope = f"l:{link.id}"
    now = utcnow()
    if request.method == "POST" and (replay := _replayed_booking(scope)) is not None:
        return _to_booking(replay)
    status = links.status_of(link, now)
    if status is not LinkStatus.ACTIVE:
        return _expired(link, status)

    action = url_for("booking.one_time_link", token=token, **flow_args())
    if request.method == "GET":
        prefill = {"name": link.prefill_name, "email": link.prefill_email, **prefill_args()}
        form = _form(scope, **{k: v for k, v in prefill.items() if v})
        return _render_page(link.calendar, form, now=now, status=200, action=action)

    form = _form(scope)
    if not form.validate():
        return _render_page(link.calendar, form, now=now, status=400, action=action)
    assert form.slot_start is not None
    try:
        booking = links.consume_link_and_book(
            link.id,
            form.slot_start,
            _invitee(form),
            form_id=form.form_id,
            now=now,
            on_booked=events.booking_created,
        )
    except LinkNotActive as refused:
        return _expired(link, refused.status)
    except SlotUnavailable:
        link = db.session.get_one(OneTimeLink, link.id)
        return _slot_taken(link.calendar, scope, now, action, form)
    return _to_booking(booking)


def _invitee(form: BookingForm) -> Invitee:
    return Invitee(
        name=form.name.data,
        email=form.email.data,
        timezone=form.timezone.data,
        notes=form.notes.data or None,
    )


def _slot_taken(
    calendar: Calendar, scope: str, now: datetime, action: str, old: BookingForm
) -> tuple[str, int]:
    form = _form(scope)
    form.slot.data = None
    form.name.data, form.email.data, form.notes.data = old.name.data, old.email.data, old.notes.data
    notice = "Sorry, that time was just taken or is no longer available. Please choose another time."
    return _render_page(calendar, form, now=now, status=409, action=action, notice=notice)


def _public_calendar(**where: str) -> Calendar:
    column = Calendar.slug if "slug" in where else Calendar.key
    calendar = db.session.scalar(sa.select(Calendar).where(column == next(iter(where.values()))))
    if calendar is None or not calendar.public_page_enabled:
        abort(404)
    return calendar


@bp.route("/c/<slug>", methods=["GET", "POST"])
def calendar_page(slug: str) -> Response | tuple[str, int]:
    """Show a calendar's reusable scheduling page, or book on it."""
    calendar = _public_calendar(slug=slug)
    return _calendar_flow(calendar)


@bp.get("/p/<key>")
def permanent_page(key: str) -> Response | tuple[str, int]:
    """Show a calendar's page under its permanent key."""
    calendar = _public_calendar(key=key)
    return _calendar_flow(calendar)


def _calendar_flow(calendar: Calendar) -> Response | tuple[str, int]:
    _guard_embedding(calendar)
    scope = f"c:{calendar.id}"
    now = utcnow()
    action = url_for("booking.calendar_page", slug=calendar.slug, **flow_args())
    if request.method == "GET":
        return _render_page(calendar, _form(scope, **prefill_args()), now=now, status=200, action=action)
    if (replay := _replayed_booking(scope)) is not None:
        return _to_booking(replay)
    form = _form(scope)
    if not form.validate():
        return _render_page(calendar, form, now=now, status=400, action=action)
    assert form.slot_start is not None
    try:
        booking = bookings.book_calendar(
            calendar.id,
            form.slot_start,
            _invitee(form),
            form_id=form.form_id,
            now=now,
            on_booked=events.booking_created,
        )
    except SlotUnavailable:
        calendar = db.session.get_one(Calendar, calendar.id)
        return _slot_taken(calendar, scope, now, action, form)
    return _to_booking(booking)


def _booking_or_404(ref: str) -> Booking:
    booking = db.session.scalar(sa.select(Booking).where(Booking.ref == ref))
    if booking is None:
        abort(404)
    return booking


@bp.get("/b/<ref>")
def confirmation(ref: str) -> str:
    """Show a booking's confirmation."""
    booking = _booking_or_404(ref)
    calendar = booking.calendar
    _guard_embedding(calendar)
    args = flow_args()
    tz_name = args.get("tz") or booking.invitee_timezone
    return render_template(
        "booking/confirmation.html",
        booking=booking,
        calendar=calendar,
        owner=calendar.owner,
        tz=zone(tz_name),
        tz_name=tz_name,
        calendar_tz=zone(calendar.timezone),
        flow=args,
    )


@bp.get("/b/<ref>/invite.ics")
def invite_ics(ref: str) -> Response:
    """Download the booking as an iCalendar file."""
    booking = _booking_or_404(ref)
    response = make_response(booking_ics(booking))
    response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    response.headers["Content-Disposition"] = 'attachment; filename="invite.ics"'
    return response
