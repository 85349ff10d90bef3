"""``dipn demo``'s coupon band (issue 26): chosen with the band logic on the model's own val
predictions for a target grant rate, instead of the paper's 0.2-0.4, which on scores near the base
rate grants nobody; and the check of the rate the campaign got against the one expected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra (FastAPI, uvicorn, SQLAlchemy) is not installed")

from dipn import wire  # noqa: E402
from dipn.cli import main  # noqa: E402
from dipn.commands.demo import choose_band, grant_rate_check  # noqa: E402
from dipn.serving.client import DeviceClient  # noqa: E402
from dipn.serving.predictions import read_predictions  # noqa: E402
from tests.serve_process import LiveServer  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_demo_band_holds_the_asked_share_of_its_val_predictions(
    tiny_checkpoint: Path, tiny_samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").symlink_to(tiny_checkpoint)
    band = choose_band(run, tiny_samples, 0.25, cuts=200, seed=0)
    printed = capsys.readouterr().out
    users, scores = read_predictions(run / "val-predictions.csv")  # what dipn evaluate --predictions-out writes
    assert len(scores) <= 200 and len(set(users.tolist())) > 1
    inside = (scores >= band["t_l"]) & (scores <= band["t_u"])
    assert inside.mean() == pytest.approx(band["grant_rate"]) and abs(band["grant_rate"] - 0.25) < 0.03
    assert band["grant_rate_low"] <= band["grant_rate"] <= band["grant_rate_high"]
    assert "the paper's band [0.2, 0.4] would grant" in printed and f"[{band['t_l']:.4f}, {band['t_u']:.4f}]" in printed
    # the command it prints chooses the same band from the file it wrote
    assert main(["band", str(run / "val-predictions.csv"), "--grant-rate", "0.25", "--json"]) == 0
    assert f'"t_l": {band["t_l"]}' in capsys.readouterr().out


def test_the_demo_compares_the_grant_rate_it_got_with_the_expected_interval(tmp_path: Path) -> None:
    """A campaign on a real endpoint with the chosen band: 40 users, 10 of them scored inside."""
    band = {"t_l": 0.05, "t_u": 1.0, "grant_rate": 0.2, "grant_rate_low": 0.15, "grant_rate_high": 0.3}
    with LiveServer(f"sqlite:///{tmp_path}/demo.db") as server:
        operator = server.operator()
        cid = operator.create_campaign(name="demo", shares={"model": 1.0}, t_l=band["t_l"], t_u=band["t_u"])["id"]
        scores = np.r_[np.full(10, 0.08), np.full(30, 0.02)]
        answers = []
        for i, p in enumerate(scores):
            device = DeviceClient.register(server.url, f"u{i}")
            device.post_scores([device.score("demo-1", float(p), 0.1, ts=wire.now_ms() - 1000)])
            answers.append(operator.decide(cid, f"u{i}"))
        answers.append(operator.decide(cid, "never-scored"))  # no_recent_score: not a decision on a score
        line = grant_rate_check(answers, band, 0.2)
    assert ("expected 20.0% [15.0%, 30.0%] on the val scores; got 25.0% (10 of 40 decisions on a score; 1 of its "
            "41 users had no recent score)") in line
    low, high = (float(x.rstrip("%")) / 100 for x in line.split("95% interval [")[1].split("]")[0].split(", "))
    assert low < 0.2 < high and line.endswith("the expected rate lies inside it")
