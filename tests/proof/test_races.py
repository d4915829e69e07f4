"""Concurrent submits against real gunicorn workers (PRODUCT.md rules 4, 5 and 8).

One gunicorn with four workers per backend serves every test of this module
on a freshly migrated database (a temp SQLite file, or a PostgreSQL database
of its own); each test makes its own calendar and links. Every form is
loaded first with a real GET, then all POSTs are released at once through a
barrier, and the rows are read back from the database.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

import pytest
import requests

from oncecal.models import Booking
from tests.proof.harness import (
    BACKENDS,
    Site,
    codes,
    fresh_database,
    iso,
    make_site,
    release_at_once,
    server_errors,
)
from tests.proof.report import Proof

pytestmark = pytest.mark.slow

SERVER = "gunicorn, 4 workers"


@pytest.fixture(scope="module", params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp_dir = tmp_path_factory.mktemp(f"races-{request.param}")
    with fresh_database(request.param, tmp_dir, request) as url, make_site(url, tmp_dir) as running:
        yield running


def test_one_single_use_link_submitted_at_once_books_once(site: Site, proof: Proof) -> None:
    """Rule 4: N submits of one single-use link, each from its own page load: 1 booking, N-1 × 410."""
    n = proof.scale(20, 100)
    scenario = "one single-use link, simultaneous submits"
    tried = f"{n} POSTs at once, each from its own page load and on its own slot; {SERVER}"
    calendar_id = site.new_calendar()
    [(link_id, token)] = site.issue_links(calendar_id, 1)
    pages = [site.load_form(token) for _ in range(n)]
    slots = site.open_slots(calendar_id)[:n]
    assert len(slots) == n
    responses = release_at_once(
        [
            lambda page=page, slot=slot, i=i: site.post_form(
                token, page.form(slot, email=f"ivy{i}@example.com")
            )
            for i, (page, slot) in enumerate(zip(pages, slots, strict=True))
        ]
    )

    booked = site.bookings(link_id=link_id)
    winners = [r for r in responses if r.status_code == 303]
    proof.record(
        f"{scenario}: form ids", tried=f"{n} page loads", expected=n, got=len({p.csrf_token for p in pages})
    )
    proof.record(
        f"{scenario}: answers", tried=tried, expected=codes([303] + [410] * (n - 1)), got=codes(responses)
    )
    proof.record(f"{scenario}: 5xx answers", tried=tried, expected=0, got=server_errors(responses))
    proof.record(f"{scenario}: bookings", tried=tried, expected=1, got=len(booked))
    proof.record(f"{scenario}: link uses", tried=tried, expected={link_id: 1}, got=site.link_uses([link_id]))
    proof.record(
        f"{scenario}: 410 pages that say the link has expired",
        tried=tried,
        expected=n - 1,
        got=sum(1 for r in responses if r.status_code == 410 and "This link has expired" in r.text),
    )
    proof.record(
        f"{scenario}: the 303 leads to the booking",
        tried=tried,
        expected=True,
        got=len(winners) == 1 == len(booked)
        and winners[0].headers["Location"].endswith(f"/b/{booked[0].ref}"),
    )


def test_a_link_with_five_uses_books_five_times(site: Site, proof: Proof) -> None:
    """Rule 1: a link with max_uses=5 hit by M submits on different slots: 5 bookings, M-5 × 410."""
    m = proof.scale(15, 50)
    scenario = "link with max_uses=5, simultaneous submits"
    tried = f"{m} POSTs at once on {m} different slots; {SERVER}"
    calendar_id = site.new_calendar()
    [(link_id, token)] = site.issue_links(calendar_id, 1, max_uses=5)
    pages = [site.load_form(token) for _ in range(m)]
    slots = site.open_slots(calendar_id)[:m]
    responses = release_at_once(
        [
            lambda page=page, slot=slot, i=i: site.post_form(
                token, page.form(slot, email=f"ivy{i}@example.com")
            )
            for i, (page, slot) in enumerate(zip(pages, slots, strict=True))
        ]
    )

    booked = site.bookings(link_id=link_id)
    proof.record(
        f"{scenario}: answers", tried=tried, expected=codes([303] * 5 + [410] * (m - 5)), got=codes(responses)
    )
    proof.record(f"{scenario}: 5xx answers", tried=tried, expected=0, got=server_errors(responses))
    proof.record(f"{scenario}: bookings", tried=tried, expected=5, got=len(booked))
    proof.record(
        f"{scenario}: distinct booked slots", tried=tried, expected=5, got=len({b.start_at for b in booked})
    )
    proof.record(f"{scenario}: link uses", tried=tried, expected={link_id: 5}, got=site.link_uses([link_id]))


def test_links_racing_for_one_slot_book_it_once(site: Site, proof: Proof) -> None:
    """Rule 5: K links of one calendar submit the same slot: 1 booking, K-1 × 409, K-1 links still active."""
    k = proof.scale(6, 20)
    scenario = "links racing for one slot"
    tried = f"{k} links POST the same slot at once; {SERVER}"
    calendar_id = site.new_calendar()
    issued = site.issue_links(calendar_id, k)
    pages = [site.load_form(token) for _id, token in issued]
    slot = site.open_slots(calendar_id)[0]
    responses = release_at_once(
        [
            lambda token=token, page=page: site.post_form(token, page.form(slot))
            for (_id, token), page in zip(issued, pages, strict=True)
        ]
    )

    link_ids = [link_id for link_id, _token in issued]
    booked = site.bookings(calendar_id=calendar_id)
    winner = [link_id for link_id, r in zip(link_ids, responses, strict=True) if r.status_code == 303]
    proof.record(
        f"{scenario}: answers", tried=tried, expected=codes([303] + [409] * (k - 1)), got=codes(responses)
    )
    proof.record(f"{scenario}: 5xx answers", tried=tried, expected=0, got=server_errors(responses))
    proof.record(f"{scenario}: bookings", tried=tried, expected=1, got=len(booked))
    proof.record(
        f"{scenario}: links (used, still active)",
        tried=tried,
        expected={"used": 1, "active": k - 1},
        got=dict(site.statuses(link_ids)),
    )
    proof.record(
        f"{scenario}: the booking is the 303's link's, on the slot",
        tried=tried,
        expected=True,
        got=[(b.link_id, iso(b.start_at)) for b in booked] == [(w, slot) for w in winner],
    )


def test_slots_overlapping_through_the_buffer_book_one(site: Site, proof: Proof) -> None:
    """Rule 5 with buffers: two adjacent slots that the buffer makes overlap, booked at once from two links."""
    rounds = proof.scale(3, 10)
    scenario = "two slots overlapping through a 15-minute buffer"
    tried = f"{rounds} pairs of links, each pair POSTs 10:00 and 10:30-style adjacent 30-minute slots, all at once; {SERVER}"
    calendar_id = site.new_calendar(duration_minutes=30, buffer_minutes=15)
    slots = site.open_slots(calendar_id)
    issued = site.issue_links(calendar_id, 2 * rounds)
    pages = [site.load_form(token) for _id, token in issued]
    chosen = []
    for r in range(rounds):
        first = slots[4 * r]
        second = iso(datetime.fromisoformat(first) + timedelta(minutes=30))
        assert second in slots, "both slots of a pair must be offered"
        chosen += [first, second]
    responses = release_at_once(
        [
            lambda token=token, page=page, slot=slot: site.post_form(token, page.form(slot))
            for (_id, token), page, slot in zip(issued, pages, chosen, strict=True)
        ]
    )

    booked = [b for b in site.bookings(calendar_id=calendar_id) if b.cancelled_at is None]
    overlapping = sum(
        1
        for a in booked
        for b in booked
        if a.id < b.id and a.start_at < b.blocked_until and b.start_at < a.blocked_until
    )
    pair_codes = [
        sorted((responses[2 * r].status_code, responses[2 * r + 1].status_code)) for r in range(rounds)
    ]
    proof.record(
        f"{scenario}: answers", tried=tried, expected=codes([303, 409] * rounds), got=codes(responses)
    )
    proof.record(
        f"{scenario}: pairs with one winner", tried=tried, expected=rounds, got=pair_codes.count([303, 409])
    )
    proof.record(f"{scenario}: bookings", tried=tried, expected=rounds, got=len(booked))
    proof.record(
        f"{scenario}: overlapping booking pairs (buffer included)", tried=tried, expected=0, got=overlapping
    )
    proof.record(
        f"{scenario}: links (used, still active)",
        tried=tried,
        expected={"used": rounds, "active": rounds},
        got=dict(site.statuses(link_id for link_id, _ in issued)),
    )


def test_one_idempotency_key_from_many_clients_makes_one_link(site: Site, proof: Proof) -> None:
    """API: C clients POST the same body with one Idempotency-Key at once: 1 link, C identical answers."""
    c = proof.scale(6, 20)
    scenario = "API link creation, one Idempotency-Key"
    tried = f"{c} clients POST /api/v1/one-time-links with the same key and body at once; {SERVER}"
    calendar_id = site.new_calendar()
    slug = site.calendar_slug(calendar_id)
    key = f"contact-{secrets.token_hex(6)}"
    body = {"calendar": slug, "label": "Ann Lee", "external_id": "crm-42", "metadata": {"deal": "D-17"}}
    responses = release_at_once(
        [lambda: site.api_create_link(body, **{"Idempotency-Key": key}) for _ in range(c)]
    )

    made = site.links_of(calendar_id)
    proof.record(f"{scenario}: answers", tried=tried, expected=codes([201] * c), got=codes(responses))
    proof.record(f"{scenario}: links created", tried=tried, expected=1, got=len(made))
    proof.record(
        f"{scenario}: distinct answer bodies", tried=tried, expected=1, got=len({r.text for r in responses})
    )
    proof.record(
        f"{scenario}: answers replayed (Idempotent-Replayed)",
        tried=tried,
        expected=c - 1,
        got=sum(1 for r in responses if r.headers.get("Idempotent-Replayed") == "true"),
    )


def test_a_double_click_books_once_and_both_answers_lead_to_the_booking(site: Site, proof: Proof) -> None:
    """Rule 8: a form POSTed twice at once books once, both answers 303 to it; sent changed, it shows nothing."""
    n = proof.scale(4, 10)
    calendar_id = site.new_calendar()
    single_use = site.issue_links(calendar_id, n)
    [(multi_id, multi_token)] = site.issue_links(calendar_id, 1, max_uses=2 * n)
    # Where each kind's n forms post, and what a form sent again with other content answers.
    kinds = [
        ("single-use links", [f"/l/{token}" for _id, token in single_use], 410),
        ("a link with uses left", [f"/l/{multi_token}"] * n, 409),
        ("the calendar's page", [f"/c/{site.calendar_slug(calendar_id)}"] * n, 409),
    ]
    slots = iter(site.open_slots(calendar_id))
    for kind, paths, refused in kinds:
        scenario = f"double click, {kind}"
        tried = f"{n} forms, each POSTed twice at once; {SERVER}"
        forms = [
            (path, site.load_page(path).form(next(slots), email=f"ivy-{secrets.token_hex(4)}@example.com"))
            for path in paths
        ]
        answers = release_at_once(
            [
                lambda path=path, form=form: site.post_page(path, form)
                for path, form in forms
                for _click in (1, 2)
            ]
        )
        changed = [
            site.post_page(
                path, {**form, "slot": next(slots), "name": "Mallory", "email": "mallory@example.net"}
            )
            for path, form in forms
        ]

        emails = {form["email"] for _path, form in forms}
        booked = {
            b.invitee_email: b for b in site.bookings(calendar_id=calendar_id) if b.invitee_email in emails
        }
        proof.record(f"{scenario}: answers", tried=tried, expected=codes([303] * 2 * n), got=codes(answers))
        proof.record(f"{scenario}: bookings", tried=tried, expected=n, got=len(booked))
        proof.record(
            f"{scenario}: pairs whose two answers lead to their form's booking",
            tried=tried,
            expected=n,
            got=sum(
                1
                for i, (_path, form) in enumerate(forms)
                if form["email"] in booked
                and all(
                    r.headers.get("Location", "").endswith(f"/b/{booked[form['email']].ref}")
                    for r in answers[2 * i : 2 * i + 2]
                )
            ),
        )
        again = f"then each form POSTed once more with another slot, name and email; {SERVER}"
        proof.record(
            f"{scenario}: the same form with other content",
            tried=again,
            expected=codes([refused] * n),
            got=codes(changed),
        )
        proof.record(
            f"{scenario}: of those, answers showing a booking's ref, invitee or time",
            tried=again,
            expected=0,
            got=sum(1 for r in changed if shows_a_booking(r, booked.values())),
        )
    proof.record(
        "double click: link uses",
        tried=f"{n} single-use links and one link with {2 * n} uses, as above",
        expected={**{link_id: 1 for link_id, _token in single_use}, multi_id: n},
        got=site.link_uses([*(link_id for link_id, _token in single_use), multi_id]),
    )


def shows_a_booking(response: requests.Response, booked: Iterable[Booking]) -> bool:
    shown = response.text + response.headers.get("Location", "")
    traces = (trace for b in booked for trace in (b.ref, b.invitee_email, b.invitee_name, iso(b.start_at)))
    return any(trace in shown for trace in traces)
