"""The endpoint's doors and bounds (issue 26 items 6-7, issue 27 item 5), on real servers on loopback:
slow clients cut off while the health check answers, the request line bounded, unpaired
surrogates refused, the query string signed, tokens never on a command line, enrollment closed by
default, and an OpenAPI document that validates, drives a generated client against the live
server, and is shown by Swagger UI and ReDoc from local files."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra (FastAPI, uvicorn, SQLAlchemy) is not installed")
import httpx  # noqa: E402

from dipn import wire  # noqa: E402
from dipn.serving import tables  # noqa: E402
from dipn.serving.client import DeviceClient  # noqa: E402
from dipn.serving.config import ServerConfig  # noqa: E402
from dipn.serving.server import free_port  # noqa: E402
from tests.serve_process import ADMIN, Databases, LiveServer, databases_fixture  # noqa: E402

ENROLL = "enrollment-token-of-the-app-backend"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def databases(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    yield from databases_fixture(request, tmp_path_factory)


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with short deadlines: heads and bodies 1 s, idle keep-alive 0.5 s."""
    db = f"sqlite:///{tmp_path_factory.mktemp('quick')}/quick.db"
    with LiveServer(db, rate_limit=0, header_timeout_ms=1000, body_timeout_ms=1000, keepalive_timeout_ms=500) as live:
        yield live


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _read_until_closed(sock: socket.socket, limit_s: float) -> tuple[bytes, float]:
    """What the server sends until it closes the connection, and how long that took."""
    started, answer = time.monotonic(), b""
    sock.settimeout(limit_s)
    try:
        while part := sock.recv(65536):
            answer += part
    except (ConnectionResetError, TimeoutError):
        pass
    return answer, time.monotonic() - started


# ---- slow clients ------------------------------------------------------------------------------------


