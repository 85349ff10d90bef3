"""A seeded generative model of mobile shoppers producing dipn's five raw views.

    from dipn.logs.simulation import SimulationConfig, simulate
    meta = simulate(SimulationConfig(users=2000, days=3, seed=7), Path("sim"))

Writes swipe/tap/browse/history/profile ``.parquet`` files (columns as ``dipn.features.contract``) and
``meta.json`` (the window, row counts and the simulator's own ground-truth rates). The model and
its hypotheses are described in docs/simulator.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
from tqdm.auto import tqdm

from dipn.logs.simulation.config import CHUNK_USERS, GENERATOR_VERSION, SimulationConfig
from dipn.logs.simulation.sessions import simulate_chunk
from dipn.logs.simulation.truth import GroundTruth
from dipn.logs.simulation.writer import (
    TRUTH_FILE,
    ViewWriters,
    chunk_columns,
    truth_columns,
    write_table,
)
from dipn.features.contract import RAW_VIEWS
from dipn.outputs import RAW_LOGS, replacing

__all__ = ["GENERATOR_VERSION", "SimulationConfig", "simulate", "user_ids"]


def user_ids(first: int, n: int, total: int) -> list[str]:
    """"u000017"-style ids, zero-padded so that string order is numeric order."""
    width = max(6, len(str(max(total - 1, 0))))
    return [f"u{i:0{width}d}" for i in range(first, first + n)]


def simulate(config: SimulationConfig, out_dir: Path, progress: bool = True) -> dict:
    """Simulate ``config.users`` shoppers into ``out_dir``; returns the summary in meta.json.

    Users are generated and written in chunks of ``CHUNK_USERS`` (one Parquet row group each), so
    memory does not grow with the number of users. The logs are written beside ``out_dir`` and
    replace its earlier logs whole at the end (``dipn.outputs.replacing``): a kill or a full disk
    leaves the previous logs, never a mix or a truncated file.
    """
    with replacing(Path(out_dir), RAW_LOGS) as staging:
        return _simulate(config, staging, progress)


def _simulate(config: SimulationConfig, out_dir: Path, progress: bool) -> dict:
    (out_dir / TRUTH_FILE).unlink(missing_ok=True)  # never leave a stale answer key behind
    truth = GroundTruth(config)
    truth_parts: list[dict[str, pa.Array]] = []
    bar = tqdm(total=config.users, unit="user", desc="simulate", disable=not progress)
    with ViewWriters(out_dir, RAW_VIEWS) as writers, bar:
        for chunk, first in enumerate(range(0, config.users, CHUNK_USERS)):
            n = min(CHUNK_USERS, config.users - first)
            c = simulate_chunk(config, chunk, first, n)
            ids = user_ids(first, n, config.users)
            for view, columns in chunk_columns(config, c, ids).items():
                writers.write(view, columns)
            truth.add(c)
            if config.write_truth:
                truth_parts.append(truth_columns(c, ids))
            bar.update(n)
        rows = dict(writers.rows)
    if config.write_truth:
        merged = {k: pa.concat_arrays([p[k] for p in truth_parts]) for k in truth_parts[0]}
        write_table(out_dir / TRUTH_FILE, merged)
    meta = {
        "generator": GENERATOR_VERSION,
        "start_ms": config.start_ms,
        "days": config.days,
        "cut_end_ms": config.cut_end_ms,
        "end_ms": config.end_ms,
        "horizon_hours": config.horizon_hours,
        "users": config.users,
        "seed": config.seed,
        "density": config.density,
        "config": config.as_dict(),
        "rows": rows,
        "ground_truth": truth.summary(),
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
