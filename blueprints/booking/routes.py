"""Routes of the invitee pages: parse the request, call a service, render."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import partial
from typing import TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Response, abort, current_app, g, make_response, redirect, render_template, request, url_for
from werkzeug.exceptions import Forbidden, TooManyRequests

from blueprints.booking import bp, pagecache
from blueprints.booking.forms import BookingForm, CancelForm, FormScope, SlotForm
from oncecal import events
from oncecal.app_objects import runtime
from oncecal.embed import frame_ancestors, host_allowed
from oncecal.extensions import db
from oncecal.flow import first_day_arg, flow_args, prefill_args
from oncecal.models import Booking, Calendar, OneTimeLink, utcnow
from oncecal.services import bookings, links
from oncecal.services.bookings import FormAlreadyUsed, Invitee, SlotUnavailable
from oncecal.services.ics import booking_ics
from oncecal.services.links import LinkNotActive, LinkStatus
from oncecal.templating import reader_prefers_12_hour, slot_texts
from oncecal.timezones import zone, zone_choices
from oncecal.week import week_of_slots

F = TypeVar("F", bound=SlotForm | CancelForm)


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


def _form(scope: str, form_class: type[F] = BookingForm, **data: object) -> F:  # type: ignore[assignment]
    context = FormScope(runtime().form_tokens, scope, current_app.config["FORM_TOKEN_MAX_AGE"])
    formdata = request.form if request.method == "POST" else None
    return form_class(formdata, meta={"csrf_context": context}, data=data or None)


def _replayed_booking(scope: str) -> Booking | None:
    """Return the booking this form made, if it is sent again with its slot and email (rule 8)."""
    form = _form(scope)
    if not form.validate():
        return None
    assert form.form_id is not None and form.slot_start is not None
    try:
        return bookings.booking_for_form(form.form_id, form.slot_start, form.email.data)
    except FormAlreadyUsed:
        return None


def _shown_zone(calendar: Calendar, form: SlotForm | None = None) -> str:
    args = flow_args()
    if "tz" in args:
        return args["tz"]
    if form is not None and form.timezone.data and not form.timezone.errors:
        return form.timezone.data
    return calendar.timezone


def _first_day(calendar: Calendar, tz: ZoneInfo, now: datetime) -> date | None:
    """Return the first day the request asks to show, if the page offers anything then."""
    # The horizon, and a day more: in the invitee's zone its last slot may be on the next date.
    last_day = (now + timedelta(days=calendar.days_ahead + 1)).astimezone(tz).date()
    return first_day_arg(now.astimezone(tz).date(), last_day)


def _render_page(
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
    tz_name = _shown_zone(calendar, form)
    tz = zone(tz_name)
    # Lazily: only the shown week (and the first slot after it) is computed.
    slots = bookings.iter_open_slots(calendar, now, ignoring=moving.id if moving else None)
    if moving is not None:
        # Moving to the time it already has is no move: not offered.
        slots = (slot for slot in slots if slot != moving.start_at)
    first_day = _first_day(calendar, tz, now)
    week = week_of_slots(slots, tz, now.astimezone(tz).date(), first_day)
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
            has_any_slot=week.first_open is not None,
            slot_texts=partial(slot_texts, tz=tz, twelve_hour=reader_prefers_12_hour()),
            chosen=form.slot.data,
            moving=moving,
            change_rules=bookings.change_rules(calendar, link),
            first_day=first_day,
            day_url=lambda day: url_for(
                request.endpoint,
                **(view_args or request.view_args or {}),
                **flow_args(),
                date=day.isoformat(),
            ),
        ),
        status,
    )


def _link_page(link: OneTimeLink, token: str, scope: str, now: datetime) -> str:
    """A link's booking page: rendered once per calendar state (pagecache), filled in per link."""
    calendar = link.calendar
    as_of = pagecache.next_minute(now)
    flow = flow_args()
    # The calendar's row holds its bookings_revision: a booking, move or
    # cancel on it makes a new key, with no need to read the bookings here.
    key = (
        calendar.id,
        pagecache.row_state(calendar),
        pagecache.row_state(calendar.owner),
        as_of,
        _shown_zone(calendar),
        reader_prefers_12_hour(),
        _first_day(calendar, zone(_shown_zone(calendar)), as_of),
        tuple(sorted(flow.items())),
        # What the page says the invitee may change later: the link may set its own.
        (link.allow_cancel, link.allow_reschedule, link.change_cutoff_hours),
    )

    def render() -> str:
        form = _form(scope, name=pagecache.NAME, email=pagecache.EMAIL)
        form.csrf_token.current_token = pagecache.FORM_ID
        page, _status = _render_page(
            calendar,
            form,
            now=as_of,
            status=200,
            action=_link_action(pagecache.TOKEN),
            view_args={"token": pagecache.TOKEN},
            link=link,
        )
        return page

    prefill = {"name": link.prefill_name, "email": link.prefill_email, **prefill_args()}
    return pagecache.fill(
        pagecache.pages().get_or_render(key, render),
        token=token,
        form_id=runtime().form_tokens.issue(scope),
        name=prefill["name"] or "",
        email=prefill["email"] or "",
    )


