"""The test servers themselves: a real Radicale (tests/support/radicale.py) and the HTTP stub (tests/support/httpstub.py)."""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from urllib.parse import urljoin

import pytest
import requests

from tests.support.httpstub import HTTPStub, Repeated, StubRequest, StubResponse
from tests.support.radicale import (
    CALDAV,
    DAV,
    CalDAVAccount,
    CalDAVError,
    RadicaleServer,
    sample_event,
)

pytestmark = pytest.mark.slow


def _propfind(url: str, auth: tuple[str, str], prop: str, depth: str = "0") -> ET.Element:
    body = f'<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop>{prop}</D:prop></D:propfind>'
    response = requests.request(
        "PROPFIND", url, auth=auth, data=body.encode(), headers={"Depth": depth}, timeout=10
    )
    assert response.status_code == 207, response.text
    return ET.fromstring(response.content)


def test_radicale_keeps_events_across_a_restart(
    radicale_server: RadicaleServer, caldav_account: CalDAVAccount
):
    account = caldav_account
    work = account.make_calendar("work", "Work")
    home = account.make_calendar("home", "Home & family")
    assert work == f"{radicale_server.url}{account.username}/work/"

    etag = account.put_event(work, "booking-1")
    assert etag.startswith('"')
    assert "UID:booking-1" in (account.get_event(work, "booking-1") or "")
    assert account.get_event(home, "booking-1") is None
    assert account.list_hrefs(work) == [f"/{account.username}/work/booking-1.ics"]
    assert account.list_hrefs(home) == []

    radicale_server.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(radicale_server.url, timeout=2)
    radicale_server.start()

    assert "UID:booking-1" in (account.get_event(work, "booking-1") or "")
    assert account.list_etags(work) == {f"/{account.username}/work/booking-1.ics": etag}
    assert account.delete_event(work, "booking-1") is True
    assert account.delete_event(work, "booking-1") is False


def test_radicale_preconditions_and_owner_only_rights(
    radicale_server: RadicaleServer, caldav_account: CalDAVAccount
):
    account = caldav_account
    calendar = account.make_calendar()
    etag = account.put_event(calendar, "e1", if_none_match=True)
    with pytest.raises(CalDAVError) as exists:
        account.put_event(calendar, "e1", if_none_match=True)
    assert exists.value.status == 412
    with pytest.raises(CalDAVError) as stale:
        account.put_event(calendar, "e1", sample_event("e1", summary="Moved"), if_match='"stale"')
    assert stale.value.status == 412
    new_etag = account.put_event(calendar, "e1", sample_event("e1", summary="Moved"), if_match=etag)
    assert new_etag != etag

    other = f"user-other-{time.monotonic_ns()}"
    radicale_server.add_user(other, "pw")  # while the server runs
    response = requests.request("PROPFIND", calendar, auth=(other, "pw"), headers={"Depth": "1"}, timeout=10)
    assert response.status_code == 403
    response = requests.request("PROPFIND", calendar, auth=(account.username, "wrong"), timeout=10)
    assert response.status_code == 401


def test_radicale_discovery_from_well_known(caldav_account: CalDAVAccount):
    account = caldav_account
    account.make_calendar("one", "One")
    account.make_calendar("two", "Two")

    redirect = requests.get(account.url + ".well-known/caldav", allow_redirects=False, timeout=10)
    assert redirect.status_code == 301
    root = urljoin(redirect.url, redirect.headers["Location"])
    assert root == account.url

    found = _propfind(root, account.auth, "<D:current-user-principal/>")
    principal = urljoin(root, found.findtext(f".//{DAV}current-user-principal/{DAV}href", ""))
    found = _propfind(principal, account.auth, "<C:calendar-home-set/>")
    home = urljoin(root, found.findtext(f".//{CALDAV}calendar-home-set/{DAV}href", ""))
    assert home == account.home_url

    listing = _propfind(home, account.auth, "<D:displayname/><D:resourcetype/>", depth="1")
    calendars = {
        entry.findtext(f"{DAV}href"): entry.findtext(f".//{DAV}displayname")
        for entry in listing.iter(f"{DAV}response")
        if entry.find(f".//{DAV}resourcetype/{CALDAV}calendar") is not None
    }
    assert calendars == {f"/{account.username}/one/": "One", f"/{account.username}/two/": "Two"}


