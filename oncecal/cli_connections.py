"""Command line of calendar connections: flask --app app connection add|list|sync|remove, calendar connect."""

from __future__ import annotations

import json
import sys

import click
from flask.cli import AppGroup

from oncecal.cli import calendar_cli, find_calendar, find_owner
from oncecal.extensions import db
from oncecal.models import Connection, utcnow
from oncecal.schemas import iso
from oncecal.services import connections
from oncecal.services.remote import RemoteError

connection_cli = AppGroup("connection", help="Manage calendar connections (CalDAV accounts, ICS feeds).")


def connection_json(connection: Connection) -> dict[str, object]:
    """A connection as `connection list --json` prints it: never a secret."""
    return {
        "id": connection.id,
        "kind": connection.kind,
        "host": connection.host,
        "calendars": [
            {
                "id": source.id,
                "name": source.name,
                "last_good_read_at": iso(source.last_good_read_at),
                "error": source.error,
            }
            for source in connection.calendars
        ],
    }


@connection_cli.command("add")
@click.option("--owner", "owner_email", required=True, help="The owner's email.")
@click.option("--caldav", "caldav_url", help="The CalDAV server's URL.")
@click.option("--username")
@click.option("--password", help="The password or app password; '-' reads it from standard input.")
@click.option("--ics-url", help="An ICS feed's URL (its secret address).")
def connection_add(
    owner_email: str, caldav_url: str | None, username: str | None, password: str | None, ics_url: str | None
) -> None:
    """Connect a CalDAV account or an ICS feed; print its id, then each calendar found."""
    owner = find_owner(owner_email)
    if bool(caldav_url) == bool(ics_url):
        raise click.UsageError("give either --caldav URL --username U --password P, or --ics-url URL")
    try:
        if caldav_url:
            if not username or password is None:
                raise click.UsageError("--caldav needs --username and --password")
            if password == "-":
                password = sys.stdin.readline().rstrip("\r\n")
            connection = connections.add_caldav(owner, caldav_url, username, password, utcnow())
        else:
            assert ics_url is not None
            connection = connections.add_feed(owner, ics_url, utcnow())
    except RemoteError as failure:
        raise click.ClickException(str(failure)) from None
    click.echo(f"connection {connection.id}")
    for source in connection.calendars:
        click.echo(f"{source.id}\t{source.name}")


@connection_cli.command("list")
@click.option("--owner", "owner_email", required=True, help="The owner's email.")
@click.option("--json", "as_json", is_flag=True)
def connection_list(owner_email: str, as_json: bool) -> None:
    """List the owner's connections and their calendars, with the last good read and the error."""
    items = [connection_json(c) for c in connections.connections_of(find_owner(owner_email).id)]
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    for item in items:
        click.echo(f"connection {item['id']}  {item['kind']}  {item['host']}")
        for source in item["calendars"]:  # type: ignore[attr-defined]
            state = source["error"] or f"last good read {source['last_good_read_at'] or 'never'}"
            click.echo(f"{source['id']}\t{source['name']}\t{state}")


def _connection(connection_id: int) -> Connection:
    connection = db.session.get(Connection, connection_id)
    if connection is None:
        raise click.ClickException(f"no connection with id {connection_id}")
    return connection


@connection_cli.command("sync")
@click.argument("connection_id", type=int)
def connection_sync(connection_id: int) -> None:
    """Read the connection's calendars now; exit 1 when one fails (its last good copy is kept)."""
    failed = []
    for source_id, name in [(s.id, s.name) for s in _connection(connection_id).calendars]:
        result = connections.sync_source(source_id, utcnow())
        if result.skipped:
            state = "being read by the worker or a page now"
        elif result.ok:
            state = "changed" if result.changed else "unchanged"
        else:
            state = f"failed: {result.error}"
            failed.append(name)
        click.echo(f"{source_id}\t{name}\t{state}")
    if failed:
        raise click.ClickException(f"could not read {', '.join(failed)}; the last good copy still counts")


@connection_cli.command("remove")
@click.argument("connection_id", type=int)
def connection_remove(connection_id: int) -> None:
    """Remove a connection and its busy times; events written into its calendars stay there."""
    _connection(connection_id)
    connections.remove_connection(connection_id)
    click.echo(f"Removed connection {connection_id}")


def _ids(text: str, option: str) -> list[int]:
    if text.strip().lower() == "none":
        return []
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter("give calendar ids like 3,4, or none", param_hint=option) from None


@calendar_cli.command("connect")
@click.argument("slug")
@click.option("--check", required=True, help="Connected calendar ids that block this calendar, or none.")
@click.option(
    "--write", help="The connected calendar id that receives its bookings, or none (default: unchanged)."
)
def calendar_connect(slug: str, check: str, write: str | None) -> None:
    """Replace which connected calendars block SLUG and which receives its bookings; print the result."""
    calendar = find_calendar(slug)
    checks = _ids(check, "--check")
    if write is None:
        target = connections.sources_of(calendar)[1]
    else:
        written = _ids(write, "--write")
        if len(written) > 1:
            raise click.BadParameter("at most one calendar receives the bookings", param_hint="--write")
        target = written[0] if written else None
    try:
        connections.connect_calendar(calendar, checks, target)
    except connections.ConnectionError_ as refused:
        raise click.ClickException(str(refused)) from None
    checked, target = connections.sources_of(calendar)
    names = {s.id: s.name for s in connections.owner_sources(calendar.owner_id)}
    click.echo(f"check: {', '.join(f'{i} {names[i]}' for i in checked) or 'none'}")
    click.echo(f"write: {f'{target} {names[target]}' if target is not None else 'none'}")