def _expired(link: OneTimeLink, status: LinkStatus) -> tuple[str, int]:
    calendar = link.calendar
    return (
        render_template(
            "booking/expired.html", calendar=calendar, owner=calendar.owner, status=status, flow=flow_args()
        ),
        410,
    )


def _to_booking(booking: Booking | str) -> Response:
    ref = booking if isinstance(booking, str) else booking.ref
    return redirect(url_for("booking.confirmation", ref=ref, **flow_args()), code=303)


class _Booked:
    """``on_booked`` for a new booking: queues its events and keeps its ref.

    The ref is read inside the booking's transaction. Read after the commit
    it would be loaded again from the database, and a database lost right
    after the commit would answer 503 ("nothing was booked") for a booking
    that was made.
    """

    def __init__(self) -> None:
        self.ref: str | None = None

    def __call__(self, booking: Booking) -> None:
        events.booking_created(booking)
        self.ref = booking.ref


@bp.route("/l/<token>", methods=["GET", "POST"])
def one_time_link(token: str) -> Response | tuple[str, int]:
    """Show a one-time link's booking page, or book through it."""
    link = _link_or_404(token)
    _guard_embedding(link.calendar)
    scope = f"l:{link.id}"
    now = utcnow()
    status = links.status_of(link, now)
    if status is not LinkStatus.ACTIVE:
        # The same form sent again after it used the link goes to its booking
        # (rule 8); while the link is active, consume_link_and_book checks that.
        if request.method == "POST" and (replay := _replayed_booking(scope)) is not None:
            return _to_booking(replay)
        return _expired(link, status)

    if request.method == "GET":
        return _link_page(link, token, scope, now)

    form = _form(scope)
    if not form.validate():
        return _render_page(link.calendar, form, now=now, status=400, action=_link_action(token), link=link)
    assert form.slot_start is not None
    booked = _Booked()
    try:
        booking = links.consume_link_and_book(
            link.id,
            form.slot_start,
            _invitee(form),
            form_id=form.form_id,
            now=now,
            on_booked=booked,
        )
    except LinkNotActive as refused:
        return _expired(link, refused.status)
    except SlotUnavailable:
        link = db.session.get_one(OneTimeLink, link.id)
        return _slot_taken(link.calendar, scope, now, _link_action(token), form, link)
    except FormAlreadyUsed:
        link = db.session.get_one(OneTimeLink, link.id)
        return _slot_taken(link.calendar, scope, now, _link_action(token), form, link, notice=FORM_USED)
    return _to_booking(booked.ref or booking)


def _link_action(token: str) -> str:
    """Where a link's booking form posts: the link itself (with the embed's flow arguments)."""
    return url_for("booking.one_time_link", token=token, **flow_args())


def _invitee(form: BookingForm) -> Invitee:
    return Invitee(
        name=form.name.data,
        email=form.email.data,
        timezone=form.timezone.data,
        notes=form.notes.data or None,
    )


SLOT_TAKEN = "Sorry, that time was just taken or is no longer available. Please choose another time."
# Says nothing of the booking the form made: whoever sent it again may not be its invitee (rule 8).
FORM_USED = "This form was already used to book. To book again, please choose a time."


def _slot_taken(
    calendar: Calendar,
    scope: str,
    now: datetime,
    action: str,
    old: BookingForm,
    link: OneTimeLink | None = None,
    notice: str = SLOT_TAKEN,
) -> tuple[str, int]:
    """The form again, with a new form id, fresh slots and what the invitee typed: a 409."""
    form = _form(scope)
    form.slot.data = None
    form.name.data, form.email.data, form.notes.data = old.name.data, old.email.data, old.notes.data
    return _render_page(calendar, form, now=now, status=409, action=action, notice=notice, link=link)


