"""Database models: owners, calendars, one-time links and bookings."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from oncecal.columns import UTCDateTime
from oncecal.extensions import Model, db

DEFAULT_WEEKLY_HOURS: dict[str, list[list[str]]] = {
    str(weekday): [["09:00", "17:00"]] for weekday in range(5)
}


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def new_calendar_key() -> str:
    """Return a fresh permanent-link key for a calendar."""
    return secrets.token_urlsafe(12)


def new_booking_ref() -> str:
    """Return an unguessable booking reference (128 bits)."""
    return secrets.token_urlsafe(16)


def session_binding(password_hash: str) -> str:
    """Return a short fingerprint of a password hash for the session cookie (not the hash itself)."""
    return hashlib.sha256(b"oncecal/session/" + password_hash.encode()).hexdigest()[:16]


class Owner(UserMixin, Model):
    __tablename__ = "owners"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    phone: Mapped[str | None] = mapped_column(sa.String(40))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    # What the expired-link page shows an invitee who needs a new link.
    show_name: Mapped[bool] = mapped_column(default=True)
    show_email: Mapped[bool] = mapped_column(default=True)
    show_phone: Mapped[bool] = mapped_column(default=True)
    expired_message: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    calendars: Mapped[list[Calendar]] = relationship(back_populates="owner")

    def get_id(self) -> str:
        """The session's user id, bound to the password: a new password signs every session out."""
        return f"{self.id}:{session_binding(self.password_hash)}"


class Calendar(Model):
    __tablename__ = "calendars"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    # An archived calendar's is rewritten (services/calendars.py, tombstone_slug): the slug is free again.
    slug: Mapped[str] = mapped_column(sa.String(80), unique=True)
    key: Mapped[str] = mapped_column(sa.String(32), unique=True, default=new_calendar_key)
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    duration_minutes: Mapped[int] = mapped_column(default=30)
    # {"0": [["09:00", "17:00"]], ...}: Monday is "0"; several ranges a day.
    weekly_hours: Mapped[dict[str, Any]] = mapped_column(
        sa.JSON, default=lambda: {k: [list(r) for r in v] for k, v in DEFAULT_WEEKLY_HOURS.items()}
    )
    min_notice_minutes: Mapped[int] = mapped_column(default=240)
    days_ahead: Mapped[int] = mapped_column(default=60)
    buffer_minutes: Mapped[int] = mapped_column(default=0)
    location: Mapped[str | None] = mapped_column(sa.String(500))
    public_page_enabled: Mapped[bool] = mapped_column(default=True)
    # {"2026-12-24": []} a day off; {"2026-12-31": [["10:00", "12:00"]]} special hours.
    date_overrides: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    # Origins allowed to frame the booking pages; empty: any site may embed.
    embed_origins: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    # Expiry given to new one-time links unless they say otherwise; None: none.
    default_link_expiry_minutes: Mapped[int | None] = mapped_column()
    # What invitees may change themselves, up to how long before the start.
    allow_cancel: Mapped[bool] = mapped_column(default=True)
    allow_reschedule: Mapped[bool] = mapped_column(default=True)
    # 0: until the start. A cutoff longer than the minimum notice would leave a
    # booking made at short notice with no way to change it.
    change_cutoff_hours: Mapped[int] = mapped_column(default=0)
    # Minutes before the start to remind the invitee; None: no reminder. An
    # explicit None is stored as NULL (without evaluates_none the ORM would
    # leave it out of the INSERT and the default would switch reminders on).
    reminder_minutes: Mapped[int | None] = mapped_column(sa.Integer().evaluates_none(), default=24 * 60)
    # Rises in every transaction that books, moves or cancels on the calendar
    # (which also queues them on this row): kept booking pages are per revision.
    bookings_revision: Mapped[int] = mapped_column(default=0, server_default="0")
    # Rises whenever the busy times of a connected calendar it checks change
    # (a sync, a connection removed): kept booking pages are per revision too.
    busy_revision: Mapped[int] = mapped_column(default=0, server_default="0")
    # Whether any connected calendar is checked for conflicts: pages and
    # bookings of the calendars without one never read busy times.
    checks_busy: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Deleted by its owner, kept for the bookings it had: no page, list or new link shows it.
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    owner: Mapped[Owner] = relationship(back_populates="calendars")
    links: Mapped[list[OneTimeLink]] = relationship(back_populates="calendar")


