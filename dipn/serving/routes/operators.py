"""Operator routes: campaigns, coupon decisions, orders, metrics and the campaign report.

Every route depends on ``operator`` (the router's dependency): ``Authorization: Bearer`` with the
operator (admin) token the server was started with, or open when it runs with
``open_operator_routes`` (a loopback demo's choice; ``server`` refuses it elsewhere).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Security
from fastapi.responses import JSONResponse

from dipn import wire
from dipn.serving import auth, openapi, report, store
from dipn.serving.config import CampaignConfig
from dipn.serving.metrics import campaign_report
from dipn.serving.refusals import ApiError
from dipn.serving.routes import CampaignId
from dipn.serving.schemas import (
    CampaignIn,
    CampaignList,
    CampaignOut,
    CampaignPatch,
    DecisionOut,
    DecisionRequest,
    MetricsOut,
    OrderIn,
    OrderRecorded,
    ReportOut,
)


def operator(request: Request, _scheme: Annotated[object, Security(openapi.operator_token)]) -> None:
    """The operator token (``Security``: the document's ``operatorToken`` scheme, which adds the
    401 and 403 answers to every route that depends on this)."""
    auth.check_bearer(request.headers.get("authorization"), request.app.state.config.admin_token, "admin")


def engine_of(request: Request):  # noqa: ANN201 (a SQLAlchemy Engine)
    return request.app.state.engine


def campaign_out(campaign_id: int, config: CampaignConfig, now_ms: int, created_ms: int | None = None) -> dict:
    """A campaign as the read API gives it: its status and its band in probability terms."""
    band = {"t_l": config.t_l, "t_u": config.t_u, "kind": (config.band or {}).get("kind", "probability"),
            "statement": config.band}
    return {"id": campaign_id, "name": config.name, "status": report.status_of(config, now_ms),
            "created_ms": created_ms, "band": band, "config": asdict(config)}


router = APIRouter(dependencies=[Depends(operator)])


@router.post("/campaigns", status_code=201, response_model=CampaignOut)
def create_campaign(body: CampaignIn, request: Request) -> dict:
    try:
        config = body.to_config()
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"body: {exc}") from exc
    now = wire.now_ms()
    campaign_id, stored = store.create_campaign(engine_of(request), config, now)
    return campaign_out(campaign_id, stored, now, now)


@router.get("/campaigns", response_model=CampaignList)
def list_campaigns(request: Request) -> dict:
    now = wire.now_ms()
    campaigns = store.list_campaigns(engine_of(request))
    return {"campaigns": [campaign_out(i, c, now, created) for i, created, c in campaigns]}


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut)
def get_campaign(campaign_id: CampaignId, request: Request) -> dict:
    return campaign_out(campaign_id, store.get_campaign(engine_of(request), campaign_id), wire.now_ms())


@router.patch("/campaigns/{campaign_id}", response_model=CampaignOut,
              responses=openapi.errors({409: "`budget_below_reserved`: a bucket has already reserved more than "
                                             "the new budget gives it"}))
def patch_campaign(campaign_id: CampaignId, body: CampaignPatch, request: Request) -> dict:
    changes = body.changes()
    if not changes:
        raise ApiError(422, "invalid_request", "nothing to change")
    now = wire.now_ms()
    return campaign_out(campaign_id, store.update_campaign(engine_of(request), campaign_id, changes, now), now)


@router.post("/campaigns/{campaign_id}/decisions", response_model=DecisionOut)
def decide(campaign_id: CampaignId, body: DecisionRequest, request: Request) -> dict:
    return store.decide_coupon(engine_of(request), campaign_id, body.user_id, wire.now_ms())


@router.post("/campaigns/{campaign_id}/orders", status_code=201, response_model=OrderRecorded,
             responses={200: {"model": OrderRecorded, "description": "the same order again (an idempotent retry): "
                                                                     "`duplicate` is true"}}
             | openapi.errors({409: "`order_conflict` (the order id with other content), `no_coupon`, "
                                    "`coupon_already_used`, `coupon_expired`"}))
def record_order(campaign_id: CampaignId, body: OrderIn, request: Request) -> JSONResponse:
    recorded = store.record_order(engine_of(request), campaign_id, body.model_dump(), wire.now_ms())
    return JSONResponse(recorded, status_code=200 if recorded["duplicate"] else 201)


@router.get("/metrics/campaign/{campaign_id}", response_model=MetricsOut)
def metrics(campaign_id: CampaignId, request: Request) -> dict:
    campaign, totals = store.campaign_totals(engine_of(request), campaign_id)
    return {"campaign_id": campaign_id, "name": campaign.name, "buckets": campaign_report(totals)}


@router.get("/campaigns/{campaign_id}/report", response_model=ReportOut)
def campaign_report_route(campaign_id: CampaignId, request: Request) -> dict:
    """R_c and I_gmv per bucket with user-bootstrap intervals, over time; decisions by reason and
    model version; scores against the band; budget and its burn."""
    return report.campaign_full_report(engine_of(request), campaign_id, wire.now_ms())
