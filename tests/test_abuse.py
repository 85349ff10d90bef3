"""The endpoint under abuse (issue 10, items 2-3): per-device rate limit across worker processes,
body size limit, no access to another user's scores or coupons, no secret in the database, SQL only
with bound parameters, and schema-driven fuzzing of every route (no 5xx). Real servers on loopback,
real SQLite and a real PostgreSQL where the existing endpoint tests use both."""

from __future__ import annotations

import ast
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra (FastAPI, uvicorn, SQLAlchemy) is not installed")
import httpx  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from sqlalchemy import Engine, event, func, inspect, select, text  # noqa: E402

from dipn import wire  # noqa: E402
from dipn.serving import tables  # noqa: E402
from dipn.serving.client import DeviceClient  # noqa: E402
from dipn.serving.config import ServerConfig  # noqa: E402
from dipn.serving.db import make_engine  # noqa: E402
from dipn.serving.migrations import MIGRATIONS, migrate, schema_version  # noqa: E402
from dipn.serving.server import ThreadedServer, free_port  # noqa: E402
from tests.serve_process import ADMIN, Databases, LiveServer, ServeProcess, databases_fixture  # noqa: E402

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def databases(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    yield from databases_fixture(request, tmp_path_factory)


@pytest.fixture(scope="module")
def endpoint(databases: Databases) -> Iterator[LiveServer]:
    with LiveServer(databases.new(), rate_limit=0) as live:
        yield live


def _signed(device: DeviceClient, method: str, path: str, body: bytes = b"", **kw: object) -> dict[str, str]:
    return {"content-type": "application/json", **wire.signed_headers(device.device_id, device.secret, method, path,
                                                                       body, **kw)}  # fmt: skip


# ---- rate limit -----------------------------------------------------------------------------------


def test_the_rate_limit_holds_per_device_across_worker_processes(databases: Databases) -> None:
    """``dipn serve --workers 2``: 30 concurrent posts of one device, limit 10: exactly 10 stored.
    A counter in each worker's memory would let up to 20 through."""
    with ServeProcess(databases.new(), workers=2, rate_limit=10) as server:
        http = httpx.Client(base_url=server.url, timeout=30, limits=httpx.Limits(max_connections=30))
        noisy = DeviceClient.register("", "noisy-user", http=http)
        quiet = DeviceClient.register("", "quiet-user", http=http)
        now = wire.now_ms()
        bodies = [wire.encode_scores([noisy.score("m", 0.3, 0.5, ts=now - 10_000 + i)]) for i in range(30)]
        with ThreadPoolExecutor(max_workers=30) as pool:
            answers = list(pool.map(lambda b: http.post("/scores", content=b, headers=_signed(noisy, "POST", "/scores", b)),
                                    bodies))  # fmt: skip
        statuses = sorted(r.status_code for r in answers)
        assert statuses == [200] * 10 + [429] * 20, statuses
        limited = next(r for r in answers if r.status_code == 429)
        assert limited.json()["error"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1
        assert quiet.post_scores([quiet.score("m", 0.3, 0.5)]) == {"accepted": 1, "duplicates": 0}  # its own budget
        for i in range(10):  # reads count too: the quiet device has 9 requests left
            response = http.get(f"/coupons/{1}", headers=_signed(quiet, "GET", "/coupons/1"))
            assert response.status_code == (404 if i < 9 else 429), (i, response.text)
    engine = make_engine(server.db_url, pool_size=1)
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(tables.scores)
                              .where(tables.scores.c.device_id == noisy.device_id)).scalar()
    engine.dispose()
    assert stored == 10


def test_a_rate_limited_uplink_stops_and_keeps_its_queue(databases: Databases, tmp_path: Path) -> None:
    from mobile_demo import Score
    from mobile_demo.uplink import Uplink, UplinkConfig

    with LiveServer(databases.new(), rate_limit=2) as live:
        device = DeviceClient.register(live.url, "limited-uplink-user")
        uplink = Uplink(live.url, device.device_id, device.secret, tmp_path / "q.db", UplinkConfig(batch_size=4))
        for i in range(20):
            uplink.submit(Score(0.3, 0.5, wire.now_ms() - 10_000 + i, 1.0, "m"))
        assert uplink.flush() == 8  # two posts, then one 429 and no hammering
        assert uplink.counts["rate_limited"] == 1 and len(uplink.queue) == 12
        uplink.close()


# ---- body size --------------------------------------------------------------------------------------


def test_bodies_over_the_limit_are_refused_declared_or_streamed(endpoint: LiveServer) -> None:
    device = DeviceClient.register(endpoint.url, "big-body-user")
    http = httpx.Client(base_url=endpoint.url, timeout=30)
    scores = [device.score("m", 0.3, 0.5, ts=wire.now_ms() - 60_000 + i) for i in range(2000)]
    body = json.dumps({"scores": scores}).encode()
    assert len(body) > ServerConfig().max_body_bytes

    def chunks() -> Iterator[bytes]:  # no content-length: the limit must count what streams in
        for start in range(0, len(body), 4096):
            yield body[start:start + 4096]

    streamed = http.post("/scores", content=chunks(), headers=_signed(device, "POST", "/scores", body))
    declared = http.post("/scores", content=body, headers=_signed(device, "POST", "/scores", body))
    admin = http.post("/campaigns", content=b'{"name": "' + b"x" * 100_000 + b'"}',
                      headers={"authorization": f"Bearer {ADMIN}", "content-type": "application/json"})
    for response in (streamed, declared, admin):
        assert response.status_code == 413 and response.json()["error"] == "body_too_large", response.text
    with endpoint.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tables.scores)
                            .where(tables.scores.c.device_id == device.device_id)).scalar() == 0


