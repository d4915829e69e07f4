"""One-time links: issue, look up, judge, and consume-and-book in one transaction.

This module is where "how does a link expire" is answered (PRODUCT.md rules
1–4): status is revoked, else used, else expired, else active; opening a link
never uses it; a booking uses it in the same transaction that writes the
booking, through a conditional UPDATE that only succeeds while it is active.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import contains_eager

from oncecal import events
from oncecal.db import write_transaction
from oncecal.extensions import db
from oncecal.models import Calendar, OneTimeLink
from oncecal.schemas import LinkSettings, LinkStatus
from oncecal.services.bookings import (
    Booked,
    FormAlreadyUsed,
    Invitee,
    SlotUnavailable,
    booking_for_form,
    insert_booking,
)
from oncecal.services.tokens import LinkKeys, hash_token, looks_like_token


class LinkNotActive(Exception):
    """The link is used, expired or revoked; it cannot be booked."""

    def __init__(self, status: LinkStatus) -> None:
        super().__init__(status.value)
        self.status = status


def status_of(link: OneTimeLink, now: datetime) -> LinkStatus:
    """Return a link's status by the order of rule 1."""
    if link.revoked_at is not None:
        return LinkStatus.REVOKED
    if link.uses >= link.max_uses:
        return LinkStatus.USED
    if link.expires_at is not None and link.expires_at <= now:
        return LinkStatus.EXPIRED
    return LinkStatus.ACTIVE


def is_active_clause(now: datetime | sa.BindParameter[datetime]) -> sa.ColumnElement[bool]:
    """Return the SQL twin of ``status_of(link, now) is ACTIVE``."""
    return sa.and_(
        OneTimeLink.revoked_at.is_(None),
        OneTimeLink.uses < OneTimeLink.max_uses,
        sa.or_(OneTimeLink.expires_at.is_(None), OneTimeLink.expires_at > now),
    )


def status_clause(status: LinkStatus, now: datetime) -> sa.ColumnElement[bool]:
    """Return a filter that selects the links with ``status`` at ``now``."""
    revoked = OneTimeLink.revoked_at.is_not(None)
    used = OneTimeLink.uses >= OneTimeLink.max_uses
    expired = sa.and_(OneTimeLink.expires_at.is_not(None), OneTimeLink.expires_at <= now)
    match status:
        case LinkStatus.REVOKED:
            return revoked
        case LinkStatus.USED:
            return sa.and_(sa.not_(revoked), used)
        case LinkStatus.EXPIRED:
            return sa.and_(sa.not_(revoked), sa.not_(used), expired)
        case LinkStatus.ACTIVE:
            return is_active_clause(now)


def issue_link(
    calendar: Calendar, keys: LinkKeys, *, now: datetime, source: str = "cli", **fields: Any
) -> tuple[OneTimeLink, str]:
    """Create a link on a calendar and return it with its token.

    ``fields`` are a schemas.LinkSettings' (label, max_uses, expires_at,
    prefill_name, prefill_email, external_id, metadata and the change
    rules), checked by it as of ``now``: a bad one raises its
    ValidationError, a ValueError naming each field. The change rules left
    None are the calendar's. Inside another write transaction (several
    links at once) the link joins it.
    """
    settings = LinkSettings.checked(now, **fields)
    new = keys.new_token()
    link = OneTimeLink(
        calendar_id=calendar.id,
        nonce=new.nonce,
        key_id=new.key_id,
        token_hash=new.token_hash,
        source=source,
        created_at=now,
        **settings.columns(),
    )
    with write_transaction():
        db.session.add(link)
        db.session.flush()
    return link, new.token


# Built once: the page needs the calendar and its owner too (one query, not
# three), and a statement reused with a bound value skips SQLAlchemy's
# statement building and cache-key work on every page load.
_LINK_BY_TOKEN_HASH = (
    sa.select(OneTimeLink)
    .join(OneTimeLink.calendar)
    .join(Calendar.owner)
    .options(contains_eager(OneTimeLink.calendar).contains_eager(Calendar.owner))
    .where(OneTimeLink.token_hash == sa.bindparam("token_hash"))
)
_NO_TOKEN = "-" * 43

