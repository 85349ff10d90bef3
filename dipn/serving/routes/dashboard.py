"""The dashboard's pages (``dipn.serving.dashboard`` draws them), for the operator's browser.

They need the operator token as ``Authorization: Bearer <token>`` or as the password of HTTP
Basic (any user name), which a browser asks for itself on the 401. The check is made in each
page, not by a dependency, because its refusal is a page of its own (HTML, ``WWW-Authenticate``)
rather than the JSON error body a dependency's exception becomes; as with every route, FastAPI
checks the campaign id before the page runs.
"""

from __future__ import annotations

import base64
import binascii
import html

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from dipn import wire
from dipn.serving import auth, report, store
from dipn.serving.dashboard import html_response, page, render_campaign, render_campaigns
from dipn.serving.routes import CampaignId


def refused(request: Request) -> HTMLResponse | None:
    """None when the request carries the operator token (Bearer, or Basic's password); else a 401/403
    page that makes a browser ask for it."""
    header = request.headers.get("authorization") or ""
    if header.startswith("Basic "):
        try:
            _, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            password = ""
        header = f"Bearer {password}"
    try:
        auth.check_bearer(header or None, request.app.state.config.admin_token, "admin")
    except auth.AuthError as exc:
        text = page("dipn: operator token needed", f"<p>{html.escape(exc.detail)}</p>")
        return HTMLResponse(text, status_code=exc.status,
                            headers={"www-authenticate": 'Basic realm="dipn operator", charset="UTF-8"'})
    return None


router = APIRouter(include_in_schema=False)


@router.get("/dashboard", response_class=HTMLResponse)
def campaigns_page(request: Request) -> HTMLResponse:
    refusal = refused(request)
    if refusal is not None:
        return refusal
    return html_response(render_campaigns(store.list_campaigns(request.app.state.engine), wire.now_ms()))


@router.get("/dashboard/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(campaign_id: CampaignId, request: Request) -> HTMLResponse:
    refusal = refused(request)
    if refusal is not None:
        return refusal
    try:
        data = report.campaign_full_report(request.app.state.engine, campaign_id, wire.now_ms())
    except store.StoreError as exc:
        return html_response(page("dipn: no such campaign", f"<p>{html.escape(exc.detail)}</p>"), exc.status)
    return html_response(render_campaign(data))
