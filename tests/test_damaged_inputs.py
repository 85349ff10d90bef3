"""Damaged sample stores and checkpoints, at random (issue 27, item 2): a bit flipped anywhere, a
file cut short, an array rewritten with another dtype, a value out of its range, a field of
dataset.json of another type. Each is either refused on open with one ``dipn: error:`` line, or
(where the damage changed nothing the store or model reads, or only a value that is still in its
range) read without a traceback. ``make test`` runs a bounded number of examples; the slow
versions (``make test-all``) run many more.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dipn.cli import main as dipn_main
from dipn.samples.store import SampleStore
from dipn.errors import DipnValidationError
from dipn.training import checkpoint

QUICK = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.function_scoped_fixture])
LONG = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.function_scoped_fixture])
DTYPES = ("int8", "uint8", "int16", "int32", "int64", "float32", "float64", "bool")


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@st.composite
def damage(draw: st.DrawFn, files: list[str]) -> tuple[str, str, tuple]:
    """(file, how, parameters) of one damage; parameters are fractions and numbers the damage
    scales to the file it meets."""
    name = draw(st.sampled_from(files))
    kinds = ["bitflip", "truncate"]
    if name.endswith(".npy"):
        kinds += ["dtype", "value", "value"]
    if name.endswith(".json"):
        kinds += ["json-type"]
    how = draw(st.sampled_from(kinds))
    where = draw(st.floats(0, 1, exclude_max=True))
    params = {"bitflip": lambda: (where, draw(st.integers(0, 7))),
              "truncate": lambda: (where,),
              "dtype": lambda: (draw(st.sampled_from(DTYPES)),),
              "value": lambda: (where, draw(st.integers(-(2**63), 2**63 - 1))),
              "json-type": lambda: (where, draw(st.sampled_from(["many", -1, 1.5, None, [], {}, True, 10**30])))}
    return name, how, params[how]()  # fmt: skip


def apply(path: Path, how: str, params: tuple) -> None:
    if how == "bitflip":
        data = bytearray(path.read_bytes())
        if data:
            data[int(params[0] * len(data))] ^= 1 << params[1]
            path.write_bytes(bytes(data))
    elif how == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: int(params[0] * len(data))])
    elif how == "dtype":
        values = np.load(path)
        if values.dtype.kind in "iub":
            np.save(path, values.astype(params[0]))
    elif how == "value":
        values = np.load(path)
        if values.size and values.dtype.kind in "iu":
            info = np.iinfo(values.dtype)
            values.reshape(-1)[int(params[0] * values.size)] = min(max(params[1], info.min), info.max)
            np.save(path, values)
    elif how == "json-type":
        data = json.loads(path.read_text())
        paths = list(_json_paths(data))
        if paths:
            *parents, last = paths[int(params[0] * len(paths))]
            node = data
            for key in parents:
                node = node[key]
            node[last] = params[1]
            path.write_text(json.dumps(data))


def _json_paths(node: object, prefix: tuple = ()) -> list[tuple]:
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        out.append((*prefix, key))
        if len(out) < 400:
            out += _json_paths(value, (*prefix, key))
    return out


def _one_line_or_success(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    try:
        status = dipn_main(argv)
    except SystemExit as exc:
        status = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert status in (0, 2), err
    if status == 2:
        assert err.strip().splitlines()[-1].startswith("dipn: error: "), err


def _store_survives(root: Path) -> None:
    """What train and evaluate read: every sample's batch, the split counts, the input groups."""
    try:
        store = SampleStore(root)
    except DipnValidationError:
        return
    store.batch(np.arange(len(store)), merged=True)
    store.split_counts()
    _ = store.groups_present


def _check_store(tiny_samples: Path, change: tuple[str, str, tuple], capsys: pytest.CaptureFixture) -> None:
    name, how, params = change
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "samples"
        shutil.copytree(tiny_samples, root)
        apply(root / name, how, params)
        _store_survives(root)
        _one_line_or_success(["inspect", str(root), "--split", "eval", "--events", "2"], capsys)


def _check_checkpoint(tiny_checkpoint: Path, change: tuple[str, str, tuple]) -> None:
    _, how, params = change
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "best.pt"
        shutil.copyfile(tiny_checkpoint, path)
        apply(path, how, params)
        try:
            model, _, _ = checkpoint.load_model(path)
        except DipnValidationError:
            return
    original, _, _ = checkpoint.load_model(tiny_checkpoint)
    for (key, value), theirs in zip(model.state_dict().items(), original.state_dict().values(), strict=True):
        assert torch.equal(value, theirs), f"{how} {params} changed {key} and the checkpoint still loaded"


def _checkpoint_damage() -> st.SearchStrategy:
    return st.tuples(st.just("best.pt"), st.sampled_from(["bitflip", "truncate"]),
                     st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 7)))  # fmt: skip


@pytest.fixture(scope="module")
def store_files(tiny_samples: Path) -> list[str]:
    return _files(tiny_samples)


def _given_store(config: settings) -> Callable:
    def test(tiny_samples: Path, store_files: list[str], capsys: pytest.CaptureFixture) -> None:
        @config
        @given(change=damage(store_files))
        def run(change: tuple[str, str, tuple]) -> None:
            _check_store(tiny_samples, change, capsys)

        run()

    return test


test_a_damaged_sample_store_is_refused_in_one_line_or_read_whole = _given_store(QUICK)
test_a_damaged_sample_store_long = pytest.mark.slow(_given_store(LONG))


def test_a_user_id_outside_unicode_is_refused_in_one_line(tiny_samples: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    """A flipped high bit of a users.npy code unit: numpy reads it, and printing the id wrote bytes
    no UTF-8 reader decodes (found by the damage test above, which then broke pytest's capture)."""
    root = tmp_path / "samples"
    shutil.copytree(tiny_samples, root)
    data = bytearray((root / "users.npy").read_bytes())
    data[-1] ^= 0x80  # the last code unit's top byte: far above U+10FFFF
    (root / "users.npy").write_bytes(bytes(data))
    with pytest.raises(DipnValidationError, match="not text"):
        SampleStore(root)
    _one_line_or_success(["inspect", str(root), "--split", "eval", "--events", "2"], capsys)


def _given_checkpoint(config: settings) -> Callable:
    def test(tiny_checkpoint: Path) -> None:
        @config
        @given(change=_checkpoint_damage())
        def run(change: tuple[str, str, tuple]) -> None:
            _check_checkpoint(tiny_checkpoint, change)

        run()

    return test


test_a_damaged_checkpoint_is_refused_or_loads_unchanged = _given_checkpoint(QUICK)
test_a_damaged_checkpoint_long = pytest.mark.slow(_given_checkpoint(LONG))


@pytest.mark.parametrize("where", [0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
def test_a_bit_flipped_in_the_weights_is_refused_by_the_digest(tiny_checkpoint: Path, tmp_path: Path, where: float) -> None:
    """Deterministic examples: the tensor data is most of the file, and torch reads it unchecked."""
    path = tmp_path / "best.pt"
    shutil.copyfile(tiny_checkpoint, path)
    apply(path, "bitflip", (where, 3))
    with pytest.raises(DipnValidationError, match="damaged|not a readable checkpoint"):
        checkpoint.load_model(path)