# ---- other users' data ------------------------------------------------------------------------------


def test_a_device_can_neither_post_nor_read_for_another_user(endpoint: LiveServer) -> None:
    operator = endpoint.operator()
    campaign = operator.create_campaign(name="isolation", shares={"all": 1.0})["id"]
    alice = DeviceClient.register(endpoint.url, "iso-alice")
    bob = DeviceClient.register(endpoint.url, "iso-bob")
    operator.decide(campaign, "iso-bob")  # bob has a coupon, alice has none
    http = httpx.Client(base_url=endpoint.url)
    now = wire.now_ms()

    # Posting: scores name their device, the signer must be that device, and the user is the device's.
    as_bob = wire.encode_scores([bob.score("m", 0.3, 0.5, ts=now)])
    forged = {**_signed(alice, "POST", "/scores", as_bob), wire.HEADER_DEVICE: bob.device_id}
    assert http.post("/scores", content=as_bob, headers=forged).json()["error"] == "bad_signature"
    mismatch = http.post("/scores", content=as_bob, headers=_signed(alice, "POST", "/scores", as_bob))
    assert (mismatch.status_code, mismatch.json()["error"]) == (403, "device_mismatch")
    alice.post_scores([alice.score("m", 0.35, 0.5, ts=now)])
    with endpoint.engine.connect() as conn:
        users = {row.device_id: row.user_id for row in conn.execute(select(tables.scores.c.device_id,
                                                                           tables.scores.c.user_id))}
    assert users[alice.device_id] == "iso-alice" and bob.device_id not in users

    # Reading: the route has no user parameter; the answer is always the signer's own user's.
    assert alice.my_coupon(campaign) == {"campaign_id": campaign, "granted": False, "coupon_id": None,
                                         "coupon_value": None, "redeemed": None, "expires_ms": None}  # fmt: skip
    assert bob.my_coupon(campaign)["granted"]
    path = f"/coupons/{campaign}"
    added_query = http.get(path, params={"user_id": "iso-bob"}, headers=_signed(alice, "GET", path))
    assert added_query.json()["error"] == "bad_signature"  # the signature covers the query string
    signed_query = http.get(path, params={"user_id": "iso-bob"},
                            headers=_signed(alice, "GET", f"{path}?user_id=iso-bob"))
    assert signed_query.json()["granted"] is False  # the query is not part of the route: bob's coupon stays hidden
    other_path = http.get(f"/coupons/{campaign + 1}", headers=_signed(alice, "GET", path))  # signed for another path
    assert other_path.json()["error"] == "bad_signature"
    decisions = f"/campaigns/{campaign}/decisions"
    body = b'{"user_id": "iso-bob"}'
    as_device = http.post(decisions, content=body, headers=_signed(alice, "POST", decisions, body))
    assert (as_device.status_code, as_device.json()["error"]) == (401, "missing_token")


# ---- no secrets at rest -------------------------------------------------------------------------------


