"""Routes of the booking pages: a one-time link's, a calendar's own. Parse the form, call a service, render."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask import abort, render_template, request, url_for
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response

from blueprints.booking import bp, pagecache
from blueprints.booking.pages import (
    FORM_USED,
    SLOT_TAKEN,
    first_day,
    guard_embedding,
    invitee_of,
    make_form,
    render_page,
    shown_zone,
    slot_taken,
    to_booking,
)
from oncecal.app_objects import runtime
from oncecal.extensions import db
from oncecal.flow import flow_args, prefill_args
from oncecal.models import Calendar, OneTimeLink, utcnow
from oncecal.schemas import LinkStatus
from oncecal.services import bookings, connections, links
from oncecal.services.bookings import FormAlreadyUsed, SlotUnavailable
from oncecal.services.links import LinkNotActive
from oncecal.templating import reader_prefers_12_hour
from oncecal.timezones import zone


@bp.after_request
def _private_page_headers(response: Response) -> Response:
    # Token pages must not be cached, indexed or leak their URL to other sites.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def _link_or_404(token: str) -> OneTimeLink:
    link = links.find_link(runtime().link_keys, token)
    if link is None:
        wait = runtime().token_throttle.record_failure(request.remote_addr or "unknown")
        if wait is not None:
            raise TooManyRequests(retry_after=wait)
        abort(404)
    return link


@bp.route("/l/<token>", methods=["GET", "POST"])
def one_time_link(token: str) -> Response | str | bytes | tuple[str, int]:
    """Show a one-time link's booking page, or book through it."""
    link = _link_or_404(token)
    guard_embedding(link.calendar)
    scope, now = f"l:{link.id}", utcnow()
    active = links.status_of(link, now) is LinkStatus.ACTIVE
    if request.method == "GET":
        return _link_page(link, token, scope, now) if active else _expired(link, links.status_of(link, now))
    form = make_form(scope)
    if not form.validate():
        if not active:
            return _expired(link, links.status_of(link, now))
        return render_page(link.calendar, form, now=now, status=400, action=_link_action(token), link=link)
    assert form.slot_start is not None
    try:
        # On a used link too: the same form sent again goes to its booking (rule 8).
        booked = links.consume_link_and_book(
            link.id, form.slot_start, invitee_of(form), form_id=form.form_id, now=now
        )
    except LinkNotActive as refused:
        return _expired(db.session.get_one(OneTimeLink, link.id), refused.status)
    except (SlotUnavailable, FormAlreadyUsed) as refused:
        link = db.session.get_one(OneTimeLink, link.id)
        notice = FORM_USED if isinstance(refused, FormAlreadyUsed) else SLOT_TAKEN
        return slot_taken(link.calendar, scope, now, _link_action(token), form, link, notice=notice)
    return to_booking(booked)


def _link_action(token: str) -> str:
    """Where a link's booking form posts: the link itself (with the embed's flow arguments)."""
    return url_for("booking.one_time_link", token=token, **flow_args())


def _link_page(link: OneTimeLink, token: str, scope: str, now: datetime) -> bytes:
    """A link's booking page: rendered once per calendar state (pagecache), filled in per link."""
    calendar = link.calendar
    # A stale copy of the owner's other calendars is read first (1 s at most).
    connections.refresh_stale(calendar, now)
    as_of = pagecache.next_minute(now)
    tz_name = shown_zone(calendar)
    # The calendar's row holds its bookings_revision: a booking, move or
    # cancel on it makes a new key, with no need to read the bookings here.
    key = (
        calendar.id,
        pagecache.row_state(calendar),
        pagecache.row_state(calendar.owner),
        as_of,
        tz_name,
        reader_prefers_12_hour(),
        first_day(calendar, zone(tz_name), as_of),
        tuple(sorted(flow_args().items())),
        # What the page says the invitee may change later: the link may set its own.
        (link.allow_cancel, link.allow_reschedule, link.change_cutoff_hours),
    )

    def render() -> pagecache.MarkedPage:
        form = make_form(scope, name=pagecache.NAME, email=pagecache.EMAIL)
        form.csrf_token.current_token = pagecache.FORM_ID
        page, _status = render_page(
            calendar,
            form,
            now=as_of,
            status=200,
            action=_link_action(pagecache.TOKEN),
            view_args={"token": pagecache.TOKEN},
            link=link,
        )
        return pagecache.MarkedPage.of(page)

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
    page = render_template(
        "booking/expired.html", calendar=calendar, owner=calendar.owner, status=status, flow=flow_args()
    )
    return page, 410


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
    return _calendar_flow(_public_calendar(slug=slug))


@bp.get("/p/<key>")
def permanent_page(key: str) -> Response | tuple[str, int]:
    """Show a calendar's page under its permanent key."""
    return _calendar_flow(_public_calendar(key=key))


def _calendar_flow(calendar: Calendar) -> Response | tuple[str, int]:
    guard_embedding(calendar)
    scope, now = f"c:{calendar.id}", utcnow()
    action = url_for("booking.calendar_page", slug=calendar.slug, **flow_args())
    if request.method == "GET":
        return render_page(calendar, make_form(scope, **prefill_args()), now=now, status=200, action=action)
    form = make_form(scope)
    if not form.validate():
        return render_page(calendar, form, now=now, status=400, action=action)
    assert form.slot_start is not None
    try:
        booked = bookings.book_calendar(
            calendar.id, form.slot_start, invitee_of(form), form_id=form.form_id, now=now
        )
    except (SlotUnavailable, FormAlreadyUsed) as refused:
        calendar = db.session.get_one(Calendar, calendar.id)
        if calendar.archived_at is not None:
            abort(404)  # deleted by its owner while the form was open
        notice = FORM_USED if isinstance(refused, FormAlreadyUsed) else SLOT_TAKEN
        return slot_taken(calendar, scope, now, action, form, notice=notice)
    return to_booking(booked)