class OneTimeLink(Model):
    __tablename__ = "one_time_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(sa.ForeignKey("calendars.id", ondelete="CASCADE"), index=True)
    label: Mapped[str | None] = mapped_column(sa.String(200))
    # The token is HMAC(key, nonce); only its SHA-256 is stored, so a dump
    # alone cannot rebuild a usable link (PRODUCT.md rule 6).
    nonce: Mapped[str] = mapped_column(sa.String(64))
    key_id: Mapped[str] = mapped_column(sa.String(16))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    uses: Mapped[int] = mapped_column(default=0)
    max_uses: Mapped[int] = mapped_column(default=1)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    prefill_name: Mapped[str | None] = mapped_column(sa.String(120))
    prefill_email: Mapped[str | None] = mapped_column(sa.String(254))
    external_id: Mapped[str | None] = mapped_column(sa.String(200), index=True)
    link_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", sa.JSON)
    # Per-link overrides of the calendar's cancel/reschedule rules; None: the calendar's.
    allow_cancel: Mapped[bool | None] = mapped_column()
    allow_reschedule: Mapped[bool | None] = mapped_column()
    change_cutoff_hours: Mapped[int | None] = mapped_column()
    # Where the link was made: "share" (the Share dialog), "dashboard", "api", "cli".
    source: Mapped[str] = mapped_column(sa.String(16), default="cli")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    calendar: Mapped[Calendar] = relationship(back_populates="links")
    bookings: Mapped[list[Booking]] = relationship(back_populates="link", order_by="Booking.created_at")