def test_the_database_holds_nothing_that_can_sign_for_a_device(endpoint: LiveServer) -> None:
    device = DeviceClient.register(endpoint.url, "leak-user")
    device.post_scores([device.score("m", 0.2, 0.4)])
    dump = []
    with endpoint.engine.connect() as conn:
        for table in tables.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                dump.extend(str(value) for value in row)
        registered = conn.execute(select(tables.devices.c.public_key)
                                  .where(tables.devices.c.device_id == device.device_id)).scalar()
    assert registered == wire.public_key_of(device.secret)
    assert not any(device.secret in value for value in dump)
    assert "secret" not in {c["name"] for c in inspect(endpoint.engine).get_columns("devices")}
    # All a leaked database offers is the public key: as a signing key it signs nothing the server takes.
    body = wire.encode_scores([device.score("m", 0.9, 0.9)])
    headers = {"content-type": "application/json",
               **wire.signed_headers(device.device_id, registered, "POST", "/scores", body)}
    response = httpx.post(f"{endpoint.url}/scores", content=body, headers=headers)
    assert (response.status_code, response.json()["error"]) == (401, "bad_signature")


def test_a_version_1_database_loses_its_stored_secrets_on_migration(databases: Databases) -> None:
    """Version 1 kept each device's HMAC secret; version 2 drops the column: those devices register again."""
    url = databases.new()
    engine = make_engine(url, pool_size=1)
    with engine.begin() as conn:  # the version-1 layout
        tables.metadata.create_all(conn)
        conn.execute(text("ALTER TABLE devices ADD COLUMN secret VARCHAR(64)"))
        conn.execute(text("ALTER TABLE devices DROP COLUMN public_key"))
        tables.rate_counters.drop(conn)
        schema_version.create(conn)
        conn.execute(schema_version.insert().values(version=1, description=MIGRATIONS[0].description, applied_ms=0))
        conn.execute(text("INSERT INTO devices (device_id, user_id, secret, created_ms) VALUES (:d, :u, :s, 0)"),
                     {"d": "b" * 32, "u": "old-user", "s": "ab" * 32})
    assert migrate(engine) == [2, 3]
    columns = {c["name"] for c in inspect(engine).get_columns("devices")}
    assert columns == {c.name for c in tables.devices.columns}
    assert inspect(engine).has_table("rate_counters")
    engine.dispose()
    with LiveServer(url) as live:
        secret, _ = wire.new_device_key()
        body = wire.encode_scores([{"device_id": "b" * 32, "model_version": "m", "p_realtime": 0.3, "p_longterm": 0.5,
                               "ts": wire.now_ms()}])  # fmt: skip
        headers = {"content-type": "application/json", **wire.signed_headers("b" * 32, secret, "POST", "/scores", body)}
        response = httpx.post(f"{live.url}/scores", content=body, headers=headers)
    assert (response.status_code, response.json()["error"]) == (401, "unknown_device")


# ---- SQL only with bound parameters ---------------------------------------------------------------------

SQL_CALLS = {"text", "exec_driver_sql", "execute", "executemany", "executescript"}


def _built_sql(node: ast.expr) -> bool:
    """A SQL string assembled at run time from something other than module constants."""
    if isinstance(node, ast.JoinedStr):  # f-string: only UPPER_CASE module constants may go in
        return any(not (isinstance(v.value, ast.Name) and v.value.id.isupper())
                   for v in node.values if isinstance(v, ast.FormattedValue))  # fmt: skip
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"


def test_sql_is_never_assembled_from_strings() -> None:
    """Every SQL string in the server and the device queue is a literal (values go in as bound
    parameters) or interpolates only module constants (PRAGMAs take no parameters)."""
    offenders = []
    sources = sorted((ROOT / "dipn" / "serving").glob("*.py")) + [ROOT / "mobile_demo" / "uplink.py"]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name not in SQL_CALLS:
                continue
            first = node.args[0]
            if _built_sql(first) or (name in ("text", "exec_driver_sql") and not isinstance(first, ast.Constant)):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


INJECTIONS = {
    "user": "inj');DROP/**/TABLE/**/devices;--",
    "platform": "x' OR '1'='1",
    "campaign": "'); DELETE FROM grants; --",
    "order": "o'||(SELECT/**/public_key/**/FROM/**/devices)||'",
}


