"""Command-line interface: flask --app app owner|calendar|link|demo ... (connections: oncecal/cli_connections.py)"""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from pydantic import ValidationError

from oncecal import schemas
from oncecal.app_objects import runtime
from oncecal.config import webhooks_private_allowed
from oncecal.demo import DEMO_EMAIL, DEMO_PASSWORD, demo_host_url, seed_demo
from oncecal.email_addresses import InvalidEmail, check_email_address, reserved_domains_allowed
from oncecal.extensions import db
from oncecal.models import Calendar, OneTimeLink, Owner, utcnow
from oncecal.schemas import LinkStatus
from oncecal.serializers import link_json
from oncecal.serve import serve
from oncecal.services import apikeys, calendars, links, owners, webhooks
from oncecal.text import one_line_fault
from oncecal.timezones import is_valid_zone
from oncecal.urls import base_url, link_url, scheduling_url

owner_cli = AppGroup("owner", help="Manage calendar owners.")
apikey_cli = AppGroup("apikey", help="Manage API keys.")
webhook_cli = AppGroup("webhook", help="Manage webhook endpoints.")
calendar_cli = AppGroup("calendar", help="Manage calendars.")
link_cli = AppGroup("link", help="Manage one-time links.")

_DURATION = re.compile(r"(\d+)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """Parse a link's expiry: '3600', '90s', '30m', '12h' or '7d', at most 10 years."""
    match = _DURATION.fullmatch(text.strip())
    if not match or int(match.group(1)) == 0:
        raise click.BadParameter(f"{text!r} is not a duration like 3600, 30m, 12h or 7d")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds > schemas.MAX_EXPIRY.total_seconds():
        raise click.BadParameter(f"{text!r} is too long: a link expires at most 10 years ahead")
    return timedelta(seconds=seconds)


def _one_line(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse an option value that is not one line of text (see oncecal/text.py)."""
    fault = one_line_fault(value) if value is not None else None
    if fault:
        raise click.BadParameter(f"must be one line of text; remove {fault}", param=param)
    return value


def find_owner(email: str) -> Owner:
    """The owner with ``email``; a usage error (exit 1) if there is none."""
    owner = owners.owner_by_email(email)
    if owner is None:
        raise click.ClickException(f"no owner with email {email}")
    return owner


def find_calendar(slug: str) -> Calendar:
    """The live calendar with ``slug``; an error (exit 1) if there is none."""
    calendar = calendars.calendar_by_slug(slug)
    if calendar is None:
        raise click.ClickException(f"no calendar with slug {slug}")
    return calendar


@owner_cli.command("create")
@click.option("--email", required=True, callback=_one_line)
@click.option("--name", required=True, callback=_one_line)
@click.option("--password", required=True)
@click.option("--phone", callback=_one_line)
def owner_create(email: str, name: str, password: str, phone: str | None) -> None:
    """Create a calendar owner."""
    if len(password) < owners.MIN_PASSWORD_LENGTH:
        raise click.BadParameter(
            f"use at least {owners.MIN_PASSWORD_LENGTH} characters", param_hint="--password"
        )
    try:
        check_email_address(email, reserved_allowed=reserved_domains_allowed())
    except InvalidEmail as refused:
        raise click.BadParameter(str(refused), param_hint="--email") from None
    try:
        owner = owners.create_owner(email, name, password, phone)
    except owners.EmailTaken:
        raise click.ClickException(f"an owner with email {email} already exists") from None
    click.echo(f"Created owner {owner.email} (id {owner.id})")


@calendar_cli.command("create")
@click.option("--owner", "owner_email", required=True, help="The owner's email.")
@click.option("--name", required=True, callback=_one_line)
@click.option("--slug")
@click.option("--duration", type=click.IntRange(5, 720), default=30, show_default=True)
@click.option("--timezone", "tz", default="UTC", show_default=True)
def calendar_create(owner_email: str, name: str, slug: str | None, duration: int, tz: str) -> None:
    """Create a calendar open weekdays 09:00–17:00 with its public page on."""
    owner = find_owner(owner_email)
    slug = slug or calendars.slugify(name)
    if not calendars.SLUG.fullmatch(slug):
        raise click.BadParameter("use lowercase letters, digits and dashes", param_hint="--slug")
    if not is_valid_zone(tz):
        raise click.BadParameter(f"{tz!r} is not an IANA time zone", param_hint="--timezone")
    try:
        calendar = calendars.create_calendar(
            owner.id, slug=slug, name=name, duration_minutes=duration, timezone=tz
        )
    except calendars.SlugTaken:
        raise click.ClickException(f"the slug {slug} is taken") from None
    click.echo(f"Created calendar {calendar.slug} (id {calendar.id})")


@link_cli.command("create")
@click.argument("slug")
@click.option("--label", callback=_one_line)
@click.option("--max-uses", type=int, default=1, show_default=True, help="From 1 to 1000.")
@click.option("--expires-in", help="Seconds, or a number with s, m, h or d.")
@click.option("--json", "as_json", is_flag=True, help="Print the link object as JSON.")
def link_create(slug: str, label: str | None, max_uses: int, expires_in: str | None, as_json: bool) -> None:
    """Create a one-time link; print its URL as the last line."""
    calendar = find_calendar(slug)
    now = utcnow()
    expires_at = now + parse_duration(expires_in) if expires_in else None
    try:
        link, token = links.issue_link(
            calendar, runtime().link_keys, now=now, label=label, max_uses=max_uses, expires_at=expires_at
        )
    except ValidationError as invalid:
        problems = schemas.field_errors(invalid)
        why = "; ".join(f"{name.replace('_', '-')} {sentence}" for name, sentence in problems.items())
        raise click.UsageError(why) from None
    if as_json:
        click.echo(json.dumps(link_json(link, now), indent=2))
    else:
        click.echo(link_url(token))


@link_cli.command("list")
@click.argument("slug")
@click.option("--status", type=click.Choice([s.value for s in LinkStatus]))
@click.option("--json", "as_json", is_flag=True)
def link_list(slug: str, status: str | None, as_json: bool) -> None:
    """List a calendar's one-time links, newest first."""
    calendar = find_calendar(slug)
    now = utcnow()
    rows = links.links_of(calendar.id, now, LinkStatus(status) if status else None)
    items = [link_json(link, now) for link in rows]
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    for item in items:
        click.echo(
            f"{item['id']:>6}  {item['status']:<8} {item['uses']}/{item['max_uses']}  "
            f"{item['label'] or '-':<24} {item['url']}"
        )


@link_cli.command("revoke")
@click.argument("link_id", type=int)
def link_revoke(link_id: int) -> None:
    """Revoke a one-time link."""
    link = db.session.get(OneTimeLink, link_id)
    if link is None:
        raise click.ClickException(f"no link with id {link_id}")
    links.revoke_link(link.id, utcnow())
    click.echo(f"Revoked link {link_id}")


@click.command("demo")
@with_appcontext
def demo() -> None:
    """Seed a demo owner and calendar (idempotent); print the login and a fresh link."""
    seeded = seed_demo(runtime().link_keys, utcnow())
    click.echo(f"Dashboard: {base_url()}/login  (log in as {DEMO_EMAIL} / {DEMO_PASSWORD})")
    click.echo(
        f"Embed demo, a host page on another site: {demo_host_url(seeded.inline_token, seeded.popup_token)}"
    )
    click.echo(f"Public page: {scheduling_url(seeded.calendar_slug)}")
    click.echo("One-time link (books once; open it again afterwards to see it expired):")
    click.echo(link_url(seeded.token))


@apikey_cli.command("create")
@click.option("--owner", "owner_email", required=True, help="The owner's email.")
@click.option("--name", default="CLI key", show_default=True, callback=_one_line)
def apikey_create(owner_email: str, name: str) -> None:
    """Create an API key; print it as the last line (it is shown only once)."""
    key, raw = apikeys.create_api_key(find_owner(owner_email), name, utcnow())
    click.echo(f"Created API key {key.prefix}… for {owner_email}; store it now, it is not shown again:")
    click.echo(raw)


@webhook_cli.command("create")
@click.option("--owner", "owner_email", required=True, help="The owner's email.")
@click.option("--url", required=True, callback=_one_line)
def webhook_create(owner_email: str, url: str) -> None:
    """Register a webhook endpoint; print its signing secret as the last line."""
    try:
        endpoint, secret = webhooks.create_endpoint(
            find_owner(owner_email),
            url,
            runtime().link_keys,
            utcnow(),
            allow_private=webhooks_private_allowed(),
        )
    except webhooks.InvalidEndpoint as refused:
        raise click.BadParameter(str(refused), param_hint="--url") from None
    click.echo(f"Registered webhook endpoint {endpoint.id} for {url}; its signing secret:")
    click.echo(secret)


@click.command("worker")
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
@click.option("--poll", default=1.0, show_default=True, help="Seconds between looks at the outbox.")
@with_appcontext
def worker(once: bool, poll: float) -> None:
    """Deliver the outbox (webhooks) after commit, with retries."""
    from oncecal.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # Flask types its LocalProxy as the app
    tried = run_worker(app, once=once, poll_interval=poll)
    if once:
        click.echo(f"Delivered or tried {tried} message(s).")


def init_app(app: Flask) -> None:
    """Register the command groups."""
    from oncecal.cli_connections import connection_cli  # it adds `calendar connect` to calendar_cli

    for command in (
        owner_cli,
        calendar_cli,
        link_cli,
        apikey_cli,
        webhook_cli,
        connection_cli,
        worker,
        demo,
        serve,
    ):
        app.cli.add_command(command)
