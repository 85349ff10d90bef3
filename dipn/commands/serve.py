"""``dipn serve``: the coupon-allocation endpoint (FastAPI on uvicorn).

Secrets never travel on the command line, where ``ps`` shows them to every local user: the
operator and enrollment tokens come from the environment (``DIPN_ADMIN_TOKEN``,
``DIPN_ENROLL_TOKEN``) or from files (``--admin-token-file``, ``--enroll-token-file`` or
``DIPN_ADMIN_TOKEN_FILE``, ``DIPN_ENROLL_TOKEN_FILE``), and reach the workers through the pipe
that starts them.
"""

from __future__ import annotations

import argparse
import math
import os

from dipn.commands.tokens import refuse_on_argv

# The option each server setting comes from, to name it when ServerConfig refuses its value.
FLAGS = {"port": "--port", "workers": "--workers", "max_body_bytes": "--max-body-bytes",
         "signature_window_ms": "--signature-window", "rate_limit": "--rate-limit"}


def milliseconds(text: str) -> int:
    """Seconds on the command line, as the whole milliseconds ``ServerConfig`` holds and checks."""
    value = float(text) * 1000
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, got {text!r}")
    return round(value)


milliseconds.__name__ = "float"  # argparse's "invalid float value: 'x'"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="run the coupon endpoint: device registration, signed score posts, A/B coupon decisions, R_c / I_gmv",
        description="Run the coupon-allocation endpoint (docs/serving.md). Migrates the database, then starts "
        "uvicorn workers. Devices register their public keys and post signed scores; operators create campaigns, ask for "
        "coupon decisions, report orders and read R_c and I_gmv per bucket at /metrics/campaign/ID. Tokens come from "
        "the environment or from files, never from the command line: DIPN_ADMIN_TOKEN (or --admin-token-file) guards "
        "the operator routes, DIPN_ENROLL_TOKEN (or --enroll-token-file) device registration.",
    )
    p.add_argument("--db", default=os.environ.get("DIPN_DB_URL", "sqlite:///dipn-serve.db"),
                   help="sqlite:///PATH (default dipn-serve.db, WAL) or postgresql://USER@HOST/DB; env DIPN_DB_URL")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes, about one per core (default 1)")
    p.add_argument("--admin-token-file", metavar="PATH",
                   help="file whose first line is the Bearer token of the campaign, decision, order and metrics "
                   "routes; env DIPN_ADMIN_TOKEN_FILE, or the token itself in DIPN_ADMIN_TOKEN (required, unless "
                   "--insecure-open-operator-routes)")
    p.add_argument("--insecure-open-operator-routes", action="store_true",
                   help="serve the operator routes without a token, to anyone who can connect: loopback --host "
                   "only, for demos")
    p.add_argument("--enroll-token-file", metavar="PATH",
                   help="file whose first line is the Bearer token devices need to register; env "
                   "DIPN_ENROLL_TOKEN_FILE, or the token itself in DIPN_ENROLL_TOKEN (required, unless "
                   "--insecure-open-enrollment)")
    p.add_argument("--insecure-open-enrollment", action="store_true",
                   help="let anyone register a device for any user id (a warning says so at start): for demos")
    refuse_on_argv(p, "--admin-token", "--enroll-token")
    p.add_argument("--signature-window", type=milliseconds, default=300_000, dest="signature_window_ms",
                   help="seconds a signed request stays valid either side of the server clock (default 300)")
    p.add_argument("--max-body-bytes", type=int, default=64 * 1024, help="largest request body (default 65536)")
    p.add_argument("--rate-limit", type=int, default=os.environ.get("DIPN_RATE_LIMIT") or "120",
                   help="signed requests per device per minute, counted in the database so it holds across "
                   "workers and hosts; 0 = no limit (load tests); env DIPN_RATE_LIMIT (default 120)")
    p.add_argument("--access-log", action="store_true", help="log every request (slower)")
    p.add_argument("--migrate-only", action="store_true", help="apply schema migrations and exit")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Every setting is checked by ``ServerConfig`` (a refusal names the option) before the
    database is touched; the tokens are read only when the server is to start."""
    from dataclasses import replace

    from dipn.errors import DipnValidationError
    from dipn.serving.config import ServerConfig, SettingError, token_from
    from dipn.serving.server import migrate_database, run_server

    try:
        config = ServerConfig(db_url=args.db, host=args.host, port=args.port, workers=args.workers,
                              open_operator_routes=args.insecure_open_operator_routes,
                              open_enrollment=args.insecure_open_enrollment, max_body_bytes=args.max_body_bytes,
                              signature_window_ms=args.signature_window_ms, rate_limit=args.rate_limit)
    except SettingError as exc:
        raise DipnValidationError(f"{FLAGS[exc.setting]}: {exc}" if exc.setting in FLAGS else str(exc)) from None
    if args.migrate_only:
        applied = migrate_database(config.db_url)
        print(f"applied migrations {applied}" if applied else "schema already current")
        return 0
    try:
        config = replace(config,
                         admin_token=token_from(args.admin_token_file, "DIPN_ADMIN_TOKEN", "--admin-token-file"),
                         enroll_token=token_from(args.enroll_token_file, "DIPN_ENROLL_TOKEN", "--enroll-token-file"))
    except ValueError as exc:
        raise DipnValidationError(str(exc)) from None
    run_server(config, access_log=args.access_log)
    return 0