def _public_calendar(**where: str) -> Calendar:
    column = Calendar.slug if "slug" in where else Calendar.key
    calendar = db.session.scalar(
        sa.select(Calendar).where(column == next(iter(where.values())), Calendar.archived_at.is_(None))
    )
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
    form = _form(scope)
    if not form.validate():
        return _render_page(calendar, form, now=now, status=400, action=action)
    assert form.slot_start is not None
    booked = _Booked()
    try:
        booking = bookings.book_calendar(
            calendar.id,
            form.slot_start,
            _invitee(form),
            form_id=form.form_id,
            now=now,
            on_booked=booked,
        )
    except SlotUnavailable:
        calendar = db.session.get_one(Calendar, calendar.id)
        if calendar.archived_at is not None:
            abort(404)  # deleted by its owner while the form was open
        return _slot_taken(calendar, scope, now, action, form)
    except FormAlreadyUsed:
        calendar = db.session.get_one(Calendar, calendar.id)
        return _slot_taken(calendar, scope, now, action, form, notice=FORM_USED)
    return _to_booking(booked.ref or booking)


def _booking_or_404(ref: str) -> Booking:
    booking = db.session.scalar(sa.select(Booking).where(Booking.ref == ref))
    if booking is None:
        abort(404)
    return booking


@bp.get("/b/<ref>")
def confirmation(ref: str) -> tuple[str, int]:
    """Show a booking: the confirmation, and the invitee's way to cancel or move it."""
    booking = _booking_or_404(ref)
    _guard_embedding(booking.calendar)
    return _manage_page(booking, _form(f"b:{booking.id}", CancelForm), status=200)


def _manage_page(
    booking: Booking, cancel_form: CancelForm, *, status: int, notice: str | None = None
) -> tuple[str, int]:
    calendar = booking.calendar
    args = flow_args()
    tz_name = args.get("tz") or booking.invitee_timezone
    return (
        render_template(
            "booking/confirmation.html",
            booking=booking,
            calendar=calendar,
            owner=calendar.owner,
            tz=zone(tz_name),
            tz_name=tz_name,
            calendar_tz=zone(calendar.timezone),
            flow=args,
            policy=bookings.change_policy(booking, utcnow()),
            cancel_form=cancel_form,
            notice=notice,
        ),
        status,
    )


@bp.post("/b/<ref>/cancel")
def cancel(ref: str) -> Response | tuple[str, int]:
    """Cancel a booking as its invitee, within the owner's rules."""
    booking = _booking_or_404(ref)
    _guard_embedding(booking.calendar)
    form = _form(f"b:{booking.id}", CancelForm)
    if booking.cancelled_at is not None:
        return _to_booking(booking)
    if not form.validate():
        return _manage_page(booking, form, status=400)
    try:
        bookings.cancel_booking(
            booking, utcnow(), by="invitee", reason=form.reason.data, on_cancelled=events.booking_cancelled
        )
    except bookings.ChangeRefused:
        return _manage_page(
            booking, form, status=409, notice=bookings.change_policy(booking, utcnow()).reason
        )
    return _to_booking(booking)


@bp.route("/b/<ref>/reschedule", methods=["GET", "POST"])
def reschedule(ref: str) -> Response | tuple[str, int]:
    """Move a booking to another free time; it never needs or uses a one-time link."""
    booking = _booking_or_404(ref)
    calendar = booking.calendar
    _guard_embedding(calendar)
    now = utcnow()
    policy = bookings.change_policy(booking, now)
    if not policy.can_reschedule:
        return _manage_page(booking, _form(f"b:{booking.id}", CancelForm), status=409, notice=policy.reason)
    scope = f"r:{booking.id}"
    action = url_for("booking.reschedule", ref=ref, **flow_args())
    form = _form(scope, SlotForm)
    if request.method == "GET":
        form.timezone.data = booking.invitee_timezone
        return _render_page(calendar, form, now=now, status=200, action=action, moving=booking)
    if not form.validate():
        return _render_page(calendar, form, now=now, status=400, action=action, moving=booking)
    assert form.slot_start is not None
    try:
        moved = bookings.reschedule_booking(
            booking.id, form.slot_start, now, on_rescheduled=events.booking_rescheduled
        )
    except bookings.ChangeRefused:
        booking = db.session.get_one(Booking, booking.id)
        return _manage_page(
            booking,
            _form(f"b:{booking.id}", CancelForm),
            status=409,
            notice=bookings.change_policy(booking, now).reason,
        )
    except SlotUnavailable:
        booking = db.session.get_one(Booking, booking.id)
        notice = "Sorry, that time was just taken or is no longer available. Please choose another time."
        fresh = _form(scope, SlotForm)
        return _render_page(
            booking.calendar, fresh, now=now, status=409, action=action, notice=notice, moving=booking
        )
    return _to_booking(moved)


@bp.get("/b/<ref>/invite.ics")
def invite_ics(ref: str) -> Response:
    """Download the booking as an iCalendar file."""
    booking = _booking_or_404(ref)
    response = make_response(booking_ics(booking))
    response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    response.headers["Content-Disposition"] = 'attachment; filename="invite.ics"'
    return response