class Booking(Model):
    __tablename__ = "bookings"
    __table_args__ = (
        sa.CheckConstraint("end_at > start_at", name="bookings_end_after_start"),
        sa.CheckConstraint("blocked_until >= end_at", name="bookings_blocked_after_end"),
        # PRODUCT.md rule 5: the database itself refuses overlapping live
        # bookings of one calendar, buffers included. SQLite gets the same
        # guarantee from BEGIN IMMEDIATE with the overlap check inside.
        ExcludeConstraint(
            (sa.column("calendar_id"), "="),
            (sa.func.tstzrange(sa.column("start_at"), sa.column("blocked_until")), "&&"),
            name="bookings_no_overlap",
            using="gist",
            where=sa.text("cancelled_at IS NULL"),
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(sa.String(32), unique=True, default=new_booking_ref)
    # Indexed together with start_at by bookings_calendar_start below.
    calendar_id: Mapped[int] = mapped_column(sa.ForeignKey("calendars.id", ondelete="CASCADE"))
    link_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("one_time_links.id", ondelete="SET NULL"), index=True
    )
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # End plus the calendar's buffer at booking time: the range no other
    # booking may touch.
    blocked_until: Mapped[datetime] = mapped_column(UTCDateTime)
    invitee_name: Mapped[str] = mapped_column(sa.String(120))
    invitee_email: Mapped[str] = mapped_column(sa.String(254))
    invitee_notes: Mapped[str | None] = mapped_column(sa.Text)
    invitee_timezone: Mapped[str] = mapped_column(sa.String(64))
    # The signed form id of the page that made this booking (rule 8).
    form_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(sa.Text)
    # Who cancelled: "invitee" or "owner".
    cancelled_by: Mapped[str | None] = mapped_column(sa.String(16))
    # The iCalendar SEQUENCE: rises with every change calendar apps must apply.
    sequence: Mapped[int] = mapped_column(default=0)
    # A reschedule moves this row: same ref, same UID, a higher sequence.
    rescheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the worker sends the invitee's reminder; None: none due (sent, cancelled, or none asked for).
    remind_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    calendar: Mapped[Calendar] = relationship()
    link: Mapped[OneTimeLink | None] = relationship(back_populates="bookings")


sa.Index("bookings_calendar_start", Booking.calendar_id, Booking.start_at)

sa.event.listen(
    db.metadata,
    "before_create",
    sa.DDL("CREATE EXTENSION IF NOT EXISTS btree_gist").execute_if(dialect="postgresql"),
)


class ApiKey(Model):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    # Shown in lists so owners can tell keys apart; the key itself is shown once.
    prefix: Mapped[str] = mapped_column(sa.String(16))
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    owner: Mapped[Owner] = relationship()


class IdempotentRequest(Model):
    """The first answer to an Idempotency-Key, replayed for 24 hours."""

    __tablename__ = "idempotent_requests"
    __table_args__ = (sa.UniqueConstraint("api_key_id", "key", name="idempotent_requests_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(sa.ForeignKey("api_keys.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(255))
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int | None] = mapped_column()
    response_body: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class WebhookEndpoint(Model):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(sa.String(2000))
    # The signing secret is derived from the app secret and this nonce, like
    # link tokens: a database dump alone cannot forge signatures.
    secret_nonce: Mapped[str] = mapped_column(sa.String(64))
    key_id: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    owner: Mapped[Owner] = relationship()


class Event(Model):
    """A domain event (a booking made, moved, cancelled; a link revoked; a reset asked for).

    Written in the transaction of the change it records, one row per change;
    the worker turns it into deliveries (OutboxMessage rows) after commit.
    ``data`` holds what the change left that may change again before the
    worker gets to it: the booking's times and sequence, the link's uses.
    """

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The public id ("evt_..."), the webhook's id and its deliveries' event_id.
    event_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    type: Mapped[str] = mapped_column(sa.String(40))
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    booking_id: Mapped[int | None] = mapped_column(sa.ForeignKey("bookings.id", ondelete="CASCADE"))
    link_id: Mapped[int | None] = mapped_column(sa.ForeignKey("one_time_links.id", ondelete="CASCADE"))
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when its deliveries are written; NULL: the worker has yet to.
    fanned_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why making its deliveries failed (the event is then left, and shown).
    error: Mapped[str | None] = mapped_column(sa.Text)


sa.Index("events_pending", Event.fanned_out_at, Event.id)


class OutboxMessage(Model):
    """A delivery of an event: one email or one webhook call, with its own attempts."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    event_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    event_type: Mapped[str] = mapped_column(sa.String(40))
    endpoint_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    # Whose deliveries these are, for the dashboard.
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    endpoint: Mapped[WebhookEndpoint | None] = relationship()
    attempts_log: Mapped[list[DeliveryAttempt]] = relationship(
        back_populates="message", order_by="DeliveryAttempt.id"
    )


sa.Index("outbox_due", OutboxMessage.status, OutboxMessage.next_attempt_at)


class DeliveryAttempt(Model):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_code: Mapped[int | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(sa.Text)
    duration_ms: Mapped[int] = mapped_column(default=0)

    message: Mapped[OutboxMessage] = relationship(back_populates="attempts_log")


class PasswordReset(Model):
    """A single-use, expiring password-reset token, stored as its hash."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # The token is rebuilt from these and the secret when its email is sent
    # (like a link's): the outbox never holds it.
    nonce: Mapped[str | None] = mapped_column(sa.String(32))
    key_id: Mapped[str | None] = mapped_column(sa.String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Connection(Model):
    """An owner's account on a CalDAV server, or one ICS feed: where their other calendars are read."""

    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(8))  # "caldav" or "ics"
    # What the owner sees it by: the server's or the feed's host name.
    host: Mapped[str] = mapped_column(sa.String(255))
    # CalDAV: the server URL given and the username (neither is a secret).
    server_url: Mapped[str | None] = mapped_column(sa.String(2000))
    username: Mapped[str | None] = mapped_column(sa.String(254))
    # The password (CalDAV) or the feed URL (a feed's URL is its secret),
    # sealed by oncecal.services.secretbox with the key of key_id.
    secret: Mapped[str] = mapped_column(sa.Text)
    key_id: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    calendars: Mapped[list[ConnectedCalendar]] = relationship(
        back_populates="connection", order_by="ConnectedCalendar.id", cascade="all, delete-orphan"
    )


class ConnectedCalendar(Model):
    """One calendar of a connection (a CalDAV collection, or the feed itself), with its sync state."""

    __tablename__ = "connected_calendars"

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(
        sa.ForeignKey("connections.id", ondelete="CASCADE"), index=True
    )
    # The collection's URL on the CalDAV server; None for a feed (its URL is the connection's secret).
    remote_url: Mapped[str | None] = mapped_column(sa.String(2000))
    name: Mapped[str] = mapped_column(sa.String(200))
    # Bookings can be written to it (a CalDAV calendar; never a feed).
    writable: Mapped[bool] = mapped_column(default=False)
    last_good_read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last read's failure, for the owner; None after a good read.
    error: Mapped[str | None] = mapped_column(sa.Text)
    # "auth" when the server refused the password: trying again cannot help until it changes.
    error_kind: Mapped[str | None] = mapped_column(sa.String(16))
    failures: Mapped[int] = mapped_column(default=0)
    # When the worker reads it next (every 5 minutes; later after failures).
    next_sync_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # Held by whoever reads it now (the worker or a page): one read at a time.
    reading_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A digest of the busy times last read: an unchanged read writes nothing.
    busy_digest: Mapped[str | None] = mapped_column(sa.String(64))

    connection: Mapped[Connection] = relationship(back_populates="calendars")


class CalendarSource(Model):
    """A connected calendar as one OnceCal calendar uses it: checked for conflicts, written to, or both."""

    __tablename__ = "calendar_sources"

    calendar_id: Mapped[int] = mapped_column(
        sa.ForeignKey("calendars.id", ondelete="CASCADE"), primary_key=True
    )
    source_id: Mapped[int] = mapped_column(
        sa.ForeignKey("connected_calendars.id", ondelete="CASCADE"), primary_key=True
    )
    # Its busy times block this calendar's slots ("check for conflicts").
    checks: Mapped[bool] = mapped_column(default=False)
    # It receives this calendar's bookings ("add bookings to"): at most one per calendar.
    writes: Mapped[bool] = mapped_column(default=False)


sa.Index("calendar_sources_source", CalendarSource.source_id)
sa.Index(
    "calendar_sources_one_writer",
    CalendarSource.calendar_id,
    unique=True,
    sqlite_where=CalendarSource.writes,
    postgresql_where=CalendarSource.writes,
)


class BusyInterval(Model):
    """A busy time read from a connected calendar (oncecal.services.busy.BusyTime), as the last good read had it."""

    __tablename__ = "busy_intervals"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(sa.ForeignKey("connected_calendars.id", ondelete="CASCADE"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Wall-clock times (floating, or an all-day date) written as if UTC: put
    # on each OnceCal calendar's clock when its slots are computed.
    floating: Mapped[bool] = mapped_column(default=False)


sa.Index("busy_intervals_source_start", BusyInterval.source_id, BusyInterval.start_at)


class WrittenEvent(Model):
    """A booking written into a connected calendar: where, and the ETag it has there."""

    __tablename__ = "written_events"
    __table_args__ = (sa.UniqueConstraint("booking_id", "target_id", name="written_events_booking_target"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(sa.ForeignKey("bookings.id", ondelete="CASCADE"))
    target_id: Mapped[int] = mapped_column(
        sa.ForeignKey("connected_calendars.id", ondelete="CASCADE"), index=True
    )
    href: Mapped[str] = mapped_column(sa.String(2000))
    etag: Mapped[str | None] = mapped_column(sa.String(255))
    # Set when the event was deleted there (the booking was cancelled).
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