def test_a_slow_client_is_cut_off_while_the_health_check_answers(quick: LiveServer) -> None:
    """50 connections drip a request head one byte at a time (each byte cancels uvicorn's keep-alive
    timer); all get 408 and are closed at the 1 s head deadline (a connection still open 5 s after
    the last byte reads as no answer here), and /healthz answers all along."""
    slow = [_connect(quick.url) for _ in range(50)]
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40
    healthy = []
    for i in range(8):  # 1.6 s of dripping, past the deadline
        for sock in slow:
            try:
                sock.send(head[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                pass
        healthy.append(httpx.get(f"{quick.url}/healthz", timeout=5).status_code)
        time.sleep(0.2)
    with ThreadPoolExecutor(len(slow)) as pool:
        answers = list(pool.map(lambda s: _read_until_closed(s, 5), slow))
    assert healthy == [200] * 8
    for answer, _ in answers:
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "request_timeout"
    for sock in slow:
        sock.close()


def test_a_slow_body_gets_408_and_an_idle_keep_alive_connection_is_closed(quick: LiveServer) -> None:
    with _connect(quick.url) as sock:  # 10 of 100 promised bytes, then nothing
        sock.sendall(b"POST /campaigns HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ADMIN.encode()
                     + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\": ")
        answer, took = _read_until_closed(sock, 5)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "request_timeout" and took < 3
    assert quick.count(tables.campaigns) == 0
    with _connect(quick.url) as sock:  # one request, then idle: closed after the keep-alive timeout
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer, took = _read_until_closed(sock, 5)
    assert answer.startswith(b"HTTP/1.1 200 ") and took < 3


def test_the_request_line_is_bounded_as_documented(quick: LiveServer) -> None:
    """16 KiB for the request line and headers together; a 100 KB request line was answered 200."""
    for size in (17 * 1024, 100_000):
        with _connect(quick.url) as sock:
            sock.sendall(b"GET /healthz?q=" + b"a" * size + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer, _ = _read_until_closed(sock, 10)
        status = int(answer[9:12])
        assert status in (400, 414), answer[:200]  # 400: h11 refused it while it was still arriving
        if status == 414:
            assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "uri_too_long"
    assert httpx.get(f"{quick.url}/healthz", params={"q": "a" * 15_000}).status_code == 200


# ---- text, signatures ----------------------------------------------------------------------------------


def test_unpaired_surrogates_in_text_fields_are_a_422(databases: Databases) -> None:
    """A lone "\\ud800" in a campaign's name or salt was an HTTP 500 (UnicodeEncodeError in the driver)."""
    with LiveServer(databases.new()) as live:
        http = httpx.Client(base_url=live.url, headers={"authorization": f"Bearer {ADMIN}",
                                                        "content-type": "application/json"})
        bodies = [b'{"name": "\\ud800"}', b'{"salt": "x\\udfffy"}', b'{"name": "ok", "salt": "\\ud83d"}']
        for body in bodies:
            response = http.post("/campaigns", content=body)
            assert response.status_code == 422, (body, response.text)
            assert response.json()["error"] == "invalid_request" and "surrogate" in response.json()["detail"]
        secret, public_key = wire.new_device_key()
        device = http.post("/devices", content=json.dumps({"user_id": "u1", "platform": "\ud800",
                                                           "public_key": public_key}).encode())  # fmt: skip
        assert device.status_code == 422 and set(device.json()) == {"error", "detail"}, device.text
        paired = http.post("/campaigns", content=b'{"name": "\\ud83d\\ude00 sale"}')  # a pair is one emoji
        assert paired.status_code == 201 and paired.json()["config"]["name"] == "\U0001f600 sale"
        assert live.count(tables.campaigns) == 1


def test_the_signature_covers_the_query_string(quick: LiveServer) -> None:
    device = DeviceClient.register(quick.url, "query-user")
    http = httpx.Client(base_url=quick.url)
    body = wire.encode_scores([device.score("m", 0.3, 0.5)])

    def signed(target: str, content: bytes, method: str = "POST") -> dict[str, str]:
        return {"content-type": "application/json",
                **wire.signed_headers(device.device_id, device.secret, method, target, content)}

    added = http.post("/scores?x=1", content=body, headers=signed("/scores", body))
    assert (added.status_code, added.json()["error"]) == (401, "bad_signature")
    changed = http.post("/scores?x=2", content=body, headers=signed("/scores?x=1", body))
    assert (changed.status_code, changed.json()["error"]) == (401, "bad_signature")
    assert http.post("/scores?x=1", content=body, headers=signed("/scores?x=1", body)).status_code == 200
    coupon = http.get("/coupons/1?lang=en", headers=signed("/coupons/1", b"", "GET"))
    assert coupon.json()["error"] == "bad_signature"
    assert wire.request_target("/coupons/1", "lang=en") == "/coupons/1?lang=en"
    assert wire.request_target("/scores") == "/scores"


# ---- tokens and enrollment ---------------------------------------------------------------------------


def _start_serve(db: str, env: dict[str, str], *args: str, workers: int = 2) -> tuple[subprocess.Popen, str]:
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DIPN_")} | env
    process = subprocess.Popen([sys.executable, "-m", "dipn.cli", "serve", "--db", db, "--port", str(port),
                                "--workers", str(workers), *args], env=environ, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "dipn serve did not come up"
        try:
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200 and len(children) >= workers:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)


def _stop(process: subprocess.Popen) -> str:
    os.killpg(process.pid, 15)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
    return process.stderr.read()


def _process_tree(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *(p for child in children for p in _process_tree(int(child)))]


def test_no_token_shows_on_any_command_line_and_registration_needs_the_enrollment_token(tmp_path: Path) -> None:
    """``dipn serve --workers 2`` with the admin token in a file and the enrollment token in the
    environment: no process of the server shows either in its command line (what ``ps`` prints)."""
    token_file = tmp_path / "admin-token"
    token_file.write_text(ADMIN + "\n")
    token_file.chmod(0o600)
    process, url = _start_serve(f"sqlite:///{tmp_path}/serve.db", {"DIPN_ENROLL_TOKEN": ENROLL},
                                "--admin-token-file", str(token_file))
    try:
        pids = _process_tree(process.pid)
        assert len(pids) >= 3  # the supervisor and its 2 workers
        for pid in pids:
            command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
            assert ADMIN.encode() not in command_line and ENROLL.encode() not in command_line
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        assert ADMIN not in ps and ENROLL not in ps
        secret, public_key = wire.new_device_key()
        body = {"user_id": "victim-42", "public_key": public_key}
        without = httpx.post(f"{url}/devices", json=body)
        wrong = httpx.post(f"{url}/devices", json=body, headers={"authorization": "Bearer guess"})
        assert (without.status_code, without.json()["error"]) == (401, "missing_token")
        assert (wrong.status_code, wrong.json()["error"]) == (403, "bad_token")
        device = DeviceClient.register(url, "victim-42", enroll_token=ENROLL)
        assert device.post_scores([device.score("m", 0.3, 0.5)]) == {"accepted": 1, "duplicates": 0}
        created = httpx.post(f"{url}/campaigns", json={"name": "file-token"},
                             headers={"authorization": f"Bearer {ADMIN}"})  # the token read from the file
        assert created.status_code == 201, created.text
    finally:
        stderr = _stop(process)
    assert "warning" not in stderr.lower(), stderr


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the refused app thread
def test_enrollment_is_closed_unless_open_enrollment_is_asked_for_which_warns(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/serve.db"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DIPN_")} | {"DIPN_ADMIN_TOKEN": ADMIN}
    refused = subprocess.run([sys.executable, "-m", "dipn.cli", "serve", "--db", db, "--port", str(free_port())],
                             env=environ, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "no enrollment token" in refused.stderr and "--insecure-open-enrollment" in refused.stderr
    on_argv = subprocess.run([sys.executable, "-m", "dipn.cli", "serve", "--db", db, "--admin-token", ADMIN],
                             env=environ, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert on_argv.returncode == 2 and "ps shows it" in on_argv.stderr and "Traceback" not in on_argv.stderr
    empty = tmp_path / "empty-token"
    empty.write_text("\n")
    from_empty_file = subprocess.run([sys.executable, "-m", "dipn.cli", "serve", "--db", db, "--enroll-token-file",
                                      str(empty)], env=environ, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert from_empty_file.returncode == 2 and "is empty" in from_empty_file.stderr
    process, url = _start_serve(db, {"DIPN_ADMIN_TOKEN": ADMIN}, "--insecure-open-enrollment", workers=1)
    try:
        assert DeviceClient.register(url, "demo-user").device_id  # open: a demo's choice
    finally:
        stderr = _stop(process)
    warnings = [line for line in stderr.splitlines() if "open enrollment" in line]
    assert len(warnings) == 1 and "warning" in warnings[0], stderr
    # The app itself refuses too (under any ASGI server) without an enrollment token or the flag.
    from dipn.serving.server import ThreadedServer

    with pytest.raises(RuntimeError, match="did not start"), ThreadedServer(ServerConfig(db_url=db, admin_token=ADMIN),
                                                                            free_port()):  # fmt: skip
        pass


# ---- the OpenAPI document ---------------------------------------------------------------------------


def _document() -> dict:
    from dipn.serving.app import create_app

    return create_app(ServerConfig(admin_token=ADMIN, enroll_token=ENROLL)).openapi()


def test_the_openapi_document_validates_and_declares_security_and_every_error_body() -> None:
    from openapi_spec_validator import validate

    document = _document()
    validate(document)
    assert "HTTPValidationError" not in json.dumps(document)
    schemes = document["components"]["securitySchemes"]
    assert schemes["operatorToken"] == {"type": "http", "scheme": "bearer",
                                        "description": "the operator (admin) token the server was started with"}
    assert {schemes[n]["name"] for n in ("deviceId", "deviceTimestamp", "deviceNonce", "deviceSignature")} == set(
        wire.SIGNED_HEADERS)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            errors = {status for status in responses if status[0] in "45"}
            assert {"408", "413", "414", "431"} <= errors, (method, path)
            for status in errors:
                schema = responses[status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
            security = [set(requirement) for requirement in operation.get("security", [])]
            if path in ("/scores", "/coupons/{campaign_id}"):
                assert security == [{"deviceId", "deviceTimestamp", "deviceNonce", "deviceSignature"}]
                assert {"401", "409", "429"} <= errors and "Retry-After" in responses["429"]["headers"]
            elif path == "/devices":
                assert security == [{"enrollmentToken"}] and {"401", "403", "422"} <= errors
            elif path != "/healthz":
                assert security == [{"operatorToken"}] and {"401", "403"} <= errors, (method, path)
            if "{campaign_id}" in path:
                assert "404" in errors
    assert set(document["components"]["schemas"]["ErrorBody"]["properties"]) == {"error", "detail"}


def test_a_client_generated_from_the_document_drives_the_live_server(tmp_path: Path) -> None:
    """openapi-python-client generates a package from the live /openapi.json (warnings are failures);
    its functions then create and read a campaign, register a device, and parse the error body."""
    generator = Path(sys.executable).with_name("openapi-python-client")
    if not generator.exists():
        pytest.skip("openapi-python-client is not installed (the dev extra)")
    with LiveServer(f"sqlite:///{tmp_path}/gen.db", enroll_token=ENROLL, open_enrollment=False) as live:
        (tmp_path / "openapi.json").write_text(httpx.get(f"{live.url}/openapi.json").text)
        done = subprocess.run([str(generator), "generate", "--path", str(tmp_path / "openapi.json"), "--meta", "none",
                               "--output-path", str(tmp_path / "dipn_endpoint_client"), "--fail-on-warning"],
                              capture_output=True, text=True, timeout=300, cwd=tmp_path,
                              env=os.environ | {"PATH": f"{generator.parent}:{os.environ['PATH']}"})  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        public_key = wire.new_device_key()[1]
        program = f"""
import sys
sys.path.insert(0, {str(tmp_path)!r})
from dipn_endpoint_client import AuthenticatedClient
from dipn_endpoint_client.api.default import create_campaign, get_campaign, register
from dipn_endpoint_client.models import CampaignIn, ErrorBody, RegisterDevice
operator = AuthenticatedClient(base_url={live.url!r}, token={ADMIN!r})
created = create_campaign.sync_detailed(client=operator, body=CampaignIn(name="generated", coupon_value=5.0))
assert created.status_code == 201, created.content
campaign_id = created.parsed.to_dict()["id"]
read = get_campaign.sync_detailed(campaign_id, client=operator)
assert read.status_code == 200, read.content
wrong = get_campaign.sync_detailed(campaign_id, client=AuthenticatedClient(base_url={live.url!r}, token="guess"))
assert wrong.status_code == 403 and isinstance(wrong.parsed, ErrorBody) and wrong.parsed.error == "bad_token"
missing = get_campaign.sync_detailed(campaign_id + 1000, client=operator)
assert missing.status_code == 404 and missing.parsed.error == "unknown_campaign"
backend = AuthenticatedClient(base_url={live.url!r}, token={ENROLL!r})
device = register.sync_detailed(client=backend, body=RegisterDevice(user_id="gen-user", public_key={public_key!r}))
assert device.status_code == 201 and device.parsed.user_id == "gen-user", device.content
print("ok")
"""
        run = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0 and run.stdout.strip() == "ok", run.stdout + run.stderr


def test_swagger_ui_and_redoc_load_nothing_from_outside(quick: LiveServer) -> None:
    http = httpx.Client(base_url=quick.url)
    for page in ("/docs", "/redoc"):
        html = http.get(page)
        assert html.status_code == 200 and "text/html" in html.headers["content-type"]
        references = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)["\']', html.text)
        references += re.findall(r"url:\s*'([^']+)'", html.text) + re.findall(r'spec-url="([^"]+)"', html.text)
        assert references and not [r for r in references if not r.startswith("/")], references
        assert "http://" not in html.text.replace("http://www.w3.org", "") and "https://" not in html.text
        for reference in references:
            asset = http.get(reference)
            assert asset.status_code == 200 and len(asset.content) > 100, reference
    assert http.get("/docs/assets/nothing.js").json()["error"] == "not_found"


CHROMIUM = Path("/usr/bin/chromium")
# Flags that work here (../shared/notes/web-runtime.md): no sandbox, no GPU, no background traffic.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed")
def test_swagger_ui_and_redoc_render_in_a_headless_browser(quick: LiveServer, tmp_path: Path) -> None:
    """The pages are drawn by their scripts in the browser: the DOM after they ran shows the
    operations and the operator token's scheme (Swagger's "Authorize"), from local files alone."""
    for page, expected in (("/docs", ["Authorize", "/scores", "/campaigns/{campaign_id}"]),
                           ("/redoc", ["operatorToken", "deviceSignature", "unknown_campaign"])):
        done = subprocess.run([str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / page.strip('/')}",
                               "--virtual-time-budget=15000", "--dump-dom", quick.url + page],
                              capture_output=True, text=True, timeout=180)  # fmt: skip
        missing = [word for word in expected if word not in done.stdout]
        assert not missing, (page, missing, done.stdout[:500])
