"""The replay drives phones through the device scorer against the real endpoint on loopback: on a
simulated raw directory and on one with views missing, with a JSON summary over all phones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("onnxruntime")

from tests.serve_process import LiveServer  # noqa: E402


def test_phones_post_only_the_scores_the_policy_marks_and_the_summary_covers_every_phone(
    tiny_bundle: Path, tiny_raw: Path, tmp_path: Path
) -> None:
    from mobile_demo.replay import replay

    with LiveServer(f"sqlite:///{tmp_path}/endpoint.db", rate_limit=0) as server:
        summary = replay(tiny_bundle, tiny_raw, server.url, 3, max_events=300, allow_unsigned=True, format="onnx",
                         shift_to_now=True, queue_dir=tmp_path)  # fmt: skip
    assert summary["phones"] == 3 == len(summary["users"]) and summary["events"] > 0
    assert summary["scores"] == sum(summary["scores_by_trigger"].values()) >= summary["events_encoded"]
    assert 0 < summary["scores_posted"] == summary["acknowledged"] < summary["scores"]
    assert summary["uplink"]["not_posted"] == summary["scores"] - summary["scores_posted"]
    assert summary["bytes_sent"] > 0 and summary["scoring_policy"]["source"] == "bundle"


def test_a_raw_directory_without_some_views_replays_them_as_empty_streams_and_prints_json(
    tiny_bundle: Path, tiny_raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mobile_demo.replay import main

    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("browse.parquet", "swipe.parquet", "meta.json"):  # no tap view, no history, no profile
        shutil.copy(tiny_raw / name, raw / name)
    scores = tmp_path / "scores.csv"
    assert main(["--bundle", str(tiny_bundle), "--raw", str(raw), "--allow-unsigned", "--phones", "2",
                 "--max-events", "200", "--format", "onnx", "--scores-out", str(scores)]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["phones"] == 2 and summary["events_encoded"] == summary["events"] > 0 and summary["dropped"] == {}
    assert len(scores.read_text().splitlines()) == summary["scores"] + 1
    assert main(["--bundle", str(tmp_path / "nothing"), "--raw", str(raw), "--allow-unsigned"]) == 2
    assert "replay: error:" in capsys.readouterr().err
