"""``dipn coupon-report``: R_c (eq. 7) and I_gmv (eq. 8) per A/B bucket of a coupon campaign, with
user-bootstrap intervals, decisions by reason and model version, the band against the scores and
the budget: the report of ``GET /campaigns/{id}/report``."""

from __future__ import annotations

import argparse
import json
import os

from dipn.commands.tokens import refuse_on_argv
from dipn.errors import DipnValidationError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "coupon-report",
        help="R_c and I_gmv per A/B bucket of coupon campaigns (paper Table 7), with intervals",
        description="Print, for each campaign, users, coupons granted and used, grant rate, GMV, R_c (eq. 7) and "
        "I_gmv (eq. 8) per bucket, as the paper's Table 7, with 95%% intervals from resampling users; decisions by "
        "reason and by model version; how many of the scores fall in the band (with a warning when nearly none "
        "do); the budget and what remains. Reads the database directly (--db) or asks a running endpoint (--url) with the operator token from "
        "DIPN_ADMIN_TOKEN or a file (--admin-token-file, DIPN_ADMIN_TOKEN_FILE), never from the command line.",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--db", default=None, help="database URL of the endpoint (default: env DIPN_DB_URL or "
                        "sqlite:///dipn-serve.db)")
    source.add_argument("--url", help="base URL of a running endpoint, e.g. http://127.0.0.1:8000")
    p.add_argument("--admin-token-file", metavar="PATH", help="with --url: file whose first line is the endpoint's "
                   "operator token (default: env DIPN_ADMIN_TOKEN_FILE, or the token itself in DIPN_ADMIN_TOKEN); never "
                   "on the command line, where ps shows it to every local user")
    refuse_on_argv(p, "--admin-token")
    p.add_argument("--campaign", type=int, action="append", help="campaign id (repeatable; default: all)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dipn.serving.report import format_report_text

    reports = _from_url(args) if args.url else _from_db(args)
    if args.json:
        print(json.dumps(reports, indent=1))
        return 0
    for report in reports:
        print(format_report_text(report))
        print()
    if not reports:
        print("no campaigns")
    return 0


def _from_db(args: argparse.Namespace) -> list[dict]:
    from dipn import wire
    from dipn.serving import store
    from dipn.serving.db import make_engine
    from dipn.serving.migrations import require_current
    from dipn.serving.report import campaign_full_report

    engine = make_engine(args.db or os.environ.get("DIPN_DB_URL", "sqlite:///dipn-serve.db"), pool_size=1)
    try:
        require_current(engine)
        return [campaign_full_report(engine, campaign_id, wire.now_ms())
                for campaign_id in args.campaign or store.campaign_ids(engine)]
    except store.StoreError as exc:
        raise DipnValidationError(exc.detail) from None
    finally:
        engine.dispose()


def _from_url(args: argparse.Namespace) -> list[dict]:
    import httpx

    from dipn.serving.client import EndpointError, OperatorClient
    from dipn.serving.config import token_from

    try:
        token = token_from(args.admin_token_file, "DIPN_ADMIN_TOKEN", "--admin-token-file")
    except ValueError as exc:
        raise DipnValidationError(str(exc)) from None
    client = OperatorClient(args.url, token)
    try:
        ids = args.campaign or [c["id"] for c in client.list_campaigns()]
        return [client.report(campaign_id) for campaign_id in ids]
    except EndpointError as exc:
        hint = "; give the operator token in DIPN_ADMIN_TOKEN or a file (--admin-token-file)" if (
            exc.status == 401 and token is None) else ""
        raise DipnValidationError(f"{exc}{hint}") from None
    except httpx.TransportError as exc:  # nothing listening, DNS, TLS, a timeout
        raise DipnValidationError(f"--url {args.url}: no answer ({exc})") from None
    finally:
        client.close()
