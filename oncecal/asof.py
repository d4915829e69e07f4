"""A row as an event saw it: the values the event kept, over the row as it is now."""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


class _AsOf:
    def __init__(self, row: object, kept: dict[str, Any]) -> None:
        self.__dict__.update(_row=row, _kept=kept)

    def __getattr__(self, name: str) -> Any:
        kept = self.__dict__["_kept"]
        return kept[name] if name in kept else getattr(self.__dict__["_row"], name)


def as_of(row: T, **kept: Any) -> T:
    """Return ``row`` read with ``kept`` in place of its own values (e.g. a booking's times then).

    Read-only: it is for rendering what an event says, after the row may
    have changed again.
    """
    return _AsOf(row, kept)  # type: ignore[return-value]  # reads like T: the point of it