def test_injection_attempts_are_stored_verbatim_and_never_reach_the_sql_text(endpoint: LiveServer) -> None:
    statements: list[str] = []
    lock = threading.Lock()

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001, ARG001
        with lock:
            statements.append(statement)

    event.listen(Engine, "before_cursor_execute", capture)
    try:
        operator = endpoint.operator()
        http = httpx.Client(base_url=endpoint.url)
        secret, public_key = wire.new_device_key()
        registered = http.post("/devices", json={"user_id": INJECTIONS["user"], "platform": INJECTIONS["platform"],
                                                 "public_key": public_key}).json()  # fmt: skip
        device = DeviceClient(endpoint.url, registered["device_id"], secret)
        device.post_scores([device.score("m", 0.3, 0.5)])
        campaign = operator.create_campaign(name=INJECTIONS["campaign"], shares={"all": 1.0})
        assert operator.get_campaign(campaign["id"])["config"]["name"] == INJECTIONS["campaign"]
        assert operator.decide(campaign["id"], INJECTIONS["user"])["user_id"] == INJECTIONS["user"]
        operator.record_order(campaign["id"], INJECTIONS["order"], INJECTIONS["user"], 12.5, coupon_used=True)
        assert http.get(f"/campaigns/{campaign['id']}%20OR%201=1",
                        headers={"authorization": f"Bearer {ADMIN}"}).status_code == 422
    finally:
        event.remove(Engine, "before_cursor_execute", capture)
    leaked = [s for s in statements for payload in INJECTIONS.values() if payload in s or "DROP" in s.upper()]
    assert statements and leaked == []
    with endpoint.engine.connect() as conn:
        assert conn.execute(select(tables.devices.c.user_id, tables.devices.c.platform)
                            .where(tables.devices.c.device_id == device.device_id)).one() == (
            INJECTIONS["user"], INJECTIONS["platform"])
        assert conn.execute(select(tables.orders.c.order_id)
                            .where(tables.orders.c.campaign_id == campaign["id"])).scalar() == INJECTIONS["order"]
        assert conn.execute(select(func.count()).select_from(tables.grants)
                            .where(tables.grants.c.campaign_id == campaign["id"])).scalar() == 1
    assert set(tables.metadata.tables) <= set(inspect(endpoint.engine).get_table_names())


# ---- schema-driven fuzzing ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_fuzz_target(databases: Databases):  # noqa: ANN201
    """An endpoint, a registered device and a campaign, for the schema-driven fuzzer."""
    with LiveServer(databases.new(), rate_limit=0) as live:
        device = DeviceClient.register(live.url, "fuzz-user")
        live.operator().create_campaign(name="fuzz", shares={"all": 1.0})
        yield live, device, httpx.Client(base_url=live.url, timeout=30)


def _send(target: tuple, case) -> httpx.Response:  # noqa: ANN001 (a schemathesis Case)
    """Send a generated request as a real client would: admin routes with the token, device routes
    signed by a registered device (scores renamed to it, so the fuzzer gets past the first check)."""
    live, device, http = target
    path = case.formatted_path
    body = case.body
    if path == "/scores" and isinstance(body, dict):
        for score in body.get("scores") or []:
            if isinstance(score, dict) and "device_id" in score:
                score["device_id"] = device.device_id
    content = b"" if body is None or type(body).__name__ == "NotSet" else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    if path == "/scores" or path.startswith("/coupons/"):
        headers |= wire.signed_headers(device.device_id, device.secret, case.method, path, content)
        # Header values the fuzzer generated replace the signed ones (as latin-1 bytes, which the
        # server decodes back to the same text: "²" arrives as "²").
        headers |= {name.lower(): value.encode("latin-1", "replace") for name, value in (case.headers or {}).items()}
    elif path != "/devices":
        headers["authorization"] = f"Bearer {ADMIN}"
    return http.request(case.method, path, content=content, params=case.query or None, headers=headers)


def _api_strategy():  # noqa: ANN202 (a strategy of schemathesis Cases)
    schemathesis = pytest.importorskip("schemathesis")
    from dipn.serving.app import create_app

    return schemathesis.openapi.from_dict(create_app(ServerConfig(admin_token=ADMIN)).openapi()).as_strategy()


