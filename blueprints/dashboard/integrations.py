"""Dashboard pages for API keys, webhook endpoints, and what was delivered (webhooks and emails)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, render_template, session, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from blueprints.dashboard import bp
from blueprints.dashboard.forms import ActionForm, ApiKeyForm, WebhookForm
from oncecal.app_objects import runtime
from oncecal.config import webhooks_private_allowed
from oncecal.extensions import db
from oncecal.forms import add_error, entered
from oncecal.models import ApiKey, OutboxMessage, WebhookEndpoint, utcnow
from oncecal.services import apikeys, connections, outbox, webhooks
from oncecal.urls import api_url


def _own_key(key_id: int) -> ApiKey:
    key = db.session.get(ApiKey, key_id)
    if key is None or key.owner_id != current_user.id:
        abort(404)
    return key


def _own_endpoint(endpoint_id: int) -> WebhookEndpoint:
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.owner_id != current_user.id or endpoint.disabled_at is not None:
        abort(404)
    return endpoint


def _mine() -> sa.ColumnElement[bool]:
    """The deliveries of the logged-in owner: their emails and calls to their endpoints."""
    return sa.or_(
        OutboxMessage.owner_id == current_user.id,
        OutboxMessage.endpoint_id.in_(
            sa.select(WebhookEndpoint.id).where(WebhookEndpoint.owner_id == current_user.id)
        ),
    )


def _page(
    status: int = 200,
    *,
    key_form: ApiKeyForm | None = None,
    webhook_form: WebhookForm | None = None,
    **shown: str,
) -> tuple[str, int]:
    keys = db.session.scalars(
        sa.select(ApiKey).where(ApiKey.owner_id == current_user.id).order_by(ApiKey.id.desc())
    ).all()
    endpoints = db.session.scalars(
        sa.select(WebhookEndpoint)
        .where(WebhookEndpoint.owner_id == current_user.id, WebhookEndpoint.disabled_at.is_(None))
        .order_by(WebhookEndpoint.id)
    ).all()
    mine = _mine()
    deliveries = db.session.scalars(
        sa.select(OutboxMessage).where(mine).order_by(OutboxMessage.id.desc()).limit(30)
    ).all()
    # Sends that failed for good, or failed and wait for their next try.
    troubled = db.session.scalar(
        sa.select(sa.func.count(OutboxMessage.id)).where(
            mine,
            sa.or_(
                OutboxMessage.status == "failed",
                sa.and_(OutboxMessage.status == "pending", OutboxMessage.attempts > 0),
            ),
        )
    )
    return (
        render_template(
            "dashboard/integrations.html",
            keys=keys,
            endpoints=endpoints,
            deliveries=deliveries,
            retryable={message.id for message in deliveries if outbox.retryable(message)},
            troubled=troubled,
            retry_count=len(current_app.config.get("WEBHOOK_RETRY_DELAYS") or outbox.DEFAULT_RETRY_DELAYS),
            key_form=key_form or ApiKeyForm(prefix="key"),
            webhook_form=webhook_form or WebhookForm(prefix="hook"),
            action=ActionForm(),
            api_base=api_url(),
            calendar_targets={
                s.id: connections.source_label(s) for s in connections.owner_sources(current_user.id)
            },
            **shown,
        ),
        status,
    )


def _show_once(**shown: str) -> Response:
    """Redirect to the page that shows a new key or secret once, with its forms empty again.

    The raw value is never stored, so it rides in the signed session cookie for the one GET
    that pops it; a reload, or the form's text left in place, would otherwise make a second one.
    """
    session["shown_once"] = shown
    return redirect(url_for("dashboard.integrations"), 303)


@bp.get("/integrations")
def integrations() -> tuple[str, int]:
    """Show API keys, webhook endpoints and recent deliveries."""
    return _page(**session.pop("shown_once", {}))


@bp.post("/api-keys")
def create_api_key() -> Response | tuple[str, int]:
    """Create an API key and show it once."""
    form = ApiKeyForm(prefix="key")
    if not form.validate_on_submit():
        return _page(400, key_form=form)
    key, raw = apikeys.create_api_key(current_user, entered(form.name), utcnow())
    return _show_once(new_key=raw, new_key_name=key.name)


@bp.post("/api-keys/<int:key_id>/revoke")
def revoke_api_key(key_id: int) -> Response:
    """Revoke an API key."""
    key = _own_key(key_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    apikeys.revoke_api_key(key, utcnow())
    flash(f"API key “{key.name}” revoked.", "info")
    return redirect(url_for("dashboard.integrations"))


@bp.post("/webhooks")
def create_webhook() -> Response | tuple[str, int]:
    """Register a webhook endpoint and show its signing secret once."""
    form = WebhookForm(prefix="hook")
    if not form.validate_on_submit():
        return _page(400, webhook_form=form)
    try:
        endpoint, secret = webhooks.create_endpoint(
            current_user,
            entered(form.url),
            runtime().link_keys,
            utcnow(),
            allow_private=webhooks_private_allowed(),
        )
    except webhooks.InvalidEndpoint as refused:
        add_error(form.url, str(refused))
        return _page(400, webhook_form=form)
    return _show_once(new_secret=secret, new_secret_url=endpoint.url)


@bp.post("/webhooks/<int:endpoint_id>/rotate")
def rotate_webhook_secret(endpoint_id: int) -> Response:
    """Give an endpoint a new signing secret and show it once."""
    endpoint = _own_endpoint(endpoint_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    secret = webhooks.rotate_secret(endpoint, runtime().link_keys)
    return _show_once(new_secret=secret, new_secret_url=endpoint.url)


@bp.post("/webhooks/<int:endpoint_id>/delete")
def delete_webhook(endpoint_id: int) -> Response:
    """Stop sending events to an endpoint."""
    endpoint = _own_endpoint(endpoint_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    webhooks.disable_endpoint(endpoint.id, utcnow())
    flash(f"Stopped sending webhooks to {endpoint.url}.", "info")
    return redirect(url_for("dashboard.integrations"))


@bp.post("/deliveries/<int:message_id>/retry")
def retry_delivery(message_id: int) -> Response:
    """Queue a delivery that failed for good again, with a fresh round of tries."""
    if db.session.scalar(sa.select(OutboxMessage.id).where(OutboxMessage.id == message_id, _mine())) is None:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    if outbox.retry(message_id, utcnow()):
        flash("Queued again: it is sent within a few seconds while the worker runs.", "success")
    else:
        flash("That delivery is not waiting for a retry.", "info")
    return redirect(url_for("dashboard.integrations", _anchor="deliveries"))
