"""Query parameters a page cannot use: special zone names and malformed hosts; and the favicon."""

from __future__ import annotations

import re

import pytest

from oncecal.timezones import COMMON_ZONES, is_valid_zone
from tests.conftest import MakeCalendar, MakeLink
from tests.support.pages import BookingPage

pytestmark = pytest.mark.usefixtures("ctx")

# Files of the zone database that are no place an invitee is in.
NOT_PLACES = [
    "localtime",
    "Factory",
    "posixrules",
    "posix/Europe/Berlin",
    "right/UTC",
    "US/Eastern",
    "EST5EDT",
    "Etc/GMT+5",
    "GB",
    "../UTC",
]
# Chromium's Intl.supportedValuesOf("timeZone") still lists some old names (CLDR's).
PLACES = [
    "UTC",
    "Europe/Berlin",
    "America/Argentina/Buenos_Aires",
    "Asia/Calcutta",
    "Asia/Kolkata",
    "Europe/Kiev",
]


@pytest.mark.parametrize("name", NOT_PLACES)
def test_a_special_zone_name_is_not_a_zone(name):
    assert not is_valid_zone(name)


@pytest.mark.parametrize("name", [*PLACES, *COMMON_ZONES])
def test_the_zones_the_picker_offers_are_zones(name):
    assert is_valid_zone(name)


@pytest.mark.parametrize("name", NOT_PLACES)
def test_the_booking_page_ignores_a_special_tz(
    client, make_calendar: MakeCalendar, make_link: MakeLink, name
):
    _, token = make_link(make_calendar(timezone="Asia/Tokyo"))
    response = client.get(f"/l/{token}", query_string={"tz": name})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert BookingPage.parse(html).timezone == "Asia/Tokyo"
    assert f'value="{name}"' not in html


@pytest.mark.parametrize("name", ["localtime", "Factory"])
def test_a_booking_in_a_special_zone_is_refused_with_a_field_error(client, make_link: MakeLink, name):
    _, token = make_link()
    page = BookingPage.parse(client.get(f"/l/{token}").get_data(as_text=True))
    response = client.post(f"/l/{token}", data=page.form(timezone=name))
    assert response.status_code == 400
    assert "Choose a valid time zone." in response.get_data(as_text=True)


def test_the_cli_refuses_a_special_zone(runner, make_owner):
    owner = make_owner()
    result = runner.invoke(
        args=["calendar", "create", "--owner", owner.email, "--name", "X", "--timezone", "Factory"]
    )
    assert result.exit_code != 0
    assert "Factory" in result.output


def test_the_owners_zone_list_holds_only_places(app):
    from oncecal.timezones import all_zones

    zones = all_zones()
    assert "Europe/Berlin" in zones and "UTC" in zones
    assert not set(NOT_PLACES) & set(zones)


@pytest.mark.parametrize(
    "host",
    [
        "https://shop.example:99999",
        "https://shop.example:65536",
        "https://shop.example:0",
        "https://shop.example:",
        "http://[::1]:70000",
    ],
)
def test_a_host_with_an_impossible_port_is_ignored(client, make_link: MakeLink, host):
    _, token = make_link()
    response = client.get(f"/l/{token}", query_string={"embed": "1", "host": host})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "data-host" not in html
    assert host not in html


@pytest.mark.parametrize(
    "host", ["https://shop.example:65535", "https://shop.example:1", "http://[::1]:8080"]
)
def test_a_host_with_a_real_port_is_kept(client, make_link: MakeLink, host):
    _, token = make_link()
    html = client.get(f"/l/{token}", query_string={"embed": "1", "host": host}).get_data(as_text=True)
    assert f'data-host="{host}"' in html


def test_an_allowed_origin_with_an_impossible_port_is_refused(client, make_calendar: MakeCalendar):
    from oncecal.services.calendars import parse_origins_text

    with pytest.raises(ValueError, match="not an origin"):
        parse_origins_text("https://shop.example:99999")


def test_the_favicon_is_served_and_linked_from_every_layout(client, make_link: MakeLink):
    _, token = make_link()
    for path in (f"/l/{token}", f"/l/{token}?embed=1", "/login"):
        html = client.get(path).get_data(as_text=True)
        icon = re.search(r'<link rel="icon" href="([^"]+)"', html)
        assert icon, path
        with client.get(icon.group(1)) as response:
            assert response.status_code == 200
    with client.get("/favicon.ico") as response:
        assert response.status_code == 200
        assert response.mimetype == "image/x-icon"
        assert response.data.startswith(b"\x00\x00\x01\x00")
