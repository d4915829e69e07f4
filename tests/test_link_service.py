"""The one-time link rules, called directly (PRODUCT.md rules 1–4 and 6)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask
from psycopg import sql

from oncecal.app_objects import runtime
from oncecal.extensions import db
from oncecal.models import Booking, Calendar, OneTimeLink, OutboxMessage, Owner, WebhookEndpoint, utcnow
from oncecal.services import bookings, changes, links
from oncecal.services.bookings import FormAlreadyUsed, Invitee, SlotUnavailable
from oncecal.services.links import LinkNotActive, LinkStatus
from oncecal.services.tokens import LinkKeys, hash_token
from tests.conftest import fan_out_events
from tests.support.apps import create_pg_database, drop_pg_database, make_test_app

INVITEE = Invitee(name="Ivy", email="ivy@example.com", timezone="UTC")


def _endpoint(owner: Owner, *, disabled: bool = False) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        owner_id=owner.id,
        url="http://127.0.0.1:9/hook",
        secret_nonce="n",
        key_id="k",
        disabled_at=utcnow() if disabled else None,
    )
    db.session.add(endpoint)
    db.session.commit()
    return endpoint


def first_slot(calendar, now=None):
    return bookings.open_slots(calendar, now or utcnow())[0]


@pytest.fixture
def any_ctx(any_app: Flask):
    with any_app.app_context():
        yield


@pytest.mark.usefixtures("any_ctx")
class TestConsumeLinkAndBook:
    def test_booking_uses_the_link_and_writes_one_booking(self, make_link):
        link, _ = make_link()
        booking = links.consume_link_and_book(
            link.id, first_slot(link.calendar), INVITEE, form_id="f1", now=utcnow()
        )
        db.session.refresh(link)
        assert link.uses == 1
        assert links.status_of(link, utcnow()) is LinkStatus.USED
        assert db.session.get_one(Booking, booking.id).link_id == link.id
        assert db.session.scalar(sa.select(sa.func.count(Booking.id))) == 1

    def test_second_booking_on_used_link_is_refused_as_used(self, make_link):
        link, _ = make_link()
        slots = bookings.open_slots(link.calendar, utcnow())
        links.consume_link_and_book(link.id, slots[0], INVITEE, form_id="f1", now=utcnow())
        with pytest.raises(LinkNotActive) as refused:
            links.consume_link_and_book(link.id, slots[5], INVITEE, form_id="f2", now=utcnow())
        assert refused.value.status is LinkStatus.USED
        assert db.session.scalar(sa.select(sa.func.count(Booking.id))) == 1

    def test_taken_slot_leaves_the_link_unused(self, make_link, make_calendar):
        calendar = make_calendar()
        winner, _ = make_link(calendar)
        loser, _ = make_link(calendar)
        slot = first_slot(calendar)
        links.consume_link_and_book(winner.id, slot, INVITEE, form_id="w", now=utcnow())
        with pytest.raises(SlotUnavailable):
            links.consume_link_and_book(loser.id, slot, INVITEE, form_id="l", now=utcnow())
        db.session.refresh(loser)
        assert loser.uses == 0
        assert links.status_of(loser, utcnow()) is LinkStatus.ACTIVE

    def test_buffer_blocks_the_adjacent_slot(self, make_link, make_calendar):
        calendar = make_calendar(buffer_minutes=15)
        first, _ = make_link(calendar)
        second, _ = make_link(calendar)
        slots = bookings.open_slots(calendar, utcnow())
        links.consume_link_and_book(first.id, slots[0], INVITEE, form_id="a", now=utcnow())
        adjacent = slots[0] + timedelta(minutes=calendar.duration_minutes)
        assert adjacent not in bookings.open_slots(calendar, utcnow())
        with pytest.raises(SlotUnavailable):
            links.consume_link_and_book(second.id, adjacent, INVITEE, form_id="b", now=utcnow())
        assert db.session.get_one(OneTimeLink, second.id).uses == 0

    @pytest.mark.parametrize(
        ("made_with", "then"),
        [(30, 0), (0, 30)],
        ids=["a booking keeps the buffer it was made with", "a raised buffer applies before a new booking"],
    )
    def test_a_changed_buffer_keeps_bookings_apart(self, make_link, make_calendar, made_with, then):
        calendar = make_calendar(buffer_minutes=made_with)
        start = first_slot(calendar)
        links.consume_link_and_book(make_link(calendar)[0].id, start, INVITEE, form_id="a", now=utcnow())
        calendar.buffer_minutes = then
        db.session.commit()
        # Either way 30 minutes of buffer lie between the booking and the
        # next: the next slot is in the way, the one after is free.
        with pytest.raises(SlotUnavailable):
            links.consume_link_and_book(
                make_link(calendar)[0].id, start + timedelta(minutes=30), INVITEE, form_id="b", now=utcnow()
            )
        links.consume_link_and_book(
            make_link(calendar)[0].id, start + timedelta(minutes=60), INVITEE, form_id="c", now=utcnow()
        )

    def test_slot_outside_availability_is_refused(self, make_link):
        link, _ = make_link()
        odd = first_slot(link.calendar) + timedelta(minutes=7)
        with pytest.raises(SlotUnavailable):
            links.consume_link_and_book(link.id, odd, INVITEE, form_id="x", now=utcnow())
        assert db.session.get_one(OneTimeLink, link.id).uses == 0

    def test_same_form_id_slot_and_email_return_the_same_booking(self, make_link):
        link, _ = make_link(max_uses=5)
        slot = first_slot(link.calendar)
        first = links.consume_link_and_book(link.id, slot, INVITEE, form_id="same", now=utcnow())
        retyped = replace(INVITEE, name="Ivy again", email="IVY@example.COM")
        again = links.consume_link_and_book(link.id, slot, retyped, form_id="same", now=utcnow())
        assert again.id == first.id
        assert db.session.get_one(OneTimeLink, link.id).uses == 1

    def test_same_form_id_with_another_slot_or_email_is_refused_and_uses_nothing(self, make_link):
        link, _ = make_link(max_uses=5)
        slot = first_slot(link.calendar)
        first = links.consume_link_and_book(link.id, slot, INVITEE, form_id="same", now=utcnow())
        other = bookings.open_slots(link.calendar, utcnow())[3]
        for start, invitee in ((other, INVITEE), (slot, replace(INVITEE, email="eve@example.com"))):
            with pytest.raises(FormAlreadyUsed):
                links.consume_link_and_book(link.id, start, invitee, form_id="same", now=utcnow())
        db.session.expire_all()
        assert db.session.get_one(OneTimeLink, link.id).uses == 1
        assert db.session.scalars(sa.select(Booking.id)).all() == [first.id]

    def test_same_form_id_with_other_content_on_a_used_link_is_refused_as_used(self, make_link):
        link, _ = make_link()
        slot = first_slot(link.calendar)
        links.consume_link_and_book(link.id, slot, INVITEE, form_id="same", now=utcnow())
        other = bookings.open_slots(link.calendar, utcnow())[3]
        with pytest.raises(LinkNotActive) as refused:
            links.consume_link_and_book(link.id, other, INVITEE, form_id="same", now=utcnow())
        assert refused.value.status is LinkStatus.USED

    def test_calendar_page_form_sent_again_finds_its_booking_only_with_the_same_slot_and_email(
        self, make_calendar
    ):
        calendar = make_calendar()
        slot = first_slot(calendar)
        first = bookings.book_calendar(calendar.id, slot, INVITEE, form_id="c", now=utcnow())
        again = bookings.book_calendar(calendar.id, slot, INVITEE, form_id="c", now=utcnow())
        assert again.id == first.id
        other = bookings.open_slots(calendar, utcnow())[3]
        with pytest.raises(FormAlreadyUsed):
            bookings.book_calendar(calendar.id, other, INVITEE, form_id="c", now=utcnow())
        assert db.session.scalars(sa.select(Booking.id)).all() == [first.id]

    def test_multi_use_link_books_up_to_max_uses(self, make_link):
        link, _ = make_link(max_uses=3)
        slots = bookings.open_slots(link.calendar, utcnow())
        for i in range(3):
            links.consume_link_and_book(link.id, slots[i * 2], INVITEE, form_id=f"f{i}", now=utcnow())
        with pytest.raises(LinkNotActive):
            links.consume_link_and_book(link.id, slots[8], INVITEE, form_id="f9", now=utcnow())

    def test_cancelled_booking_frees_time_but_not_the_use(self, make_link, make_calendar):
        calendar = make_calendar()
        link, _ = make_link(calendar)
        other, _ = make_link(calendar)
        slot = first_slot(calendar)
        booked = links.consume_link_and_book(link.id, slot, INVITEE, form_id="a", now=utcnow())
        changes.cancel_booking(booked.id, utcnow(), by="owner")
        assert slot in bookings.open_slots(calendar, utcnow())
        assert links.status_of(db.session.get_one(OneTimeLink, link.id), utcnow()) is LinkStatus.USED
        links.consume_link_and_book(other.id, slot, INVITEE, form_id="b", now=utcnow())

    def test_booking_events_go_to_the_owners_live_endpoints_only(self, make_link, make_owner, make_calendar):
        quiet, loud = make_owner(), make_owner()
        live = _endpoint(loud)
        _endpoint(loud, disabled=True)
        _endpoint(quiet, disabled=True)
        for owner in (quiet, loud):
            link, _ = make_link(make_calendar(owner))
            links.consume_link_and_book(
                link.id,
                first_slot(link.calendar),
                INVITEE,
                form_id=f"f{owner.id}",
                now=utcnow(),
            )
        fan_out_events()
        sent = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "webhook")).all()
        assert [(m.owner_id, m.endpoint_id, m.event_type) for m in sent] == [
            (loud.id, live.id, "booking.created")
        ]

    def test_the_booking_follows_the_calendar_as_it_is_when_booked(self, make_link, make_calendar):
        # The page was read with a reminder on; the owner turns it off before
        # the invitee books. The booking's own statements read the calendar
        # again under its lock, and its reminder follows that, not the page.
        link, _ = make_link(make_calendar(reminder_minutes=60))
        slot = bookings.open_slots(link.calendar, utcnow())[-1]
        assert link.calendar.reminder_minutes == 60
        with db.engine.begin() as owner_edit:
            owner_edit.execute(
                sa.update(Calendar).where(Calendar.id == link.calendar_id).values(reminder_minutes=None)
            )
        booked = links.consume_link_and_book(link.id, slot, INVITEE, form_id="x", now=utcnow())
        assert db.session.get_one(Booking, booked.id).remind_at is None

    def test_database_refuses_overlapping_live_bookings(self, make_calendar):
        calendar = make_calendar()
        start = first_slot(calendar)

        def row(ref: str) -> Booking:
            return Booking(
                ref=ref,
                calendar_id=calendar.id,
                start_at=start,
                end_at=start + timedelta(minutes=30),
                blocked_until=start + timedelta(minutes=30),
                invitee_name="x",
                invitee_email="x@example.com",
                invitee_timezone="UTC",
            )

        db.session.add(row("one"))
        db.session.commit()
        if db.engine.dialect.name != "postgresql":
            pytest.skip("SQLite enforces rule 5 through BEGIN IMMEDIATE, tested by the race tests")
        db.session.add(row("two"))
        with pytest.raises(sa.exc.IntegrityError):
            db.session.commit()


@pytest.mark.usefixtures("ctx")
class TestStatus:
    def test_status_order_is_revoked_used_expired_active(self, make_link):
        now = utcnow()
        link, _ = make_link(expires_at=now - timedelta(seconds=1))
        assert links.status_of(link, now) is LinkStatus.EXPIRED
        link.uses = 1
        assert links.status_of(link, now) is LinkStatus.USED
        link.revoked_at = now
        assert links.status_of(link, now) is LinkStatus.REVOKED

    def test_link_expires_exactly_at_expires_at(self, make_link):
        now = utcnow()
        link, _ = make_link(expires_at=now + timedelta(hours=1))
        assert links.status_of(link, now + timedelta(minutes=59)) is LinkStatus.ACTIVE
        assert links.status_of(link, now + timedelta(hours=1)) is LinkStatus.EXPIRED

    def test_status_clause_agrees_with_status_of(self, make_link, make_calendar):
        now = utcnow()
        calendar = make_calendar()
        made = {
            LinkStatus.ACTIVE: make_link(calendar)[0],
            LinkStatus.USED: make_link(calendar)[0],
            LinkStatus.EXPIRED: make_link(calendar, expires_at=now - timedelta(minutes=1))[0],
            LinkStatus.REVOKED: make_link(calendar)[0],
        }
        made[LinkStatus.USED].uses = 1
        made[LinkStatus.REVOKED].revoked_at = now
        db.session.commit()
        for status, link in made.items():
            assert links.status_of(link, now) is status
            ids = db.session.scalars(sa.select(OneTimeLink.id).where(links.status_clause(status, now))).all()
            assert ids == [link.id]

    def test_expired_link_cannot_be_booked(self, make_link):
        now = utcnow()
        link, _ = make_link(expires_at=now + timedelta(minutes=5))
        slot = first_slot(link.calendar)
        with pytest.raises(LinkNotActive) as refused:
            links.consume_link_and_book(link.id, slot, INVITEE, form_id="x", now=now + timedelta(minutes=6))
        assert refused.value.status is LinkStatus.EXPIRED

    def test_revoked_link_cannot_be_booked(self, make_link):
        link, _ = make_link()
        links.revoke_link(link.id, utcnow())
        with pytest.raises(LinkNotActive) as refused:
            links.consume_link_and_book(
                link.id, first_slot(link.calendar), INVITEE, form_id="x", now=utcnow()
            )
        assert refused.value.status is LinkStatus.REVOKED

    def test_max_uses_outside_1_to_1000_is_refused(self, make_calendar):
        calendar = make_calendar()
        for bad in (0, 1001):
            with pytest.raises(ValueError):
                links.issue_link(calendar, runtime().link_keys, now=utcnow(), max_uses=bad)


@pytest.mark.usefixtures("ctx")
class TestTokens:
    def test_database_holds_no_token_only_its_hash(self, make_link):
        _link, token = make_link()
        row = db.session.execute(sa.text("SELECT * FROM one_time_links")).mappings().one()
        assert token not in {str(v) for v in row.values()}
        assert row["token_hash"] == hash_token(token)

    def test_owner_can_rebuild_the_token_to_copy_it_again(self, make_link):
        link, token = make_link()
        assert links.token_of(runtime().link_keys, link) == token

    def test_token_found_and_wrong_tokens_are_not(self, make_link):
        link, token = make_link()
        keys = runtime().link_keys
        assert links.find_link(keys, token).id == link.id
        assert links.find_link(keys, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert links.find_link(keys, token + "x") is None
        assert links.find_link(keys, "") is None
        assert links.find_link(keys, "../../etc/passwd") is None

    def test_token_carries_at_least_128_bits(self, make_link):
        _, token = make_link()
        assert len(token) * 6 >= 128

    def test_rotated_secret_keeps_old_links_valid(self, make_link, app):
        link, token = make_link()
        rotated = LinkKeys("a-brand-new-secret", [app.config["SECRET_KEY"]])
        assert links.find_link(rotated, token).id == link.id
        assert links.token_of(rotated, link) == token
        _, new_token = links.issue_link(link.calendar, rotated, now=utcnow())
        assert links.find_link(rotated, new_token) is not None
        assert links.find_link(LinkKeys("a-brand-new-secret"), token) is None

    def test_a_dump_without_the_secret_cannot_rebuild_the_link(self, make_link):
        link, _token = make_link()
        assert LinkKeys("some-other-secret").token_for(link.nonce, link.key_id) is None


def test_bookings_read_what_others_committed_whatever_the_database_default_isolation(
    postgres_admin_url, make_link, make_calendar
):
    """A booking goes on in the request's read transaction; the app pins READ COMMITTED for that."""
    url = create_pg_database(postgres_admin_url)
    try:
        with psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True
        ) as admin:
            admin.execute(
                sql.SQL("ALTER DATABASE {} SET default_transaction_isolation = 'repeatable read'").format(
                    sql.Identifier(sa.make_url(url).database)
                )
            )
        app = make_test_app(url)
        with app.app_context():
            db.create_all()
            calendar = make_calendar()
            link, _ = make_link(calendar)
            slot = first_slot(calendar)
            assert db.session.get_one(OneTimeLink, link.id).calendar.name  # the request's read
            assert db.session.scalar(sa.text("SHOW transaction_isolation")) == "read committed"
            # Another booking on the calendar commits in between (its turn raises the revision).
            with db.engine.begin() as other:
                other.execute(
                    sa.update(Calendar)
                    .where(Calendar.id == calendar.id)
                    .values(bookings_revision=Calendar.bookings_revision + 1)
                )
            booking = links.consume_link_and_book(link.id, slot, INVITEE, form_id="f", now=utcnow())
            assert booking.start == slot
            db.session.remove()
            db.engine.dispose()
    finally:
        drop_pg_database(postgres_admin_url, url)
