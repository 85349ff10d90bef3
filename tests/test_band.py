"""``dipn band`` and ``dipn.serving.band`` (issue 26, item 1): bands fitted to a sample of scores."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dipn.cli import main
from dipn.serving.band import Band, BandError, quantile_band, rate_windows, resolve
from dipn.serving.config import UpliftCurve
from dipn.serving.intervals import weighted_rate

ROOT = Path(__file__).parents[1]


def predictions_csv(path: Path, users: int = 60, per_user: int = 30, seed: int = 0) -> Path:
    """Scores like a model trained on a sparse log: most between 0.02 and 0.05, each user its own level."""
    rng = np.random.default_rng(seed)
    lines = ["user_id,ts,p_realtime,p_longterm"]
    for u in range(users):
        level = rng.uniform(0.015, 0.05)
        for k in range(per_user):
            p = float(np.clip(level + rng.normal(0, 0.008), 0.001, 0.2))
            lines.append(f"{1000 + u},{1_512_000_000_000 + k * 60_000},{p:.6f},{min(1.0, 4 * p):.6f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_quantile_and_rate_bands_hold_their_share_of_the_reference() -> None:
    scores = np.random.default_rng(1).uniform(0.01, 0.06, 4000)
    band = quantile_band(scores, 0.8, 0.9)
    assert band.contains(scores).mean() == pytest.approx(0.1, abs=0.002)
    assert quantile_band(scores, 0.0, 0.1).t_l == 0.0 and quantile_band(scores, 0.9, 1.0).t_u == 1.0
    windows = rate_windows(scores, 0.2)
    assert [a for a, _ in windows][:3] == [0.0, 0.05, 0.1] and windows[-1][0] == pytest.approx(0.8)
    assert all(abs(b.contains(scores).mean() - 0.2) < 0.003 for _, b in windows)
    # With the uplift peaking at 0.3, the window nearest it (the top one) has the largest expected gain.
    chosen = resolve({"kind": "grant_rate", "grant_rate": 0.2}, scores, UpliftCurve(), 100.0)
    assert chosen == windows[-1][1]
    # With the uplift peaking inside the scores, a middle window wins.
    middle = resolve({"kind": "grant_rate", "grant_rate": 0.2}, scores, UpliftCurve(mode=0.035), 100.0)
    assert 0.025 < middle.t_l < 0.035 < middle.t_u < 0.045
    assert resolve({"kind": "probability", "t_l": 0.2, "t_u": 0.4}, None, UpliftCurve(), 100.0) == Band(0.2, 0.4)
    with pytest.raises(BandError, match="at least 20"):
        quantile_band(scores[:5], 0.1, 0.2)
    with pytest.raises(BandError, match="needs reference"):
        resolve({"kind": "quantiles", "q_l": 0.1, "q_u": 0.2}, None, UpliftCurve(), 100.0)


def test_the_grant_rate_interval_resamples_users_not_rows() -> None:
    """Users whose rows are all inside or all outside: the rate's uncertainty is that of 20 users,
    far wider than 2,000 independent rows would give."""
    users = np.repeat(np.arange(20), 100)
    inside = np.repeat(np.arange(20) < 5, 100)
    rate = weighted_rate(inside, users)
    assert rate["rate"] == 0.25 and rate["low"] <= 0.1 and rate["high"] >= 0.4
    by_row = weighted_rate(inside, np.arange(len(users)))
    assert by_row["high"] - by_row["low"] < 0.06


def test_dipn_band_prints_candidates_with_intervals_and_the_chosen_band(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    csv = predictions_csv(tmp_path / "val.csv")
    assert main(["band", str(csv), "--grant-rate", "0.1", "--bootstrap", "100", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    paper = summary["candidates"][0]
    assert paper["label"] == "paper" and paper["grant_rate"] == 0.0  # 0.2-0.4 grants nobody here
    chosen = summary["chosen"]
    assert chosen["chosen"] and abs(chosen["grant_rate"] - 0.1) < 0.005
    assert chosen["grant_rate_low"] < chosen["grant_rate"] < chosen["grant_rate_high"]
    assert summary["campaign"] == {"t_l": chosen["t_l"], "t_u": chosen["t_u"]}
    best = max(summary["candidates"][1:], key=lambda r: r["expected_incremental_gmv_per_decision"])
    assert best["t_l"] == chosen["t_l"]
    assert main(["band", str(csv), "--quantiles", "0.5", "0.9", "--band", "0.03", "0.05", "--bootstrap", "50"]) == 0
    table = capsys.readouterr().out
    assert "quantiles 0.5-0.9" in table and "band 0.03-0.05" in table and "campaign (POST /campaigns)" in table


def test_dipn_band_reads_what_dipn_evaluate_writes_whatever_the_files_name(
    tiny_checkpoint: Path, tiny_samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """dipn evaluate --predictions-out writes one format, CSV, under any name: dipn band reads each."""
    for name in ("val.csv", "val.parquet", "val"):
        assert main(["evaluate", str(tiny_checkpoint), str(tiny_samples), "--split", "val", "--out",
                     str(tmp_path / f"eval-{name}"), "--predictions-out", str(tmp_path / name)]) == 0
        capsys.readouterr()
        assert main(["band", str(tmp_path / name), "--grant-rate", "0.2", "--bootstrap", "50", "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["scores"] > 20 and summary["campaign"] is not None, name
    # the report directory instead of the predictions file
    assert main(["band", str(tmp_path / "eval-val.csv"), "--grant-rate", "0.2"]) == 2
    assert "evaluation report of dipn evaluate --out" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["missing.csv"], "cannot read it"),
    (["{parquet}"], "is a Parquet file, not the predictions CSV"),
    (["{zip}"], "is a zip archive"),
    (["{json}"], "is JSON, not the predictions CSV"),
    (["{empty}"], "is empty"),
    (["{other}"], "is not the header of the predictions CSV"),
    (["{gz}", "--grant-rate", "0.1"], "DONE"),
    (["{csv}", "--column", "p_nothing"], "no column p_nothing"),
    (["{bad}"], "not probabilities"),
    (["{csv}", "--grant-rate", "1.5"], "grant_rate must lie in"),
    (["{csv}", "--quantiles", "0.9", "0.5"], "q_l < q_u"),
    (["{csv}", "--band", "0.5", "0.2"], "T_L <= T_U"),
    (["{csv}", "--start-quantile", "0.2"], "needs --grant-rate"),
    (["{csv}", "--grant-rate", "0.3", "--start-quantile", "0.9"], "start_quantile must lie"),
    (["{csv}", "--bootstrap", "3"], "--bootstrap"),
])
def test_dipn_band_refuses_bad_input_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    csv = predictions_csv(tmp_path / "val.csv", users=5, per_user=10)
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,ts,p_realtime,p_longterm\n" + "u,1,0.5,0.5\n" * 30 + "u,2,1.5,0.5\n")
    files = {"csv": csv, "bad": bad, "parquet": tmp_path / "val.parquet", "zip": tmp_path / "best.pt",
             "json": tmp_path / "metrics.json", "empty": tmp_path / "empty.csv", "other": tmp_path / "other.csv",
             "gz": tmp_path / "val.csv.gz"}  # fmt: skip
    import gzip

    import polars as pl

    pl.read_csv(csv).write_parquet(files["parquet"])
    with zipfile.ZipFile(files["zip"], "w") as archive:
        archive.writestr("model/data.pkl", b"not scores")
    files["json"].write_text('{"tasks": {}}\n')
    files["empty"].write_text("")
    files["other"].write_text("a,b\n1,2\n" * 30)
    files["gz"].write_bytes(gzip.compress(csv.read_bytes()))
    argv = [a.format(**files) for a in args]
    out = subprocess.run([sys.executable, "-m", "dipn.cli", "band", *argv], capture_output=True, text=True,
                         cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    if message == "DONE":  # gzip-compressed predictions are read
        assert out.returncode == 0 and "campaign (POST /campaigns)" in out.stdout, out.stderr
        return
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("dipn: error: ") and message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
