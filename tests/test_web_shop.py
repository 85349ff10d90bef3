"""The live page end to end in a real browser: ``dipn shop`` serves the mock shop, headless Chromium
(Debian's, through playwright-core) scrolls and taps through it, and

  * every score the page showed and logged equals the Python device's score of the same event
    stream (dipn.features and dipn.bundle on onnxruntime, same artifact) within the bundle's
    tolerance, at event moments and at the idle timer's ticks;
  * the page made no request but to its own origin: its assets, one device registration and
    signed score posts holding the five wire fields only, which ``dipn serve`` stored;
  * the endpoint's enrollment is closed: ``dipn shop`` adds the enrollment token (from
    --enroll-token-file) to the registration it forwards, and the token never reaches the page;
  * which scores were posted, and why, is what mobile_demo.policies decides for the same scores;
  * a screenshot is saved under docs/img/ when DIPN_UPDATE_SCREENSHOTS is set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("fastapi")

from sqlalchemy import select  # noqa: E402

from dipn.bundle.manifest import load_bundle  # noqa: E402
from dipn.bundle.runners.onnx import OnnxRunner  # noqa: E402
from dipn.bundle.selftest import encode_case  # noqa: E402
from dipn.features import VIEWS, FeatureManifest  # noqa: E402
from dipn.serving import tables  # noqa: E402
from dipn.wire import WIRE_FIELDS  # noqa: E402
from mobile_demo.policies import PostingPolicy, ScoringPolicy  # noqa: E402
from tests.serve_process import LiveServer  # noqa: E402
from tests.web_bundle import WEB, onnx_bundle, signing_keys, web_build  # noqa: E402, F401

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "img" / "web-shop.png"
ASSET_PREFIXES = ("/static/", "/app/src/", "/vendor/ort/", "/bundle/")
ENROLL_TOKEN = "shop-test-enrollment-token"


def python_device_scores(bundle_dir: Path, artifact: str, entries: list[dict], screen: list[float],
                         user: dict) -> list[list[float]]:  # fmt: skip
    """The Python device's scores of a logged stream: at each logged score, every event logged
    before it, encoded one at a time and assembled at the score's moment (dipn.features through
    dipn.bundle's golden-case path), on onnxruntime."""
    features = FeatureManifest.load(bundle_dir / "features.json")
    bundle = load_bundle(bundle_dir)
    names = [i["name"] for i in bundle.manifest["inputs"]]
    runner = OnnxRunner(bundle_dir / artifact)
    events: dict[str, list[dict]] = {view: [] for view in VIEWS}
    out = []
    for entry in entries:
        if entry["kind"] == "event":
            events[entry["view"]].append(entry["event"])
            continue
        case = {"events": events, "history": user["history"], "profile": user["profile"], "screen": screen,
                "score_ts": entry["ts"]}  # fmt: skip
        out.append(runner.scores(encode_case(case, features, names))[0].tolist())
    return out


def posts_under_policy(log: list[dict], scoring: ScoringPolicy) -> list[str | None]:
    """The post reason of each logged score as the Python device decides it
    (``PostingPolicy.reason_to_post``, with ``quiet_after`` as ``IntentScorer`` passes it: an event
    score when the policy has no idle ticks, the last idle tick after an event)."""
    posting, last, latest_event, out = PostingPolicy(), None, None, []
    for entry in log:
        if entry["kind"] == "event":
            latest_event = max(entry["event"]["ts"], latest_event or entry["event"]["ts"])
            continue
        if entry["trigger"] == "event":
            quiet = scoring.ticks_per_idle == 0
        else:
            quiet = entry["ts"] == latest_event + scoring.ticks_per_idle * (scoring.timer_ms or 0)
        reason = posting.reason_to_post(entry["p_realtime"], entry["p_longterm"], entry["ts"], last, quiet)
        if reason is not None:
            last = (entry["p_realtime"], entry["p_longterm"], entry["ts"])
        out.append(reason)
    return out