def _check_no_server_error(target: tuple, case) -> None:  # noqa: ANN001
    try:
        response = _send(target, case)
    except httpx.TransportError:  # a body over the limit is answered 413 unread; the client may see the reset
        assert len(json.dumps(case.body)) > ServerConfig().max_body_bytes, (case.method, case.formatted_path)
        return
    assert response.status_code < 500, (case.method, case.formatted_path, case.body, response.text)
    if response.status_code >= 400:
        assert set(response.json()) == {"error", "detail"}, response.text


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_no_route_answers_5xx_to_schema_driven_requests(api_fuzz_target: tuple) -> None:
    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
    @given(_api_strategy())
    def run(case) -> None:  # noqa: ANN001
        _check_no_server_error(api_fuzz_target, case)

    run()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_long_schema_driven_fuzz_of_every_route(api_fuzz_target: tuple) -> None:
    @settings(max_examples=3000, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
    @given(_api_strategy())
    def run(case) -> None:  # noqa: ANN001
        _check_no_server_error(api_fuzz_target, case)

    run()


def test_the_openapi_document_describes_the_signed_routes() -> None:
    from dipn.serving.app import create_app

    spec = create_app(ServerConfig()).openapi()
    body = spec["paths"]["/scores"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["scores"]["items"]["additionalProperties"] is False
    assert "/coupons/{campaign_id}" in spec["paths"] and "$ref" not in json.dumps(body)
    assert re.fullmatch(r"\^\[0-9a-f\]\{64\}\$", spec["components"]["schemas"]["RegisterDevice"]["properties"]
                        ["public_key"]["pattern"])  # fmt: skip



# ---- issue 17: operator access, headers, strict campaigns, counting, error bodies, file modes ---------------


def _dipn_serve(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """``dipn serve`` with no DIPN_* variable of this environment but those of ``env``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DIPN_")} | (env or {})
    return subprocess.run([sys.executable, "-m", "dipn.cli", "serve", *args], capture_output=True, text=True,
                          env=environ, timeout=timeout)  # fmt: skip


def _one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dipn: error: "), done.stderr
    return lines[0]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the refused app thread
def test_serve_refuses_to_start_with_open_operator_routes_unless_told_to_on_loopback(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/serve.db"
    assert "no admin token" in _one_line_error(_dipn_serve("--db", db, "--port", str(free_port())))
    assert "empty token" in _one_line_error(_dipn_serve("--db", db, env={"DIPN_ADMIN_TOKEN": " "}))
    assert "empty token" in _one_line_error(_dipn_serve("--db", db, env={"DIPN_ADMIN_TOKEN": ADMIN,
                                                                         "DIPN_ENROLL_TOKEN": " "}))
    refused = _dipn_serve("--db", db, "--insecure-open-operator-routes", "--host", "0.0.0.0")
    assert "loopback only" in _one_line_error(refused)
    assert not (tmp_path / "serve.db").exists()  # refused before touching the database
    # The app itself refuses too (``uvicorn --factory`` without ``dipn serve``): it never starts.
    with pytest.raises(RuntimeError, match="did not start"), ThreadedServer(ServerConfig(db_url=db), free_port()):
        pass
    # Told to, on loopback: the routes are open (a demo's choice).
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "dipn.cli", "serve", "--db", db, "--port", str(port),
                                "--insecure-open-operator-routes", "--insecure-open-enrollment"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None and time.monotonic() < deadline, "dipn serve did not come up"
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/campaigns", json={"name": "open"}, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert answer.status_code == 201, answer.text
    finally:
        process.terminate()
        process.wait(30)


def test_serve_refuses_invalid_options_with_one_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/serve.db"
    tokens = {"DIPN_ADMIN_TOKEN": ADMIN, "DIPN_ENROLL_TOKEN": "enroll"}
    # ServerConfig checks every setting; dipn serve names the option the value came from.
    assert "--rate-limit: rate_limit must be an integer in [0, " in _one_line_error(
        _dipn_serve("--db", db, "--rate-limit", "-1", env=tokens))
    assert "max_body_bytes" in _one_line_error(_dipn_serve("--db", db, "--max-body-bytes", "10", env=tokens))
    assert "--signature-window" in _one_line_error(_dipn_serve("--db", db, "--signature-window", "-5", env=tokens))
    not_a_number = _dipn_serve("--db", db, env=tokens | {"DIPN_RATE_LIMIT": "lots"})
    assert not_a_number.returncode == 2 and "invalid int value: 'lots'" in not_a_number.stderr
    assert "Traceback" not in not_a_number.stderr
    with pytest.raises(ValueError, match="DIPN_MAX_HEADERS must be an integer"):
        ServerConfig.from_env({"DIPN_MAX_HEADERS": "²"})
    with pytest.raises(ValueError, match="rate_limit must be an integer in"):
        ServerConfig(rate_limit=-1)


DIGIT_LIKE = "0123456789²³¹¼½¾"  # str.isdigit() is True for the first 13; int() takes only the first 10
HEADER_TEXT = st.text(st.sampled_from([chr(c) for c in [*range(0x21, 0x7F), *range(0xA0, 0x100)]]), max_size=40)


@st.composite
def signed_headers_with_one_malformed(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from([wire.HEADER_DEVICE, wire.HEADER_TIMESTAMP, wire.HEADER_NONCE, wire.HEADER_SIGNATURE,
                                 "authorization"]))  # fmt: skip
    value = draw(st.one_of(HEADER_TEXT, st.text(st.sampled_from(DIGIT_LIKE), min_size=1, max_size=16)))
    return name, value.encode("latin-1")


def test_a_unicode_digit_timestamp_is_a_401_on_both_signed_routes(endpoint: LiveServer) -> None:
    device = DeviceClient.register(endpoint.url, "unicode-ts-user")
    http = httpx.Client(base_url=endpoint.url)
    body = wire.encode_scores([device.score("m", 0.3, 0.5)])
    for method, path, content in (("POST", "/scores", body), ("GET", "/coupons/1", b"")):
        headers = _signed(device, method, path, content) | {wire.HEADER_TIMESTAMP: "²".encode("latin-1")}
        response = http.request(method, path, content=content, headers=headers)
        assert (response.status_code, response.json()["error"]) == (401, "stale_timestamp"), response.text


def test_every_malformed_auth_header_is_a_401_with_the_error_body(endpoint: LiveServer) -> None:
    """Property: a well-signed request with one header replaced by arbitrary (latin-1, digit-like)
    text is answered 401 (or, for a value that happens to be valid, what a valid one gets), never 5xx."""
    device = DeviceClient.register(endpoint.url, "header-fuzz-user")
    http = httpx.Client(base_url=endpoint.url, timeout=30)
    body = wire.encode_scores([device.score("m", 0.3, 0.5)])

    @settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(signed_headers_with_one_malformed(), st.sampled_from(["scores", "coupon", "operator"]))
    def run(header: tuple[str, bytes], route: str) -> None:
        name, value = header
        if route == "operator":
            response = http.get("/campaigns/1", headers={"authorization": value})
            assert response.status_code in (401, 403), response.text
        else:
            method, path, content = ("POST", "/scores", body) if route == "scores" else ("GET", "/coupons/1", b"")
            headers = _signed(device, method, path, content) | {name: value}
            response = http.request(method, path, content=content, headers=headers)
            assert response.status_code in ((401,) if name != "authorization" else (200, 404)), response.text
        assert set(response.json()) == {"error", "detail"} or response.status_code == 200, response.text

    run()


def test_campaign_creation_refuses_unknown_fields_strings_for_numbers_and_zero_cent_coupons(
    endpoint: LiveServer,
) -> None:
    http = httpx.Client(base_url=endpoint.url, headers={"authorization": f"Bearer {ADMIN}"})
    before = endpoint.count(tables.campaigns)
    for body, named in [
        ({"name": "typo", "buget": 100}, "buget"),
        ({"coupon_value": "10"}, "coupon_value"),
        ({"active": "yes"}, "active"),
        ({"t_l": "0.1"}, "t_l"),
        ({"score_max_age_ms": 1e6}, "score_max_age_ms"),
        ({"shares": {"none": "0.5", "all": 0.5}}, "shares"),
        ({"shares": {"nobody": 1.0}}, "shares"),
        ({"uplift": {"peak": 0.1, "mood": 0.3}}, "uplift"),
        ({"coupon_value": 0.004}, "coupon_value"),
        ({"coupon_value": 0.0}, "coupon_value"),
    ]:
        response = http.post("/campaigns", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"] == "invalid_request" and named in response.json()["detail"], response.text
    assert endpoint.count(tables.campaigns) == before
    created = http.post("/campaigns", json={"name": "strict", "coupon_value": 10, "budget": 50.5, "active": False,
                                            "shares": {"all": 1.0}, "uplift": {"peak": 0.2}})  # fmt: skip
    assert created.status_code == 201, created.text
    config = created.json()["config"]
    assert (config["coupon_value"], config["budget"], config["active"], config["uplift"]["peak"]) == (10.0, 50.5,
                                                                                                      False, 0.2)


def test_every_authenticated_post_counts_against_the_rate_limit(databases: Databases) -> None:
    """Refused signed posts (422, 403, 413 too_many_scores) count: a device cannot probe for free."""
    with LiveServer(databases.new(), rate_limit=4) as live:
        device = DeviceClient.register(live.url, "counted-user")
        other = DeviceClient.register(live.url, "counted-other")
        http = httpx.Client(base_url=live.url)
        now = wire.now_ms()
        bad = [json.dumps({"scores": [device.score("m", 1.5, 0.5, ts=now)]}).encode(),
               wire.encode_scores([other.score("m", 0.3, 0.5, ts=now)]),
               wire.encode_scores([device.score("m", 0.3, 0.5, ts=now + i) for i in range(300)])]  # fmt: skip
        statuses = [http.post("/scores", content=b, headers=_signed(device, "POST", "/scores", b)).status_code
                    for b in bad]  # fmt: skip
        assert statuses == [422, 403, 413]
        assert device.post_scores([device.score("m", 0.3, 0.5, ts=now)]) == {"accepted": 1, "duplicates": 0}
        over = wire.encode_scores([device.score("m", 0.3, 0.5, ts=now + 1)])
        limited = http.post("/scores", content=over, headers=_signed(device, "POST", "/scores", over))
        assert (limited.status_code, limited.json()["error"]) == (429, "rate_limited")
        assert live.count(tables.scores) == 1


def _raw_request(url: str, head: bytes, filler: int = 0) -> bytes:
    """Send a request head (plus ``filler`` bytes of one header value) on a raw socket; the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        try:
            sock.sendall(head)
            chunk = b"a" * 65536
            for _ in range(filler // len(chunk)):
                sock.sendall(chunk)
            sock.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed without reading the rest: what a bound should do
        answer = b""
        try:
            while part := sock.recv(65536):
                answer += part
        except ConnectionResetError:
            pass
        return answer


def test_headers_are_bounded_in_size_and_count_by_a_real_server(endpoint: LiveServer) -> None:
    huge = _raw_request(endpoint.url, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ", filler=20 * 2**20)
    assert re.match(rb"HTTP/1\.1 4(00|31) ", huge), huge[:200]
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(ServerConfig().max_headers + 1))
    answer = _raw_request(endpoint.url, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + many[:-2])
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "headers_too_large"
    assert httpx.get(f"{endpoint.url}/healthz").status_code == 200  # and the server serves on


def test_unknown_paths_methods_and_cors_preflights_get_the_error_body(endpoint: LiveServer) -> None:
    http = httpx.Client(base_url=endpoint.url)
    missing = http.get("/no-such-route")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found") and set(missing.json()) == {
        "error", "detail"}
    wrong_method = http.delete("/scores")
    assert (wrong_method.status_code, wrong_method.json()["error"]) == (405, "method_not_allowed")
    assert wrong_method.headers["allow"] == "POST" and set(wrong_method.json()) == {"error", "detail"}
    preflight = http.options("/scores", headers={"origin": "https://evil.example",
                                                 "access-control-request-method": "POST"})  # fmt: skip
    assert preflight.status_code == 405 and set(preflight.json()) == {"error", "detail"}
    assert "access-control-allow-origin" not in preflight.headers


def test_the_sqlite_database_and_its_wal_files_are_private(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        with LiveServer(f"sqlite:///{tmp_path}/private.db") as live:
            device = DeviceClient.register(live.url, "private-user")
            device.post_scores([device.score("m", 0.3, 0.5)])
            files = sorted(tmp_path.glob("private.db*"))
            assert [f.name for f in files] == ["private.db", "private.db-shm", "private.db-wal"]
            assert {f.name: oct(f.stat().st_mode & 0o777) for f in files} == {f.name: "0o600" for f in files}
        (tmp_path / "old.db").touch(mode=0o644)  # a database made before the fix is tightened on start
        make_engine(f"sqlite:///{tmp_path}/old.db").dispose()
        assert (tmp_path / "old.db").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old_umask)
