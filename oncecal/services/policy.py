"""What an invitee may still change of a booking: the link's rules, else the calendar's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from oncecal.models import Booking, Calendar, OneTimeLink


@dataclass(frozen=True)
class ChangeRules:
    """What an invitee of a link (or of the calendar's own pages) may change, until when."""

    allow_cancel: bool
    allow_reschedule: bool
    cutoff_hours: int  # changes close this long before the start; 0: at the start


def change_rules(calendar: Calendar, link: OneTimeLink | None) -> ChangeRules:
    """Return the link's rules where it sets them, else the calendar's."""
    if link is None:
        return ChangeRules(calendar.allow_cancel, calendar.allow_reschedule, calendar.change_cutoff_hours)
    return ChangeRules(
        calendar.allow_cancel if link.allow_cancel is None else link.allow_cancel,
        calendar.allow_reschedule if link.allow_reschedule is None else link.allow_reschedule,
        calendar.change_cutoff_hours if link.change_cutoff_hours is None else link.change_cutoff_hours,
    )


@dataclass(frozen=True)
class ChangePolicy:
    can_cancel: bool
    can_reschedule: bool
    # Why a change is closed, for the manage page; None when both are open.
    reason: str | None


def change_policy(booking: Booking, now: datetime) -> ChangePolicy:
    """Tell what the invitee may still change: the link's rules, else the calendar's."""
    calendar = booking.calendar
    rules = change_rules(calendar, booking.link)
    contact = calendar.owner.name
    if booking.cancelled_at is not None:
        return ChangePolicy(False, False, "This booking is cancelled.")
    if booking.start_at - timedelta(hours=rules.cutoff_hours) <= now:
        if rules.cutoff_hours == 0:
            return ChangePolicy(False, False, f"This meeting has started; please contact {contact}.")
        reason = f"Changes close {rules.cutoff_hours} hours before the start; please contact {contact}."
        return ChangePolicy(False, False, reason)
    if not (rules.allow_cancel or rules.allow_reschedule):
        return ChangePolicy(False, False, f"To change this booking, please contact {contact}.")
    # A refused cancel (or move) must say why even while the other change is open.
    if not rules.allow_cancel:
        return ChangePolicy(False, True, f"To cancel this booking, please contact {contact}.")
    if not rules.allow_reschedule:
        return ChangePolicy(True, False, f"To move this booking, please contact {contact}.")
    return ChangePolicy(True, True, None)
