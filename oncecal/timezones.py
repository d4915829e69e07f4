"""Time zone names: validation and the short list offered without JavaScript."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

# Shown in the no-JS select; with JavaScript the browser's own full list
# replaces it, which keeps the first load small.
COMMON_ZONES = (
    "UTC",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Istanbul",
    "Africa/Lagos",
    "Africa/Johannesburg",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
)


# The areas of the names browsers offer (Intl.supportedValuesOf("timeZone"), which
# also keeps some old ones such as Asia/Calcutta). The zone database holds other
# files too (localtime, Factory, posixrules, US/Eastern, EST5EDT, Etc/GMT+5): no
# place an invitee or an owner is in.
PLACE_AREAS = (
    "Africa/",
    "America/",
    "Antarctica/",
    "Arctic/",
    "Asia/",
    "Atlantic/",
    "Australia/",
    "Europe/",
    "Indian/",
    "Pacific/",
)


@lru_cache(maxsize=1)
def _known() -> frozenset[str]:
    return frozenset(name for name in available_timezones() if name == "UTC" or name.startswith(PLACE_AREAS))


def is_valid_zone(name: str | None) -> bool:
    """Tell whether ``name`` is UTC or the IANA zone of a place, as the zone picker offers."""
    return bool(name) and name in _known()


def zone(name: str) -> ZoneInfo:
    """Return the ZoneInfo of a name already checked with is_valid_zone."""
    return ZoneInfo(name)


def zone_choices(current: str) -> list[str]:
    """Return the short list of zones, with ``current`` in it."""
    return sorted({*COMMON_ZONES, current})


def all_zones() -> list[str]:
    """Return every zone is_valid_zone accepts, sorted, for the owner's settings."""
    return sorted(_known())
