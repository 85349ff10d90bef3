"""The operator dashboard end to end (issue 26, item 5): a real server fed by simulated phones
(scores and purchases drawn by benchmarks/coupon_ab.py's user model, posted signed through the
device client), loaded in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core
from mobile_demo/web/, installed by `make setup`), with the numbers it shows held to GET /campaigns/{id}/report;
the screenshot goes to docs/img/dashboard.png
when DIPN_UPDATE_SCREENSHOTS is set (a test run leaves the tree as it found it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra (FastAPI, uvicorn, SQLAlchemy) is not installed")
import httpx  # noqa: E402

from dipn import wire  # noqa: E402
from dipn.serving.client import DeviceClient  # noqa: E402
from tests.serve_process import ADMIN, LiveServer  # noqa: E402

ROOT = Path(__file__).parents[1]
BROWSER = ROOT / "mobile_demo" / "web"
CHROMIUM = Path("/usr/bin/chromium")


def _browser_missing() -> str | None:
    if not CHROMIUM.exists():
        return "no /usr/bin/chromium (Debian package chromium)"
    if shutil.which("node") is None:
        return "no node on PATH"
    if not (BROWSER / "node_modules" / "playwright-core").is_dir():
        return "playwright-core not installed: `make setup` installs it in mobile_demo/web"
    return None


def feed_campaign(server: LiveServer, users: int = 120, seed: int = 3) -> int:
    """A campaign of ``users`` simulated phones: each posts its score, gets a decision, and buys
    (or not) as the simulation's uplift model says; a buyer holding a coupon uses it."""
    from benchmarks import coupon_ab

    rng = np.random.default_rng(seed)
    people = coupon_ab.draw_users(coupon_ab.Assumptions(), users, rng)
    operator = server.operator()
    campaign = operator.create_campaign(
        name="double-11 rehearsal", budget=300.0, coupon_value=10.0,
        shares={"none": 0.2, "all": 0.3, "model": 0.3, "budgeted": 0.2}, lagrange_multiplier=0.5, salt="dash")
    cid = campaign["id"]
    http = httpx.Client(base_url=server.url, timeout=30)
    now = wire.now_ms()
    for i in range(users):
        user = f"phone-{i}"
        device = DeviceClient.register("", user, http=http)
        device.post_scores([device.score("dipn-sim-1" if i % 3 else "dipn-sim-2", float(people["score"][i]), 0.5,
                                         ts=now - 1000)])
        answer = operator.decide(cid, user)
        lift = people["lift"][i] if answer["granted"] else 0.0
        if people["u"][i] < people["p"][i] + lift:
            operator.record_order(cid, f"order-{i}", user, round(float(people["basket"][i]), 2),
                                  coupon_used=answer["granted"], ts=wire.now_ms())
    http.close()
    return cid


def test_campaign_routes_list_report_and_pause(tmp_path: Path) -> None:
    """GET /campaigns lists, the report holds intervals and reasons, a paused campaign decides
    campaign_paused; the dashboard needs the token."""
    with LiveServer(f"sqlite:///{tmp_path}/d.db") as server:
        cid = feed_campaign(server, users=40)
        operator = server.operator()
        assert [c["id"] for c in operator.list_campaigns()] == [cid]
        report = operator.report(cid)
        assert report["decisions"]["total"] == 40
        assert sum(report["decisions"]["by_reason"].values()) == 40
        assert set(report["model_versions"]) == {"dipn-sim-1", "dipn-sim-2"}
        all_row = report["buckets"]["all"]
        assert all_row["grant_rate"] == all_row["granted"] / all_row["users"]
        assert all_row["r_c_interval"][0] <= all_row["r_c"] <= all_row["r_c_interval"][1]
        assert report["budget"]["reserved"] + report["budget"]["remaining"] == pytest.approx(300.0)
        assert operator.update_campaign(cid, active=False)["status"] == "paused"
        assert operator.decide(cid, "phone-late")["reason"] == "campaign_paused"
        assert httpx.get(f"{server.url}/dashboard/campaigns/{cid}").status_code == 401
        wrong = httpx.get(f"{server.url}/dashboard/campaigns/{cid}", auth=("operator", "wrong"))
        assert wrong.status_code == 403


@pytest.mark.skipif(_browser_missing() is not None, reason=_browser_missing() or "")
def test_the_dashboard_in_chromium_shows_the_numbers_of_the_json_report(tmp_path: Path) -> None:
    with LiveServer(f"sqlite:///{tmp_path}/d.db") as server:
        cid = feed_campaign(server)
        report = server.operator().report(cid)
        shot = tmp_path / "dashboard.png"
        out = subprocess.run(["node", str(BROWSER / "e2e" / "dashboard.mjs"), server.url, ADMIN, str(cid), str(shot)],
                             capture_output=True, text=True, timeout=180, cwd=BROWSER)
        assert out.returncode == 0, out.stderr[-3000:]
        seen = json.loads(out.stdout)
    assert seen["listStatus"] == 200 and seen["offsite"] == []  # nothing but the server: renders offline
    assert seen["title"] == f"Campaign {cid}: double-11 rehearsal" and seen["status"] == report["status"]
    assert (seen["band"]["t_l"], seen["band"]["t_u"]) == (report["scores"]["band"]["t_l"], report["scores"]["band"]["t_u"])
    assert seen["decisions"] == report["decisions"]["total"]
    assert seen["reasons"] == report["decisions"]["by_reason"]
    assert seen["reserved"] == pytest.approx(report["budget"]["reserved"])
    assert len(seen["warnings"]) == len(report["scores"]["warnings"])
    assert seen["versions"] == len(report["model_versions"])
    assert all(chart["svg"] >= 1 or chart["chart"] == "model-versions" for chart in seen["charts"])
    assert set(seen["buckets"]) == set(report["buckets"])
    for bucket, row in report["buckets"].items():
        _same_figures(seen["buckets"][bucket], row, ("users", "granted", "grant_rate", "redeemers", "gmv", "r_c",
                                                     "i_gmv", "r_c_vs_all", "i_gmv_vs_all"), bucket)
    # R_c and I_gmv per model version (each scored bucket), as the JSON report gives them
    versions = report["model_versions"]
    assert set(seen["versionBuckets"]) == {v for v, data in versions.items() if data["buckets"]} == {
        "dipn-sim-1", "dipn-sim-2"}
    for version, data in versions.items():
        assert set(seen["versionBuckets"][version]) == set(data["buckets"]), version
        for bucket, row in data["buckets"].items():
            _same_figures(seen["versionBuckets"][version][bucket], row, ("users", "granted", "redeemers", "gmv",
                                                                         "r_c", "i_gmv"), (version, bucket))
    assert shot.stat().st_size > 0
    if os.environ.get("DIPN_UPDATE_SCREENSHOTS"):  # the committed picture changes only when asked
        target = ROOT / "docs" / "img" / "dashboard.png"
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, target)


def _same_figures(cells: dict, row: dict, fields: tuple[str, ...], where: object) -> None:
    """The cells a page shows (value, or low and high of an interval) hold the JSON row's figures."""
    for field in fields:
        shown = cells[field]["value"]
        assert (shown is None) == (row[field] is None), (where, field)
        if shown is not None:
            assert shown == pytest.approx(row[field]), (where, field)
    for field in ("r_c_interval", "i_gmv_interval"):
        if row[field] is None:
            assert cells[field]["value"] is None, (where, field)
        else:
            assert [cells[field]["low"], cells[field]["high"]] == pytest.approx(row[field]), (where, field)