# Use a link if it is active (rule 2): the one statement that decides who
# gets a single-use link. Built once, run as Core: every booking runs it.
_USE_LINK = (
    sa.update(OneTimeLink)
    .where(
        OneTimeLink.id == sa.bindparam("link_id"),
        is_active_clause(sa.bindparam("now", type_=OneTimeLink.expires_at.type)),
    )
    .values(uses=OneTimeLink.uses + 1)
    .returning(OneTimeLink.calendar_id, OneTimeLink.uses)
)


def find_link(keys: LinkKeys, token: str) -> OneTimeLink | None:
    """Return the link a token opens, or None for any unknown or malformed token."""
    # A malformed token is looked up too (as a hash nothing has), so that every
    # unknown token costs the same query and answers in the same time (rule 7).
    shaped = looks_like_token(token)
    token_hash = hash_token(token if shaped else _NO_TOKEN)
    link = db.session.scalar(_LINK_BY_TOKEN_HASH, {"token_hash": token_hash})
    if not shaped or link is None:
        return None
    if not keys.matches(token, link.nonce, link.key_id):
        return None
    return link


def token_of(keys: LinkKeys, link: OneTimeLink) -> str | None:
    """Rebuild a link's token so its owner can copy it again."""
    return keys.token_for(link.nonce, link.key_id)


def consume_link_and_book(
    link_id: int,
    start: datetime,
    invitee: Invitee,
    *,
    form_id: str | None,
    now: datetime,
) -> Booked:
    """Use the link and create its booking in ONE transaction, with its booking.created event.

    Raises LinkNotActive when the link cannot be used (nothing is written) and
    SlotUnavailable when the slot is gone (the link stays unused). The same
    form sent again with its slot and email returns its booking; with other
    content it is a new attempt: LinkNotActive on a used link, else
    FormAlreadyUsed (rule 8).
    """
    try:
        # after_reads: the request's reads (the link, its page) need not be
        # ended first; every check here is in the statements below.
        with write_transaction(after_reads=True):
            # A form sent again (rule 8) is found on the way out: its link is
            # used up, or its slot taken by its own booking, or (on a link
            # with uses left) its form id, unique, refused.
            used = db.session.connection().execute(_USE_LINK, {"link_id": link_id, "now": now}).first()
            if used is None:
                raise _LinkRefused
            return insert_booking(
                used.calendar_id,
                start,
                invitee,
                form_id=form_id,
                now=now,
                link_id=link_id,
                link_uses=used.uses,
            )
    except _LinkRefused:
        # A concurrent post of this same form may have used the link.
        with suppress(FormAlreadyUsed):
            if form_id and (replay := booking_for_form(form_id, start, invitee.email)) is not None:
                return Booked.of(replay)
        link = db.session.get_one(OneTimeLink, link_id)
        raise LinkNotActive(status_of(link, now)) from None
    except (sa.exc.IntegrityError, SlotUnavailable):
        if form_id and (replay := booking_for_form(form_id, start, invitee.email)) is not None:
            return Booked.of(replay)
        raise SlotUnavailable from None


class _LinkRefused(Exception):
    """The conditional UPDATE matched no active link."""


def revoke_link(link_id: int, now: datetime) -> None:
    """Revoke a link, recording link.revoked; a revoked link can never be booked again."""
    with write_transaction():
        link = db.session.get_one(OneTimeLink, link_id, with_for_update=True, populate_existing=True)
        if link.revoked_at is not None:
            return
        link.revoked_at = now
        events.record(
            "link.revoked",
            owner_id=link.calendar.owner_id,
            now=now,
            link_id=link.id,
            data={"link_uses": link.uses, "link_revoked_at": now.isoformat()},
        )


def newest_share_link(calendar_id: int, now: datetime) -> OneTimeLink | None:
    """Return the newest unused link made from the Share dialog, if any."""
    return db.session.scalar(
        sa.select(OneTimeLink)
        .where(
            OneTimeLink.calendar_id == calendar_id,
            OneTimeLink.source == "share",
            OneTimeLink.uses == 0,
            is_active_clause(now),
        )
        .order_by(OneTimeLink.id.desc())
        .limit(1)
    )


def links_of(calendar_id: int, now: datetime, status: LinkStatus | None = None) -> list[OneTimeLink]:
    """Return a calendar's links, newest first, optionally of one status."""
    query = sa.select(OneTimeLink).where(OneTimeLink.calendar_id == calendar_id)
    if status is not None:
        query = query.where(status_clause(status, now))
    return list(db.session.scalars(query.order_by(OneTimeLink.id.desc())))
