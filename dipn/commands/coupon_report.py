"""``dipn coupon-report``: R_c (eq. 7) and I_gmv (eq. 8) per A/B bucket of a coupon campaign."""

from __future__ import annotations

import argparse
import json
import os

from dipn.errors import DipnValidationError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "coupon-report",
        help="R_c and I_gmv per A/B bucket of coupon campaigns (paper Table 7)",
        description="Print, for each campaign, users, coupons granted and used, GMV, R_c (eq. 7) and I_gmv "
        "(eq. 8) per bucket, as the paper's Table 7. Reads the database directly (--db) or asks a running "
        "endpoint (--url).",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--db", default=None, help="database URL of the endpoint (default: env DIPN_DB_URL or "
                        "sqlite:///dipn-serve.db)")
    source.add_argument("--url", help="base URL of a running endpoint, e.g. http://127.0.0.1:8000")
    p.add_argument("--admin-token", default=os.environ.get("DIPN_ADMIN_TOKEN"), help="with --url; env DIPN_ADMIN_TOKEN")
    p.add_argument("--campaign", type=int, action="append", help="campaign id (repeatable; default: all, with --db)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dipn.serving.metrics import format_report

    reports = _from_url(args) if args.url else _from_db(args)
    if args.json:
        print(json.dumps(reports, indent=1))
        return 0
    for report in reports:
        print(f"campaign {report['campaign_id']} ({report['name']})")
        print(format_report(report["buckets"]))
        print()
    if not reports:
        print("no campaigns")
    return 0


def _from_db(args: argparse.Namespace) -> list[dict]:
    from dipn.serving import store
    from dipn.serving.db import make_engine
    from dipn.serving.metrics import campaign_report
    from dipn.serving.migrations import require_current

    engine = make_engine(args.db or os.environ.get("DIPN_DB_URL", "sqlite:///dipn-serve.db"), pool_size=1)
    try:
        require_current(engine)
        reports = []
        for campaign_id in args.campaign or store.campaign_ids(engine):
            config, totals = store.campaign_totals(engine, campaign_id)
            reports.append({"campaign_id": campaign_id, "name": config.name, "buckets": campaign_report(totals)})
        return reports
    except store.StoreError as exc:
        raise DipnValidationError(exc.detail) from None
    finally:
        engine.dispose()


def _from_url(args: argparse.Namespace) -> list[dict]:
    import httpx

    from dipn.serving.client import EndpointError, OperatorClient

    if not args.campaign:
        raise DipnValidationError("--url needs --campaign ID")
    client = OperatorClient(args.url, args.admin_token)
    try:
        return [client.metrics(campaign_id) for campaign_id in args.campaign]
    except EndpointError as exc:
        raise DipnValidationError(str(exc)) from None
    except httpx.TransportError as exc:  # nothing listening, DNS, TLS, a timeout
        raise DipnValidationError(f"--url {args.url}: no answer ({exc})") from None
    finally:
        client.close()
