"""``dipn inspect`` reads what the README says it reads: a raw log directory as well as samples, and
prints a cut in the time zone its hour-of-day ids were made in."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dipn.cli import main
from dipn.commands.render import when
from dipn.samples.build import BuildConfig, build_samples


def test_a_raw_log_directory_is_summarized_view_by_view(tiny_raw: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["inspect", str(tiny_raw)]) == 0
    out = capsys.readouterr().out
    rows = json.loads((tiny_raw / "meta.json").read_text())["rows"]
    for view, count in rows.items():
        line = next(line for line in out.splitlines() if line.startswith(view))
        assert f"{count:,} rows" in line


def test_the_cut_is_printed_in_the_offset_its_hours_were_made_in(
    tiny_raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    samples = tmp_path / "samples"
    build_samples(tiny_raw, samples, BuildConfig(cuts_per_day=4, seed=1, val_days=0.5, utc_offset_minutes=480),
                  progress=False)  # fmt: skip
    assert json.loads((samples / "dataset.json").read_text())["build"]["utc_offset_minutes"] == 480
    assert main(["inspect", str(samples)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("sample 0") and "UTC+8" in first


def test_the_applied_offset_is_recorded_when_the_option_was_left_unset(tiny_samples: Path) -> None:
    """None in the build config means "meta.json's, else UTC": dataset.json names the one applied."""
    build = json.loads((tiny_samples / "dataset.json").read_text())["build"]
    assert isinstance(build["utc_offset_minutes"], int)


@pytest.mark.parametrize("array", ["cut_ts", "browse_ts"])
def test_a_time_outside_the_calendar_is_printed_as_it_is(tiny_samples: Path, tmp_path: Path, array: str,
                                                         capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    """A damaged store's timestamp (year 0, found by the damaged-store property test) is shown in
    milliseconds or refused in one line, never a traceback."""
    assert when(-10**17) == f"{-10**17} ms since 1970 (outside the calendar)" and when(0) == "1970-01-01 00:00:00.000Z"
    root = tmp_path / "samples"
    shutil.copytree(tiny_samples, root)
    values = np.load(root / "shard-00000" / f"{array}.npy")
    values[:] = -(10**17)
    np.save(root / "shard-00000" / f"{array}.npy", values)
    status = main(["inspect", str(root), "--split", "eval", "--events", "2"])
    out, err = capsys.readouterr()
    assert status in (0, 2) and "Traceback" not in err
    if status == 2:
        assert err.strip().splitlines()[-1].startswith("dipn: error: ")
    elif array == "cut_ts":  # the cut's time heads what inspect prints
        assert "outside the calendar" in out.splitlines()[0]