@pytest.fixture(scope="module")
def shop_run(onnx_bundle: Path, signing_keys, web_build: Path, tmp_path_factory: pytest.TempPathFactory):
    if not CHROMIUM.is_file():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    if not (WEB / "node_modules" / "playwright-core").is_dir():
        pytest.skip("playwright-core is not installed (make setup runs npm ci)")
    work = tmp_path_factory.mktemp("shop")
    token = work / "enroll-token"
    token.write_text(ENROLL_TOKEN + "\n")
    with LiveServer(f"sqlite:///{work / 'serve.db'}", open_enrollment=False, enroll_token=ENROLL_TOKEN) as endpoint:
        shop = subprocess.Popen([sys.executable, "-m", "dipn.cli", "shop", "--bundle", str(onnx_bundle), "--public-key",
                                 str(signing_keys[1]), "--endpoint", endpoint.url, "--port", "0", "--enroll-token-file",
                                 str(token)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            line = shop.stdout.readline()
            assert line.startswith("dipn shop: http://127.0.0.1:"), line + shop.stderr.read()
            url = line.split()[2]
            # The committed picture changes only when asked: a test run leaves the tree as it found it.
            shot = SCREENSHOT if os.environ.get("DIPN_UPDATE_SCREENSHOTS") else work / "web-shop.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            out = work / "drive.json"
            done = subprocess.run(["node", str(web_build / "e2e" / "drive.js"), "--url", url, "--out", str(out),
                                   "--screenshot", str(shot)], capture_output=True, text=True, timeout=600)  # fmt: skip
            assert done.returncode == 0, done.stderr
            with endpoint.engine.connect() as conn:
                stored = [dict(r._mapping) for r in conn.execute(select(tables.scores).order_by(tables.scores.c.id))]
            return json.loads(out.read_text()), url, stored
        finally:
            shop.terminate()
            shop.wait(30)


def test_the_page_scores_as_the_python_device_does(shop_run, onnx_bundle: Path) -> None:
    run, _, _ = shop_run
    assert run["ready"] and run["error"] is None, run["console"]
    assert run["selfTest"]["cases"] == 4 and run["signer"]
    scores = [e for e in run["log"] if e["kind"] == "score"]
    events = [e for e in run["log"] if e["kind"] == "event"]
    assert {e["view"] for e in events} == {"swipe", "tap", "browse"} and len(events) >= 30
    kinds = {e["event"].get("type") for e in events if e["view"] == "swipe"}
    assert {"swipe", "tap", "open_page", "leave_page"} <= kinds
    assert {e["event"]["action"] for e in events if e["view"] == "browse"} >= {"browse", "cart", "collect", "purchase"}
    ticks = [s for s in scores if s["trigger"] == "idle"]
    last_event = max(e["event"]["ts"] for e in events)
    assert [s["ts"] for s in ticks] == [last_event + 60_000, last_event + 120_000]
    reference = python_device_scores(onnx_bundle, run["artifact"], run["log"], run["screen"], run["user"])
    tolerance = json.loads((onnx_bundle / "golden.json").read_text())["tolerance"][run["precision"]]
    worst = max(abs(s[k] - r[i]) for s, r in zip(scores, reference, strict=True)
                for i, k in enumerate(("p_realtime", "p_longterm")))  # fmt: skip
    assert worst <= tolerance, worst
    last = scores[-1]
    assert run["shown"]["p_realtime"] == f"{last['p_realtime']:.4f}"
    assert run["shown"]["p_longterm"] == f"{last['p_longterm']:.4f}"
    assert SCREENSHOT.is_file() and SCREENSHOT.stat().st_size > 10_000


def test_only_scores_leave_the_page_and_the_endpoint_stores_them(shop_run, onnx_bundle: Path) -> None:
    run, url, stored = shop_run
    origin = urlsplit(url)
    posts = []
    for request in run["requests"]:
        where = urlsplit(request["url"])
        assert (where.scheme, where.netloc) == (origin.scheme, origin.netloc), request["url"]
        if request["method"] == "GET":
            assert where.path in ("/", "/config.json") or where.path.startswith(ASSET_PREFIXES), request["url"]
        else:
            assert request["method"] == "POST" and where.path in ("/devices", "/scores"), request
            posts.append(request)
    # one registration in both visits: the second signs as the same device, kept in IndexedDB
    assert [p["url"].endswith("/devices") for p in posts].count(True) == 1 and posts[0]["url"].endswith("/devices")
    registration = json.loads(posts[0]["postData"])
    assert set(registration) == {"user_id", "platform", "public_key"} and registration["platform"] == "web"
    # the endpoint's enrollment is closed: the shop's server added the token; the page never held it
    assert "authorization" not in posts[0]["headers"]
    assert ENROLL_TOKEN not in json.dumps(run["requests"]) + json.dumps(run["log"])
    revisit = run["revisit"]
    assert revisit["ready"] and revisit["deviceId"] == run["deviceId"]
    sent = []
    for post in posts[1:]:
        body = json.loads(post["postData"])
        assert set(body) == {"scores"} and all(tuple(r) == WIRE_FIELDS for r in body["scores"])
        assert post["headers"]["x-dipn-device"] == run["deviceId"]
        assert {"x-dipn-timestamp", "x-dipn-nonce", "x-dipn-signature"} <= set(post["headers"])
        sent += body["scores"]
    scores = [e for e in run["log"] if e["kind"] == "score"]
    recorded = json.loads((onnx_bundle / "manifest.json").read_text()).get("scoring_policy")
    scoring = ScoringPolicy.from_dict(recorded) if recorded is not None else ScoringPolicy()
    assert [s["post_reason"] for s in scores] == posts_under_policy(run["log"], scoring)
    assert [s["posted"] for s in scores] == [s["post"] for s in scores] == [s["post_reason"] is not None for s in scores]
    posted = [s for s in scores if s["posted"]]
    assert len(posted) < len(scores)
    posted_again = [e for e in revisit["log"] if e["kind"] == "score" and e["posted"]]
    assert posted_again and revisit["acknowledged"] == len(posted_again) and revisit["uplinkError"] is None
    both = [(s["p_realtime"], s["p_longterm"], s["ts"]) for s in posted + posted_again]
    assert [(r["p_realtime"], r["p_longterm"], r["ts"]) for r in sent] == both
    assert run["acknowledged"] == len(posted) and run["uplinkError"] is None
    # the endpoint keeps the first score of a (device, ts) and takes a later one as a duplicate
    # (dipn.serving.ingest): a second score of the same moment (a late record stamped with its
    # page's opening) is sent, acknowledged, and not stored
    kept, seen = [], set()
    for p, q, ts in both:
        if ts not in seen:
            kept.append((pytest.approx(p), pytest.approx(q), ts))
            seen.add(ts)
    assert [(r["p_realtime"], r["p_longterm"], r["ts"]) for r in stored] == kept
    assert {r["user_id"] for r in stored} == {run["user"]["user_id"]}
    assert {r["device_id"] for r in stored} == {run["deviceId"]}


def test_the_browser_latency_benchmark_times_both_runtimes_on_each_artifact(onnx_bundle: Path, signing_keys, web_build,
                                                                              tmp_path: Path) -> None:  # fmt: skip
    if not CHROMIUM.is_file():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from benchmarks import browser_latency

    argv = ["--bundle", str(onnx_bundle), "--public-key", str(signing_keys[1]), "--repeat", "3", "--rounds", "1",
            "--out", str(tmp_path)]  # fmt: skip
    assert browser_latency.main(argv) == 0
    report = json.loads((tmp_path / "browser_latency.json").read_text())
    assert [row["precision"] for row in report["rows"]] == ["fp32", "int8"]
    for row in report["rows"]:
        assert row["calls_each"] == 3 and row["browser_p50_ms"] > 0 and row["python_p50_ms"] > 0
        sizes = row["download_bytes"]
        assert sizes["model artifact"] == row["bytes"] and sizes["onnxruntime-web (JS + WebAssembly)"] > 1e6
    assert "| model.int8.onnx (int8) |" in (tmp_path / "browser_latency.md").read_text()