def test_stub_routes_redirects_and_404(http_stub: HTTPStub):
    url = http_stub.route("/dav/", b"<multistatus", status=207, methods=("PROPFIND", "REPORT"))
    # requests turns a 302 into a GET (as browsers do) but keeps the method over a 301.
    http_stub.redirect("/.well-known/caldav", "/dav/", status=301, methods=("PROPFIND",))
    http_stub.redirect("/moved", "/echo", methods=("GET",))
    http_stub.route(
        "/echo",
        lambda request: StubResponse(request.body[::-1], 201, {"X-Method": request.method}),
        methods=("PUT",),
    )

    answer = requests.request("PROPFIND", http_stub.url("/.well-known/caldav"), timeout=5)
    assert (answer.status_code, answer.content, answer.url) == (207, b"<multistatus", url)
    assert [r.status_code for r in answer.history] == [301]
    moved = requests.get(http_stub.url("/moved"), timeout=5)
    assert (moved.status_code, [r.status_code for r in moved.history]) == (405, [302])
    assert requests.request("REPORT", url, timeout=5).status_code == 207
    assert requests.get(url, timeout=5).status_code == 405
    assert requests.get(http_stub.url("/nowhere?x=1"), timeout=5).status_code == 404
    echoed = requests.put(http_stub.url("/echo"), data=b"abc", timeout=5)
    assert (echoed.status_code, echoed.content, echoed.headers["X-Method"]) == (201, b"cba", "PUT")

    assert http_stub.hits["/dav/"] == 3
    assert http_stub.hits["/.well-known/caldav"] == 1
    assert http_stub.hits["/nowhere"] == 1
    assert http_stub.hits["/never"] == 0
    assert isinstance(http_stub.requests[-1], StubRequest)
    assert http_stub.requests[-1].body == b"abc"


def test_stub_streams_a_large_body_and_stops_during_a_delay():
    with HTTPStub() as stub:
        size = 11 * 1024 * 1024
        stub.route("/big", Repeated(b"0123456789abcdef" * 4096, size))
        stub.route("/trickle", lambda _request: (b"x" * 10 for _ in range(5)), chunk_delay=0.05)
        slow = stub.route("/slow", b"late", delay=30)

        big = requests.get(stub.url("/big"), timeout=10)
        assert (big.headers["Content-Length"], len(big.content)) == (str(size), size)
        trickle = requests.get(stub.url("/trickle"), timeout=10)
        assert trickle.headers["Transfer-Encoding"] == "chunked"
        assert trickle.content == b"x" * 50
        with pytest.raises(requests.Timeout):
            requests.get(slow, timeout=0.3)

        errors: list[BaseException] = []

        def wait_for_slow() -> None:
            try:
                requests.get(slow, timeout=10)
            except requests.RequestException as error:
                errors.append(error)

        waiter = threading.Thread(target=wait_for_slow)
        waiter.start()
        while stub.hits["/slow"] < 2:
            time.sleep(0.01)
        started = time.monotonic()
    assert time.monotonic() - started < 2, "stop() waited for a handler in its delay"
    waiter.join(timeout=5)
    assert len(errors) == 1  # the client saw its connection close, not an answer


def test_a_dropped_response_body_closes_its_file(app, monkeypatch: pytest.MonkeyPatch):
    # Werkzeug's server may skip a body's close when a browser resets the connection: the
    # live server's wrapper closes it when dropped, so no file is left to the garbage collector.
    import gc

    from werkzeug.test import EnvironBuilder

    from tests.support.live import _closing

    unraisable: list[object] = []
    monkeypatch.setattr("sys.unraisablehook", unraisable.append)
    for serve in (_closing(app), app):
        environ = EnvironBuilder(path="/static/favicon.svg").get_environ()
        body = serve(environ, lambda status, headers, exc_info=None: None)
        next(iter(body))
        del body
        gc.collect()
        if serve is app:  # the app's own body, dropped unclosed: the leak the wrapper prevents
            assert unraisable and "favicon.svg" in str(unraisable[-1].exc_value)
        else:
            assert unraisable == []
