"""Does a band chosen with ``dipn band`` grant at the rate it asked for (issue 26, done-when 1)?

On scores of a model trained on the real Taobao tail slice: ``dipn band`` chooses, on the val
predictions, the band that should grant ``--grant-rate`` of the decisions, and prints the rate
with its user-bootstrap 95% interval. Then a real ``dipn serve`` (SQLite, two workers) runs a
campaign with that band (every user in the model bucket) on the eval day: for each eval cut, the
phone posts the score it had at that cut and the operator asks for a decision, so the campaign
decides once per cut with the score the phone held then. The campaign's grant rate (from its
report) is compared with the interval the command printed.

    # the model and its predictions (commands in docs/serving.md, "Choosing a band")
    python -m benchmarks.band_check --val runs/tail/val.csv --eval runs/tail/eval.csv --grant-rate 0.1

Writes benchmarks/results/band_check.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent

from benchmarks.endpoint_load import start_server
from benchmarks.machine import machine_info, machine_line
from dipn.serving.client import DeviceClient, OperatorClient
from dipn.serving.intervals import weighted_rate
from dipn.serving.predictions import read_predictions
from dipn.serving.server import free_port


def choose_band(val: Path, grant_rate: float) -> dict:
    """``dipn band VAL --grant-rate R --json``, as a user runs it."""
    command = [sys.executable, "-m", "dipn.cli", "band", str(val), "--grant-rate", str(grant_rate), "--json"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def run_campaign(url: str, band: dict, users: np.ndarray, cuts: np.ndarray, scores: np.ndarray,
                 threads: int) -> tuple[int, list[dict]]:
    operator = OperatorClient(url)
    campaign = operator.create_campaign(name="band-check", shares={"model": 1.0}, t_l=band["t_l"], t_u=band["t_u"])

    def one_cut(i: int) -> dict:
        http = httpx.Client(base_url=url, timeout=30)
        device = DeviceClient.register("", f"{users[i]}@{cuts[i]}", http=http)
        device.post_scores([device.score("tail-browse-history", float(scores[i]), 0.0)])
        answer = OperatorClient(url, http=http).decide(campaign["id"], f"{users[i]}@{cuts[i]}")
        http.close()
        return answer

    with ThreadPoolExecutor(max_workers=threads) as pool:
        answers = list(pool.map(one_cut, range(len(users))))
    return campaign["id"], answers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--val", type=Path, required=True, help="val predictions (dipn evaluate --predictions-out)")
    parser.add_argument("--eval", type=Path, required=True, help="eval predictions: the campaign's day")
    parser.add_argument("--grant-rate", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    chosen = choose_band(args.val, args.grant_rate)
    band, row = chosen["campaign"], chosen["chosen"]
    eval_users, eval_scores = read_predictions(args.eval)
    import polars as pl

    cuts = pl.read_csv(args.eval, schema_overrides={"user_id": pl.String})["ts"].to_numpy()
    with tempfile.TemporaryDirectory(prefix="dipn-band-check-") as tmp:
        # the load benchmark's server: dipn serve, two workers, on loopback, no rate limit
        server = start_server(f"sqlite:///{tmp}/serve.db", port := free_port(), workers=2)
        try:
            url = f"http://127.0.0.1:{port}"
            campaign_id, answers = run_campaign(url, band, eval_users, cuts, eval_scores, args.threads)
            report = OperatorClient(url).report(campaign_id)
        finally:
            server.terminate()
            server.wait(60)
    granted = np.array([a["granted"] for a in answers], dtype=np.float64)
    real_users = np.array([a["user_id"].rsplit("@", 1)[0] for a in answers])
    live = weighted_rate(granted, real_users)  # resampling the real users (each holds many cuts)
    model = report["buckets"]["model"]
    inside = row["grant_rate_low"] <= model["grant_rate"] <= row["grant_rate_high"]
    result = {
        "command": "python -m benchmarks.band_check " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine_line(machine_info()), "seconds": time.perf_counter() - started,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "asked_grant_rate": args.grant_rate, "band": band,
        "band_command": {k: row[k] for k in ("grant_rate", "grant_rate_low", "grant_rate_high",
                                             "expected_incremental_gmv_per_decision")},
        "val": {"scores": chosen["scores"], "users": chosen["users"]},
        "campaign": {"decisions": len(answers), "users": int(len(set(real_users.tolist()))),
                     "granted": int(granted.sum()), "grant_rate": model["grant_rate"],
                     "interval_over_real_users": [live["low"], live["high"]],
                     "reasons": report["decisions"]["by_reason"], "warnings": report["scores"]["warnings"]},
        "within_the_printed_interval": bool(inside),
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "band_check.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "band_check.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def markdown(r: dict) -> str:
    c, b = r["campaign"], r["band_command"]
    return "\n".join([
        "# A band chosen with `dipn band` grants at the asked rate (issue 26)", "",
        f"`{r['command']}`, {r['seconds']:.0f} s (load average {', '.join(map(str, r['load_average']))} on a "
        f"machine shared with other work), {r['machine']}.", "",
        f"`dipn band` on the val predictions ({r['val']['scores']:,} scores of {r['val']['users']} users) chose "
        f"[{r['band']['t_l']:.5f}, {r['band']['t_u']:.5f}] for a grant rate of {r['asked_grant_rate']:.0%}: "
        f"{b['grant_rate']:.1%} of the val scores, 95% interval over users [{b['grant_rate_low']:.1%}, "
        f"{b['grant_rate_high']:.1%}].", "",
        "| | decisions | users | coupons | grant rate | 95% interval (users resampled) |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
        f"| campaign on the eval day (`dipn serve`, one decision per eval cut) | {c['decisions']:,} | {c['users']} | "
        f"{c['granted']:,} | {c['grant_rate']:.1%} | [{c['interval_over_real_users'][0]:.1%}, "
        f"{c['interval_over_real_users'][1]:.1%}] |", "",
        f"Within the interval `dipn band` printed: **{'yes' if r['within_the_printed_interval'] else 'no'}**. "
        f"Decisions by reason: {', '.join(f'{k} {v}' for k, v in c['reasons'].items())}."
        + (f" Report warnings: {'; '.join(c['warnings'])}" if c["warnings"] else ""), "",
    ])


if __name__ == "__main__":
    sys.exit(main())
