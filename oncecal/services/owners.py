"""Owner accounts: sign-up, sign-in, profile and password changes."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from werkzeug.security import check_password_hash, generate_password_hash

from oncecal import events
from oncecal.db import write_transaction
from oncecal.extensions import db
from oncecal.models import Owner, PasswordReset
from oncecal.services.tokens import LinkKeys

MIN_PASSWORD_LENGTH = 10
# Checked when no owner has the email, so a miss costs as long as a hit.
_DUMMY_HASH = generate_password_hash("oncecal-timing-equaliser")


class EmailTaken(Exception):
    """Another owner already signed up with this email."""


def normalise_email(email: str) -> str:
    """Return the form an owner's email is stored and looked up in."""
    return email.strip().lower()


def owner_by_email(email: str) -> Owner | None:
    """Return the owner with this email, if any."""
    return db.session.scalar(sa.select(Owner).where(Owner.email == normalise_email(email)))


def create_owner(
    email: str, name: str, password: str, phone: str | None = None, *, expired_message: str | None = None
) -> Owner:
    """Create an owner with a hashed password."""
    owner = Owner(
        email=normalise_email(email),
        name=name.strip(),
        phone=(phone or "").strip() or None,
        password_hash=generate_password_hash(password),
        expired_message=expired_message,
    )
    try:
        with write_transaction():
            if owner_by_email(email) is not None:
                raise EmailTaken(email)
            db.session.add(owner)
    except sa.exc.IntegrityError:
        raise EmailTaken(email) from None
    return owner


def update_profile(
    owner: Owner,
    *,
    name: str,
    email: str,
    phone: str | None,
    show_name: bool,
    show_email: bool,
    show_phone: bool,
    expired_message: str | None,
) -> None:
    """Change an owner's contact details and what their pages show; raise EmailTaken for another's email."""
    try:
        with write_transaction():
            taken = owner_by_email(email)
            if taken is not None and taken.id != owner.id:
                raise EmailTaken(email)
            owner.name = name
            owner.email = normalise_email(email)
            owner.phone = phone or None
            owner.show_name = show_name
            owner.show_email = show_email
            owner.show_phone = show_phone
            owner.expired_message = expired_message or None
    except sa.exc.IntegrityError:
        raise EmailTaken(email) from None


def authenticate(email: str, password: str) -> Owner | None:
    """Return the owner these credentials belong to, or None."""
    owner = owner_by_email(email)
    if owner is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return owner if check_password_hash(owner.password_hash, password) else None


def change_password(owner: Owner, current: str, new: str) -> bool:
    """Set a new password if ``current`` is right; tell whether it was."""
    if not check_password_hash(owner.password_hash, current):
        return False
    password_hash = generate_password_hash(new)
    with write_transaction():
        owner.password_hash = password_hash
    return True


RESET_LIFETIME = timedelta(hours=1)


def start_password_reset(
    email: str, keys: LinkKeys, now: datetime
) -> tuple[Owner, PasswordReset, str] | None:
    """Make a single-use reset token for the owner of ``email``, if there is one, and record password.reset.

    The token is derived like a link's (HMAC of a nonce); only its hash, the
    nonce and the key id are stored. The worker emails it from the event.
    """
    with write_transaction():
        owner = owner_by_email(email)
        if owner is None:
            return None
        fresh = keys.new_token()
        reset = PasswordReset(
            owner_id=owner.id,
            token_hash=_token_hash(fresh.token),
            nonce=fresh.nonce,
            key_id=fresh.key_id,
            created_at=now,
            expires_at=now + RESET_LIFETIME,
        )
        db.session.add(reset)
        db.session.flush()
        events.record("password.reset", owner_id=owner.id, now=now, data={"password_reset": reset.id})
        return owner, reset, fresh.token


def reset_target(raw: str, now: datetime) -> PasswordReset | None:
    """Return the unused, unexpired reset a token opens, or None."""
    if len(raw) > 100:
        return None
    reset = db.session.scalar(sa.select(PasswordReset).where(PasswordReset.token_hash == _token_hash(raw)))
    if reset is None or reset.used_at is not None or reset.expires_at <= now:
        return None
    return reset


def finish_password_reset(raw: str, new_password: str, now: datetime) -> Owner | None:
    """Set a new password through a reset token, using the token up."""
    password_hash = generate_password_hash(new_password)
    with write_transaction():
        reset = reset_target(raw, now)
        if reset is None:
            return None
        # Session.execute() types every result as Result; an UPDATE's is a CursorResult.
        used = cast(
            CursorResult[Any],
            db.session.execute(
                sa.update(PasswordReset)
                .where(PasswordReset.id == reset.id, PasswordReset.used_at.is_(None))
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            ),
        )
        if used.rowcount != 1:
            return None
        # Any other reset link of the owner's stops working too.
        db.session.execute(
            sa.update(PasswordReset)
            .where(PasswordReset.owner_id == reset.owner_id, PasswordReset.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        owner = db.session.get_one(Owner, reset.owner_id)
        owner.password_hash = password_hash
    return owner


def _token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()
