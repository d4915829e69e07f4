"""Owner accounts: sign-up, sign-in and password changes."""

from __future__ import annotations

import sqlalchemy as sa
from werkzeug.security import check_password_hash, generate_password_hash

from oncecal.extensions import db
from oncecal.models import Owner

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


def create_owner(email: str, name: str, password: str, phone: str | None = None) -> Owner:
    """Create an owner with a hashed password."""
    if owner_by_email(email) is not None:
        raise EmailTaken(email)
    owner = Owner(
        email=normalise_email(email),
        name=name.strip(),
        phone=(phone or "").strip() or None,
        password_hash=generate_password_hash(password),
    )
    db.session.add(owner)
    try:
        db.session.commit()
    except sa.exc.IntegrityError:
        db.session.rollback()
        raise EmailTaken(email) from None
    return owner


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
    owner.password_hash = generate_password_hash(new)
    db.session.commit()
    return True
