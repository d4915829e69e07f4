"""The invitee's manage page: cancel and reschedule within the owner's rules (test client).

Bookings are made through the real pages; changes go through /b/<ref>/cancel
and /b/<ref>/reschedule with the signed form token their page rendered.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import partial
from html import unescape
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug.test import TestResponse

from blueprints.dashboard.forms import CalendarForm
from oncecal.app_objects import runtime
from oncecal.extensions import db
from oncecal.models import Booking, Calendar, OneTimeLink, OutboxMessage, utcnow
from oncecal.services import bookings, changes, links, webhooks
from oncecal.services.formtokens import FormTokens, InvalidFormToken
from tests.conftest import MakeCalendar, fan_out_events
from tests.support.apps import TEST_SECRET
from tests.support.pages import BookingPage
from tests.threads import together

TAKEN = "Sorry, that time was just taken or is no longer available."


# --- helpers -------------------------------------------------------------------------------


def day(days_ahead: int) -> str:
    return (utcnow() + timedelta(days=days_ahead)).date().isoformat()


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def open_form(client, path: str) -> BookingPage:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return BookingPage.parse(response.get_data(as_text=True))


def ref_of(response: TestResponse) -> str:
    assert response.status_code == 303, response.status_code
    path = urlsplit(response.headers["Location"]).path
    assert path.startswith("/b/"), path
    return path.removeprefix("/b/")


def book_link(client, token: str, *, days_ahead: int = 3, slot: str | None = None, **fields: str) -> str:
    """Book through a one-time link on a day ``days_ahead`` from now; return the booking ref."""
    page = open_form(client, f"/l/{token}?tz=UTC&date={day(days_ahead)}")
    return ref_of(client.post(f"/l/{token}", data=page.form(slot=slot, **fields)))


def book_public(client, slug: str, slot: str, **fields: str) -> str:
    page = open_form(client, f"/c/{slug}?tz=UTC&date={slot[:10]}")
    return ref_of(client.post(f"/c/{slug}", data=page.form(slot=slot, **fields)))


def manage_token(html: str) -> str | None:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    return unescape(match.group(1)) if match else None


def cancel_token(client, ref: str) -> str:
    token = manage_token(client.get(f"/b/{ref}").get_data(as_text=True))
    assert token, "the manage page offers no cancel form"
    return token


def reschedule_page(client, ref: str, days_ahead: int = 5) -> BookingPage:
    return open_form(client, f"/b/{ref}/reschedule?tz=UTC&date={day(days_ahead)}")


def booking_by_ref(ref: str) -> Booking:
    db.session.expire_all()
    booking = db.session.scalar(sa.select(Booking).where(Booking.ref == ref))
    assert booking is not None
    return booking


def snapshot(ref: str) -> tuple:
    b = booking_by_ref(ref)
    return (b.start_at, b.end_at, b.blocked_until, b.sequence, b.cancelled_at, b.rescheduled_at)


def uses(link_id: int) -> int:
    db.session.expire_all()
    return db.session.get_one(OneTimeLink, link_id).uses


def open_slots(calendar_id: int) -> set[datetime]:
    db.session.expire_all()
    return set(bookings.open_slots(db.session.get_one(Calendar, calendar_id), utcnow()))


def outbox_events(kind: str = "webhook") -> list[tuple[str, dict]]:
    fan_out_events()
    db.session.expire_all()
    rows = db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
    )
    return [(row.event_type, row.payload) for row in rows]


def overlapping(calendar_id: int) -> list[tuple[int, int]]:
    """Return pairs of live bookings of the calendar whose blocked ranges overlap."""
    db.session.expire_all()
    live = db.session.scalars(
        sa.select(Booking).where(Booking.calendar_id == calendar_id, Booking.cancelled_at.is_(None))
    ).all()
    return [
        (a.id, b.id)
        for i, a in enumerate(live)
        for b in live[i + 1 :]
        if a.start_at < b.blocked_until and b.start_at < a.blocked_until
    ]


# --- the manage page and cancelling ----------------------------------------------------------


@pytest.mark.usefixtures("ctx")
class TestManagePage:
    def test_offers_cancel_and_reschedule_when_allowed(self, client, make_link):
        _, token = make_link()
        ref = book_link(client, token)
        html = client.get(f"/b/{ref}").get_data(as_text=True)
        assert "You are booked" in html
        assert f'href="/b/{ref}/reschedule"' in html and ">Reschedule<" in html
        assert f'action="/b/{ref}/cancel"' in html and "Cancel this booking" in html
        assert 'name="reason"' in html and manage_token(html)

    def test_offers_neither_inside_the_cutoff_and_says_why(
        self, client, make_owner, make_calendar, make_link
    ):
        calendar = make_calendar(make_owner(name="Olga Owner"), change_cutoff_hours=24)
        _, token = make_link(calendar)
        ref = book_link(client, token, days_ahead=0)
        html = client.get(f"/b/{ref}").get_data(as_text=True)
        assert "/reschedule" not in html and "/cancel" not in html
        assert "Changes close 24 hours before the start; please contact Olga Owner." in html


@pytest.mark.usefixtures("ctx")
class TestCancel:
    def test_cancel_with_a_reason_frees_the_time_and_keeps_the_link_used(self, client, make_link):
        link, token = make_link()
        webhooks.create_endpoint(
            link.calendar.owner, "http://127.0.0.1:9/hook", runtime().link_keys, utcnow(), allow_private=True
        )
        ref = book_link(client, token)
        booking = booking_by_ref(ref)
        start, calendar_id = booking.start_at, booking.calendar_id
        assert start not in open_slots(calendar_id)

        response = client.post(
            f"/b/{ref}/cancel", data={"csrf_token": cancel_token(client, ref), "reason": "Plans changed"}
        )
        assert ref_of(response) == ref
        page = client.get(f"/b/{ref}")
        html = page.get_data(as_text=True)
        assert page.status_code == 200
        assert "This booking was cancelled" in html and "The time below is free again." in html
        assert "/cancel" not in html and "/reschedule" not in html

        booking = booking_by_ref(ref)
        assert booking.cancelled_at is not None and booking.cancelled_by == "invitee"
        assert booking.cancel_reason == "Plans changed" and booking.sequence == 1
        assert start in open_slots(calendar_id)
        assert iso(start) in open_form(client, f"/c/{link.calendar.slug}?tz=UTC&date={iso(start)[:10]}").slots
        assert uses(link.id) == 1
        assert client.get(f"/l/{token}").status_code == 410

        events = outbox_events()
        assert [event for event, _ in events] == ["booking.created", "booking.cancelled"]
        cancelled = events[1][1]
        assert cancelled["event"] == "booking.cancelled" and cancelled["booking"]["ref"] == ref
        assert cancelled["booking"]["cancelled_at"] is not None and cancelled["link"]["status"] == "used"

        # Cancelling again changes nothing and queues nothing more.
        again = client.post(f"/b/{ref}/cancel", data={"csrf_token": "whatever", "reason": "x"})
        assert ref_of(again) == ref
        assert booking_by_ref(ref).sequence == 1 and len(outbox_events()) == 2
        # A cancelled booking cannot be moved.
        assert client.get(f"/b/{ref}/reschedule").status_code == 409

    def test_cancel_without_a_reason(self, client, make_link):
        _, token = make_link()
        ref = book_link(client, token)
        response = client.post(f"/b/{ref}/cancel", data={"csrf_token": cancel_token(client, ref)})
        assert ref_of(response) == ref
        booking = booking_by_ref(ref)
        assert booking.cancelled_at is not None and booking.cancel_reason is None


# --- the rules: cutoff window, calendar and per-link overrides --------------------------------

CALENDAR_RULES = {"allow_cancel", "allow_reschedule", "change_cutoff_hours"}


def _setup(make_owner, make_calendar, make_link, rules: dict) -> tuple[Calendar, OneTimeLink, str]:
    calendar_rules = {k.removeprefix("calendar_"): v for k, v in rules.items() if k.startswith("calendar_")}
    calendar = make_calendar(make_owner(name="Olga Owner"), **calendar_rules)
    link, token = make_link(calendar)
    for key, value in rules.items():
        if key.startswith("link_"):
            setattr(link, key.removeprefix("link_"), value)
    db.session.commit()
    return calendar, link, token


REFUSED = {
    "inside the cutoff window": (
        {"calendar_change_cutoff_hours": 24},
        0,
        "Changes close 24 hours before the start; please contact Olga Owner.",
    ),
    "inside a per-link cutoff window": (
        {"calendar_change_cutoff_hours": 0, "link_change_cutoff_hours": 24 * 4},
        3,
        "Changes close 96 hours before the start; please contact Olga Owner.",
    ),
    "the calendar forbids both": (
        {"calendar_allow_cancel": False, "calendar_allow_reschedule": False},
        3,
        "To change this booking, please contact Olga Owner.",
    ),
    "a per-link override forbids both": (
        {"link_allow_cancel": False, "link_allow_reschedule": False},
        3,
        "To change this booking, please contact Olga Owner.",
    ),
}


@pytest.mark.usefixtures("ctx")
class TestRules:
    @pytest.mark.parametrize("case", REFUSED)
    def test_cancel_and_reschedule_are_refused(self, client, make_owner, make_calendar, make_link, case):
        rules, days_ahead, message = REFUSED[case]
        calendar, link, token = _setup(make_owner, make_calendar, make_link, rules)
        ref = book_link(client, token, days_ahead=days_ahead)
        booking = booking_by_ref(ref)
        # A signed token of this booking's forms, as a page rendered earlier would hold.
        tokens = runtime().form_tokens
        before = snapshot(ref)
        free_before = open_slots(calendar.id)

        cancel = client.post(
            f"/b/{ref}/cancel", data={"csrf_token": tokens.issue(f"b:{booking.id}"), "reason": "no"}
        )
        assert cancel.status_code == 409
        assert message in cancel.get_data(as_text=True)

        target = iso(min(s for s in free_before if s > booking.start_at + timedelta(hours=2)))
        view = client.get(f"/b/{ref}/reschedule")
        assert view.status_code == 409 and message in view.get_data(as_text=True)
        move = client.post(
            f"/b/{ref}/reschedule",
            data={"csrf_token": tokens.issue(f"r:{booking.id}"), "slot": target, "timezone": "UTC"},
        )
        assert move.status_code == 409
        assert message in move.get_data(as_text=True)

        assert snapshot(ref) == before
        assert open_slots(calendar.id) == free_before
        assert uses(link.id) == 1
        assert [event for event, _ in outbox_events("email")].count("booking.cancelled") == 0

    def test_calendar_forbids_cancel_only(self, client, make_owner, make_calendar, make_link):
        _, _, token = _setup(make_owner, make_calendar, make_link, {"calendar_allow_cancel": False})
        ref = book_link(client, token)
        booking = booking_by_ref(ref)
        html = client.get(f"/b/{ref}").get_data(as_text=True)
        assert "/cancel" not in html and f"/b/{ref}/reschedule" in html
        response = client.post(
            f"/b/{ref}/cancel", data={"csrf_token": runtime().form_tokens.issue(f"b:{booking.id}")}
        )
        assert response.status_code == 409
        assert "To cancel this booking, please contact Olga Owner." in response.get_data(as_text=True)
        assert booking_by_ref(ref).cancelled_at is None
        # Moving is still allowed.
        page = reschedule_page(client, ref)
        assert ref_of(client.post(f"/b/{ref}/reschedule", data=page.form(page.slots[0]))) == ref

    def test_calendar_forbids_reschedule_only(self, client, make_owner, make_calendar, make_link):
        _, _, token = _setup(make_owner, make_calendar, make_link, {"calendar_allow_reschedule": False})
        ref = book_link(client, token)
        html = client.get(f"/b/{ref}").get_data(as_text=True)
        assert "/reschedule" not in html and f"/b/{ref}/cancel" in html
        assert "To move this booking, please contact Olga Owner." in html
        response = client.get(f"/b/{ref}/reschedule")
        assert response.status_code == 409
        assert "To move this booking, please contact Olga Owner." in response.get_data(as_text=True)
        assert booking_by_ref(ref).sequence == 0

    def test_a_link_override_allows_what_the_calendar_forbids(
        self, client, make_owner, make_calendar, make_link
    ):
        rules = {
            "calendar_allow_cancel": False,
            "calendar_allow_reschedule": False,
            "calendar_change_cutoff_hours": 24 * 30,
            "link_allow_cancel": True,
            "link_allow_reschedule": True,
            "link_change_cutoff_hours": 1,
        }
        calendar, _, token = _setup(make_owner, make_calendar, make_link, rules)
        ref = book_link(client, token, days_ahead=1)
        html = client.get(f"/b/{ref}").get_data(as_text=True)
        assert f"/b/{ref}/reschedule" in html and f"/b/{ref}/cancel" in html

        page = reschedule_page(client, ref, days_ahead=2)
        assert ref_of(client.post(f"/b/{ref}/reschedule", data=page.form(page.slots[0]))) == ref
        assert iso(booking_by_ref(ref).start_at) == page.slots[0]
        response = client.post(f"/b/{ref}/cancel", data={"csrf_token": cancel_token(client, ref)})
        assert ref_of(response) == ref
        assert booking_by_ref(ref).cancelled_at is not None and booking_by_ref(ref).sequence == 2
        # The calendar's rules still hold for a booking made without that link.
        other = book_public(client, calendar.slug, page.slots[3])
        assert client.get(f"/b/{other}/reschedule").status_code == 409

    def test_a_cutoff_of_zero_allows_changes_until_the_start(
        self, client, make_owner, make_calendar, make_link
    ):
        _, _, token = _setup(make_owner, make_calendar, make_link, {"calendar_change_cutoff_hours": 0})
        ref = book_link(client, token, days_ahead=0)
        response = client.post(f"/b/{ref}/cancel", data={"csrf_token": cancel_token(client, ref)})
        assert ref_of(response) == ref


# --- what a new calendar allows, and what the booking page says first ------------------------


TERMS = "You can reschedule or cancel until 24 hours before the start."


@pytest.mark.usefixtures("ctx")
class TestChangeTerms:
    def test_a_booking_for_tomorrow_on_a_new_calendar_can_be_moved_and_cancelled(
        self, client, make_calendar, make_link
    ):
        # The default notice is 4 hours; changes must not close before a booking made at that notice.
        calendar = make_calendar(min_notice_minutes=240)
        assert calendar.change_cutoff_hours == 0
        _, token = make_link(calendar)
        ref = book_link(client, token, days_ahead=1)
        html = client.get(f"/b/{ref}").get_data(as_text=True)
        assert f'href="/b/{ref}/reschedule"' in html and f'action="/b/{ref}/cancel"' in html

    def test_the_new_calendar_form_and_the_demo_start_with_changes_until_the_start(self, app, client):
        assert CalendarForm.change_cutoff_hours.kwargs["default"] == 0
        result = app.test_cli_runner().invoke(args=["demo"])
        assert result.exit_code == 0, result.output
        demo = db.session.scalar(sa.select(Calendar).where(Calendar.slug == "intro-call"))
        assert demo is not None and demo.change_cutoff_hours == 0

    def test_the_booking_page_says_the_cutoff_before_the_invitee_confirms(
        self, client, make_calendar, make_link
    ):
        calendar = make_calendar(change_cutoff_hours=24)
        _, token = make_link(calendar)
        assert TERMS in client.get(f"/l/{token}").get_data(as_text=True)
        assert TERMS in client.get(f"/c/{calendar.slug}").get_data(as_text=True)

    def test_no_cutoff_says_nothing_of_one(self, client, make_calendar, make_link):
        calendar = make_calendar(change_cutoff_hours=0)
        _, token = make_link(calendar)
        assert "hours before the start" not in client.get(f"/l/{token}").get_data(as_text=True)

    def test_each_link_says_its_own_terms_though_pages_are_kept_per_calendar(
        self, client, make_calendar, make_link
    ):
        calendar = make_calendar(change_cutoff_hours=24)
        _, plain = make_link(calendar)
        strict, strict_token = make_link(calendar)
        strict.change_cutoff_hours, strict.allow_cancel = 48, False
        db.session.commit()
        assert TERMS in client.get(f"/l/{plain}").get_data(as_text=True)
        strict_page = client.get(f"/l/{strict_token}").get_data(as_text=True)
        assert "You can reschedule until 48 hours before the start." in strict_page
        assert TERMS not in strict_page
        assert TERMS in client.get(f"/l/{plain}").get_data(as_text=True)

    def test_a_calendar_that_allows_no_changes_says_so_first(self, client, make_owner, make_calendar):
        calendar = make_calendar(make_owner(name="Olga Owner"), allow_cancel=False, allow_reschedule=False)
        html = client.get(f"/c/{calendar.slug}").get_data(as_text=True)
        assert "To change or cancel after booking, contact Olga Owner." in html

    def test_once_a_meeting_has_started_the_manage_page_says_so(
        self, client, make_owner, make_calendar, make_booking
    ):
        calendar = make_calendar(make_owner(name="Olga Owner"))
        booking = make_booking(calendar.id, utcnow() - timedelta(minutes=10))
        html = client.get(f"/b/{booking.ref}").get_data(as_text=True)
        assert "This meeting has started; please contact Olga Owner." in html
        assert "0 hours" not in html


# --- rescheduling ------------------------------------------------------------------------------


@pytest.mark.usefixtures("ctx")
class TestReschedule:
    def test_reschedule_moves_the_same_booking_and_frees_the_old_time(self, client, make_calendar, make_link):
        calendar = make_calendar()
        link, token = make_link(calendar, max_uses=3)
        other_link, other_token = make_link(calendar)
        webhooks.create_endpoint(
            calendar.owner, "http://127.0.0.1:9/hook", runtime().link_keys, utcnow(), allow_private=True
        )
        ref = book_link(client, token)
        old = booking_by_ref(ref)
        old_start, old_id = old.start_at, old.id
        count = db.session.scalar(sa.select(sa.func.count(Booking.id)))

        page = reschedule_page(client, ref)
        assert "Move my booking" in client.get(f"/b/{ref}/reschedule").get_data(as_text=True)
        # Its own time is no move: the week it is in offers every other time but that one.
        same_week = reschedule_page(client, ref, days_ahead=3)
        assert iso(old_start) not in same_week.slots
        assert iso(old_start + timedelta(minutes=calendar.duration_minutes)) in same_week.slots
        # Sent anyway, it moves nothing: 409, the same sequence, no event.
        assert client.post(f"/b/{ref}/reschedule", data=same_week.form(iso(old_start))).status_code == 409
        assert booking_by_ref(ref).sequence == 0 and len(outbox_events()) == 1
        target = page.slots[2]
        response = client.post(f"/b/{ref}/reschedule", data=page.form(target))
        assert ref_of(response) == ref

        moved = booking_by_ref(ref)
        assert moved.id == old_id and iso(moved.start_at) == target
        assert moved.end_at - moved.start_at == timedelta(minutes=calendar.duration_minutes)
        assert moved.sequence == 1 and moved.rescheduled_at is not None and moved.cancelled_at is None
        assert db.session.scalar(sa.select(sa.func.count(Booking.id))) == count
        free = open_slots(calendar.id)
        assert old_start in free and moved.start_at not in free
        html = client.get(f"/b/{ref}").get_data(as_text=True)
        assert f'data-booking-start="{target}"' in html

        # No one-time link was needed or used by the move.
        assert uses(link.id) == 1 and uses(other_link.id) == 0
        assert client.get(f"/l/{other_token}").status_code == 200

        events = outbox_events()
        assert [event for event, _ in events] == ["booking.created", "booking.rescheduled"]
        moved_event = events[1][1]
        assert moved_event["booking"]["ref"] == ref and moved_event["booking"]["start"] == target
        assert moved_event["link"]["uses"] == 1

        # Moving again raises the sequence again.
        page = reschedule_page(client, ref, days_ahead=6)
        assert ref_of(client.post(f"/b/{ref}/reschedule", data=page.form(page.slots[0]))) == ref
        assert booking_by_ref(ref).sequence == 2 and uses(link.id) == 1

    def test_a_booking_without_a_link_can_be_moved(self, client, make_calendar):
        calendar = make_calendar()
        slot = open_form(client, f"/c/{calendar.slug}?tz=UTC&date={day(3)}").slots[0]
        ref = book_public(client, calendar.slug, slot)
        page = reschedule_page(client, ref)
        assert ref_of(client.post(f"/b/{ref}/reschedule", data=page.form(page.slots[1]))) == ref
        assert iso(booking_by_ref(ref).start_at) == page.slots[1]

    def test_reschedule_to_a_taken_slot_answers_409_with_fresh_slots(self, client, make_calendar, make_link):
        calendar = make_calendar()
        _, token = make_link(calendar)
        ref = book_link(client, token)
        before = snapshot(ref)
        page = reschedule_page(client, ref)
        target = page.slots[1]
        book_public(client, calendar.slug, target, name="Zed Quick", email="zed@example.com")

        response = client.post(f"/b/{ref}/reschedule", data=page.form(target))
        html = response.get_data(as_text=True)
        assert response.status_code == 409
        assert TAKEN in html
        fresh = BookingPage.parse(html)
        assert target not in fresh.slots and fresh.slots
        assert fresh.csrf_token != page.csrf_token
        assert snapshot(ref) == before
        assert not overlapping(calendar.id)
        # The fresh form works.
        assert ref_of(client.post(f"/b/{ref}/reschedule", data=fresh.form(fresh.slots[0]))) == ref

    def test_reschedule_to_a_time_that_is_not_offered_answers_409(self, client, make_calendar, make_link):
        calendar = make_calendar(weekly_hours={str(d): [["09:00", "12:00"]] for d in range(7)})
        _, token = make_link(calendar)
        ref = book_link(client, token)
        before = snapshot(ref)
        page = reschedule_page(client, ref)
        response = client.post(f"/b/{ref}/reschedule", data=page.form(f"{day(5)}T13:00:00Z"))
        assert response.status_code == 409
        assert snapshot(ref) == before

    def test_bad_slot_input_answers_400(self, client, make_link):
        _, token = make_link()
        ref = book_link(client, token)
        before = snapshot(ref)
        page = reschedule_page(client, ref)
        assert client.post(f"/b/{ref}/reschedule", data=page.form("not-a-time")).status_code == 400
        assert client.post(f"/b/{ref}/reschedule", data=page.form("")).status_code == 400
        assert snapshot(ref) == before


# --- signed form tokens ------------------------------------------------------------------------


@pytest.mark.usefixtures("ctx")
class TestFormTokens:
    def test_forged_and_foreign_tokens_answer_400_and_change_nothing(self, client, make_calendar, make_link):
        calendar = make_calendar()
        _, token_a = make_link(calendar)
        _, token_b = make_link(calendar)
        _, token_c = make_link(calendar)
        ref_a = book_link(client, token_a)
        ref_b = book_link(client, token_b, slot=None, days_ahead=4)
        before = snapshot(ref_a)
        a_page, b_page = reschedule_page(client, ref_a), reschedule_page(client, ref_b)
        slot = a_page.slots[3]
        foreign = {
            "forged": "forged-token",
            "empty": "",
            "another booking's cancel form": cancel_token(client, ref_b),
            "its own reschedule form": a_page.csrf_token,
            "a booking page's form": open_form(client, f"/l/{token_c}").csrf_token,
        }
        for label, csrf in foreign.items():
            response = client.post(f"/b/{ref_a}/cancel", data={"csrf_token": csrf, "reason": "x"})
            assert response.status_code == 400, label
        foreign.update(
            {
                "another booking's reschedule form": b_page.csrf_token,
                "its own cancel form": cancel_token(client, ref_a),
            }
        )
        del foreign["its own reschedule form"]
        for label, csrf in foreign.items():
            data = {"csrf_token": csrf, "slot": slot, "timezone": "UTC"}
            response = client.post(f"/b/{ref_a}/reschedule", data=data)
            assert response.status_code == 400, label
            assert "This form has expired" in response.get_data(as_text=True)
        assert client.post(f"/b/{ref_a}/cancel", data={"reason": "x"}).status_code == 400
        assert snapshot(ref_a) == before
        assert booking_by_ref(ref_b).cancelled_at is None and booking_by_ref(ref_b).sequence == 0

    def test_a_token_is_bound_to_its_scope_and_refused_when_altered(self):
        tokens = FormTokens(TEST_SECRET)
        token = tokens.issue("l:1")
        assert tokens.read(token, "l:1", 60)
        for altered in (token + "x", token.replace("l:1", "l:2"), "x" + token, token.rpartition(".")[0]):
            with pytest.raises(InvalidFormToken):
                tokens.read(altered, "l:1", 60)
        with pytest.raises(InvalidFormToken):
            tokens.read(token, "l:2", 60)

    def test_a_token_signed_with_another_secret_is_refused(self, client, make_link):
        _, token = make_link()
        ref = book_link(client, token)
        booking = booking_by_ref(ref)
        other = FormTokens("some-other-secret")
        response = client.post(f"/b/{ref}/cancel", data={"csrf_token": other.issue(f"b:{booking.id}")})
        assert response.status_code == 400
        assert booking_by_ref(ref).cancelled_at is None


# --- races on SQLite and PostgreSQL ------------------------------------------------------------


def _race(app: Flask, posts: list[tuple[str, dict[str, str]]]) -> list[TestResponse]:
    """Send the POSTs from threads released together; return the responses in order."""
    return together(*(partial(app.test_client().post, path, data=data) for path, data in posts))


@pytest.fixture
def race_site(any_app: Flask, make_calendar: MakeCalendar) -> Iterator[tuple[Flask, int]]:
    with any_app.app_context():
        calendar_id = make_calendar().id
    yield any_app, calendar_id


def _issue(app: Flask, calendar_id: int) -> tuple[int, str]:
    with app.app_context():
        link, token = links.issue_link(
            db.session.get_one(Calendar, calendar_id), runtime().link_keys, now=utcnow()
        )
        return link.id, token


ROUNDS = 4


def test_a_reschedule_racing_a_new_booking_for_the_same_slot(race_site) -> None:
    app, calendar_id = race_site
    client = app.test_client()
    outcomes = set()
    for round_ in range(ROUNDS):
        days_ahead = 2 + round_
        link_a, token_a = _issue(app, calendar_id)
        link_b, token_b = _issue(app, calendar_id)
        ref_a = book_link(client, token_a, days_ahead=days_ahead, email="ann@example.com")
        move = reschedule_page(client, ref_a, days_ahead=days_ahead)
        target = move.slots[4]
        form_b = open_form(client, f"/l/{token_b}?tz=UTC&date={day(days_ahead)}")
        assert target in form_b.slots
        with app.app_context():
            before = snapshot(ref_a)
            count = db.session.scalar(sa.select(sa.func.count(Booking.id)))

        responses = _race(
            app,
            [
                (f"/b/{ref_a}/reschedule", move.form(target)),
                (f"/l/{token_b}", form_b.form(target, name="Ben Rival", email="ben@example.com")),
            ],
        )
        statuses = [r.status_code for r in responses]
        assert sorted(statuses) == [303, 409], statuses
        loser = responses[statuses.index(409)]
        html = loser.get_data(as_text=True)
        assert TAKEN in html
        fresh = BookingPage.parse(html)
        assert target not in fresh.slots and fresh.slots

        with app.app_context():
            assert not overlapping(calendar_id)
            live_at_target = db.session.scalars(
                sa.select(Booking).where(
                    Booking.calendar_id == calendar_id,
                    Booking.cancelled_at.is_(None),
                    Booking.start_at == datetime.fromisoformat(target),
                )
            ).all()
            assert len(live_at_target) == 1
            if statuses[0] == 303:  # the reschedule won
                outcomes.add("reschedule")
                assert ref_of(responses[0]) == ref_a
                assert live_at_target[0].ref == ref_a and booking_by_ref(ref_a).sequence == 1
                assert uses(link_b) == 0
                assert db.session.scalar(sa.select(sa.func.count(Booking.id))) == count
            else:  # the new booking won; the loser's booking is intact
                outcomes.add("booking")
                assert live_at_target[0].invitee_email == "ben@example.com"
                assert snapshot(ref_a) == before
                assert uses(link_b) == 1
            assert uses(link_a) == 1
    assert outcomes  # which side wins is up to the scheduler


def test_two_reschedules_racing_for_the_same_slot(race_site) -> None:
    app, calendar_id = race_site
    client = app.test_client()
    for round_ in range(ROUNDS):
        days_ahead = 2 + round_
        refs = []
        for n in range(2):
            _, token = _issue(app, calendar_id)
            refs.append(book_link(client, token, days_ahead=days_ahead, email=f"p{n}@example.com"))
        pages = [reschedule_page(client, ref, days_ahead=days_ahead) for ref in refs]
        target = pages[0].slots[5]
        assert target in pages[1].slots
        with app.app_context():
            before = {ref: snapshot(ref) for ref in refs}

        responses = _race(
            app, [(f"/b/{ref}/reschedule", page.form(target)) for ref, page in zip(refs, pages, strict=True)]
        )
        statuses = [r.status_code for r in responses]
        assert sorted(statuses) == [303, 409], statuses
        winner, loser = (0, 1) if statuses[0] == 303 else (1, 0)
        html = responses[loser].get_data(as_text=True)
        assert TAKEN in html and target not in BookingPage.parse(html).slots
        with app.app_context():
            assert not overlapping(calendar_id)
            assert iso(booking_by_ref(refs[winner]).start_at) == target
            assert booking_by_ref(refs[winner]).sequence == 1
            assert snapshot(refs[loser]) == before[refs[loser]]


def test_a_cancel_and_a_reschedule_of_one_booking_racing(race_site) -> None:
    """Whichever lands first, the other sees it: no cancelled booking is moved, no change is lost."""
    app, calendar_id = race_site
    client = app.test_client()
    for round_ in range(ROUNDS):
        _, token = _issue(app, calendar_id)
        ref = book_link(client, token, days_ahead=2 + round_)
        page = reschedule_page(client, ref, days_ahead=2 + round_)
        with app.app_context():
            start = booking_by_ref(ref).start_at
        target = next(s for s in page.slots if datetime.fromisoformat(s) != start)
        cancel, move = _race(
            app,
            [
                (f"/b/{ref}/cancel", {"csrf_token": cancel_token(client, ref), "reason": "race"}),
                (f"/b/{ref}/reschedule", page.form(target)),
            ],
        )
        assert cancel.status_code == 303 and move.status_code in (303, 409), move.status_code
        with app.app_context():
            booking = booking_by_ref(ref)
            assert booking.cancelled_at is not None
            if move.status_code == 303:  # moved first, then cancelled
                assert iso(booking.start_at) == target and booking.sequence == 2
            else:  # cancelled first: the move was refused and changed nothing
                assert "This booking is cancelled." in move.get_data(as_text=True)
                assert booking.start_at == start and booking.rescheduled_at is None
                assert booking.sequence == 1


def test_a_cancel_writes_the_booking_as_it_is_now_not_as_first_read(race_site) -> None:
    """A write committed after the request read the booking neither fails the cancel nor is lost."""
    app, calendar_id = race_site
    client = app.test_client()
    _, token = _issue(app, calendar_id)
    ref = book_link(client, token)
    target = reschedule_page(client, ref).slots[1]
    with app.app_context():
        stale = booking_by_ref(ref)  # on SQLite this opens a read transaction

        def move_elsewhere() -> None:
            with app.app_context():
                changes.reschedule_booking(stale_id, datetime.fromisoformat(target), utcnow())

        stale_id = stale.id
        thread = threading.Thread(target=move_elsewhere)
        thread.start()
        thread.join(timeout=30)
        changes.cancel_booking(stale.id, utcnow(), by="invitee", reason="late")
        booking = booking_by_ref(ref)
        assert booking.cancelled_at is not None and booking.cancel_reason == "late"
        assert iso(booking.start_at) == target and booking.rescheduled_at is not None
        assert booking.sequence == 2


def test_a_move_sent_twice_at_once_moves_once(race_site) -> None:
    """A double click on "Move my booking": one move and one pair of emails, on both databases."""
    app, calendar_id = race_site
    client = app.test_client()
    for round_ in range(ROUNDS):
        _, token = _issue(app, calendar_id)
        ref = book_link(client, token, days_ahead=2 + round_)
        page = reschedule_page(client, ref, days_ahead=2 + round_)
        target = page.slots[3]
        responses = _race(app, [(f"/b/{ref}/reschedule", page.form(target))] * 2)
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [303, 409], statuses
        with app.app_context():
            booking = booking_by_ref(ref)
            assert iso(booking.start_at) == target and booking.sequence == 1
            moved_emails = [event for event, _ in outbox_events("email") if event == "booking.rescheduled"]
            assert len(moved_emails) == 2 * (round_ + 1)
