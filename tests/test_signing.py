"""Signed model bundles (issue 10, item 1): dipn keygen, dipn convert --signing-key, and a device
wrapper that loads only what its trusted key signed, keeps the previous model on a refused update,
and swaps models atomically while other threads score. Real bundles, real onnxruntime."""

from __future__ import annotations

import json
import logging
import shutil
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("cryptography")

from convert.bundle import ConvertOptions, build_bundle  # noqa: E402
from convert.signing import generate_keypair, load_private_key, sign_bundle  # noqa: E402
from dipn.bundle.errors import BundleIntegrityError, BundleSignatureError  # noqa: E402
from dipn.bundle.manifest import MANIFEST, describe_files  # noqa: E402
from dipn.bundle.trust import SIGNATURE, key_id, load_public_key  # noqa: E402
from dipn.cli import main as dipn_main  # noqa: E402
from mobile_demo import IntentScorer, IntentScorerOptions, event_from_row  # noqa: E402

SCREEN = (360.0, 780.0)
T0 = 1_790_000_000_000  # in the past: events ahead of the device clock are dropped


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return generate_keypair(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return generate_keypair(tmp_path_factory.mktemp("other-keys"), "someone-else")


@pytest.fixture(scope="module")
def bundles(keys: tuple[Path, Path], tiny_checkpoint: Path, tiny_samples: Path,
            tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two signed ONNX bundles of two different models: A through the CLI, B through the API."""
    from dipn.samples.store import SampleStore
    from dipn.training.config import TrainConfig
    from dipn.training.loop import Trainer

    root = tmp_path_factory.mktemp("signed")
    assert dipn_main(["convert", str(tiny_checkpoint), "--samples", str(tiny_samples), "--out", str(root / "a"),
                      "--to", "onnx", "--parity-samples", "48", "--max-auc-drop", "0.5", "--quiet",
                      "--signing-key", str(keys[0])]) == 0  # fmt: skip
    config = TrainConfig(epochs=1, batch_size=16, max_train_samples=64, max_eval_samples=48, seed=99, threads=1, lr=3e-3)
    Trainer(SampleStore(tiny_samples), config, root / "run-b", progress=False).fit()
    build_bundle(root / "run-b" / "best.pt", tiny_samples, root / "b",
                 ConvertOptions(formats=("onnx",), parity_samples=48, max_auc_drop=0.5, signing_key=keys[0]),
                 progress=lambda _: None)  # fmt: skip
    return root / "a", root / "b"


def _scorer(bundle: Path, **options: object) -> IntentScorer:
    return IntentScorer.create_from_options(IntentScorerOptions(bundle, screen=SCREEN, **options))


def _feed(runtime: IntentScorer, count: int = 40) -> None:
    for i in range(count):
        runtime.on_event(event_from_row("swipe", {"ts": T0 + 700 * i, "type": "swipe", "page": "Page_Home",
                                                  "x0": 10 + i, "y0": 700, "x1": 12, "y1": 100 + 5 * i,
                                                  "duration_ms": 150}))  # fmt: skip
        runtime.on_event(event_from_row("browse", {"ts": T0 + 700 * i + 5, "action": "browse", "page": "Page_Detail",
                                                   "leaf_category": "c1", "stay_ms": 3000 + 100 * i}))  # fmt: skip


def _rehash_and_sign(bundle: Path, private_key: Path) -> None:
    """What a careless or malicious builder with the trusted key does after editing files."""
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["files"] = describe_files(bundle, sorted(p for p in bundle.iterdir() if p.name not in (MANIFEST, SIGNATURE)))
    (bundle / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    sign_bundle(bundle, load_private_key(private_key))


# ---- keys and signing -----------------------------------------------------------------------------


def test_keygen_writes_a_private_key_only_its_owner_can_read(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert dipn_main(["keygen", "--out", str(tmp_path / "k")]) == 0
    private, public = tmp_path / "k" / "dipn-signing.key", tmp_path / "k" / "dipn-signing.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert key_id(load_public_key(public)) in capsys.readouterr().out
    assert load_private_key(private).public_key().public_bytes_raw() == load_public_key(public).public_bytes_raw()
    before = private.read_bytes()
    assert dipn_main(["keygen", "--out", str(tmp_path / "k")]) == 2  # refuses to overwrite
    assert private.read_bytes() == before and "already exists" in capsys.readouterr().err


def test_a_bundle_signed_by_the_trusted_key_loads_and_names_its_signer(bundles: tuple[Path, Path],
                                                                       keys: tuple[Path, Path]) -> None:
    a, _ = bundles
    record = json.loads((a / SIGNATURE).read_text())
    assert record["algorithm"] == "ed25519" and record["key_id"] == key_id(load_public_key(keys[1]))
    runtime = _scorer(a, public_key=keys[1])
    assert runtime.status()["signer"] == record["key_id"] and runtime.model.self_test["cases"] > 0
    assert _scorer(a, public_key=keys[1].read_text()).model.model_version == runtime.model.model_version


def _unsigned(bundle: Path, keys: tuple[Path, Path], other: tuple[Path, Path]) -> None:
    (bundle / SIGNATURE).unlink()


def _signed_by_another_key(bundle: Path, keys: tuple[Path, Path], other: tuple[Path, Path]) -> None:
    sign_bundle(bundle, load_private_key(other[0]))


def _another_key_under_the_trusted_name(bundle: Path, keys: tuple[Path, Path], other: tuple[Path, Path]) -> None:
    record = sign_bundle(bundle, load_private_key(other[0]))
    (bundle / SIGNATURE).write_text(json.dumps(record | {"key_id": key_id(load_public_key(keys[1]))}))


def _manifest_edited(bundle: Path, keys: tuple[Path, Path], other: tuple[Path, Path]) -> None:
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["parity"]["max_auc_drop"] = 0.9
    (bundle / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")


def _artifact_flipped(bundle: Path, keys: tuple[Path, Path], other: tuple[Path, Path]) -> None:
    with open(bundle / "model.int8.onnx", "r+b") as handle:
        handle.seek(200)
        byte = handle.read(1)
        handle.seek(200)
        handle.write(bytes([byte[0] ^ 0xFF]))


def _file_added(bundle: Path, keys: tuple[Path, Path], other: tuple[Path, Path]) -> None:
    (bundle / "extra_weights.bin").write_bytes(b"\x00" * 64)


def _golden_scores_changed_then_signed(bundle: Path, keys: tuple[Path, Path], other: tuple[Path, Path]) -> None:
    golden = json.loads((bundle / "golden.json").read_text())
    for case in golden["cases"]:
        case["scores"]["model.int8.onnx"] = [0.999, 0.001]
    (bundle / "golden.json").write_text(json.dumps(golden))
    _rehash_and_sign(bundle, keys[0])


REFUSALS: list[tuple[str, Callable, type[Exception], str]] = [
    ("unsigned", _unsigned, BundleSignatureError, "not signed"),
    ("signed by another key", _signed_by_another_key, BundleSignatureError, "signed by key"),
    ("another key under the trusted key's id", _another_key_under_the_trusted_name, BundleSignatureError, "does not match"),
    ("manifest edited after signing", _manifest_edited, BundleSignatureError, "does not match"),
    ("artifact modified", _artifact_flipped, BundleIntegrityError, "sha256 mismatch"),
    ("file added", _file_added, BundleSignatureError, "not listed"),
    ("signed by the trusted key but failing its golden vectors", _golden_scores_changed_then_signed,
     BundleIntegrityError, "golden case"),
]


@pytest.mark.parametrize(("name", "tamper", "error", "message"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_a_refused_bundle_is_not_loaded_and_an_update_to_it_keeps_the_previous_model(
    name: str, tamper: Callable, error: type[Exception], message: str, bundles: tuple[Path, Path],
    keys: tuple[Path, Path], other_keys: tuple[Path, Path], tmp_path: Path,
) -> None:
    a, b = bundles
    bad = tmp_path / "bad"
    shutil.copytree(b, bad)
    tamper(bad, keys, other_keys)
    with pytest.raises(error, match=message):
        _scorer(bad, public_key=keys[1])
    runtime = _scorer(a, public_key=keys[1])
    _feed(runtime)
    before = runtime.score(T0 + 60_000)
    with pytest.raises(error, match=message):
        runtime.update(bad)
    after = runtime.score(T0 + 60_000)
    assert (after.model_version, after.p_realtime, after.p_longterm) == (
        before.model_version, before.p_realtime, before.p_longterm)
    assert runtime.status()["updates"]["refused"] == 1 and runtime.status()["updates"]["applied"] == 0


def test_without_a_public_key_only_an_explicit_development_flag_loads_and_it_warns(
    bundles: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    a, _ = bundles
    with pytest.raises(BundleSignatureError, match="no public key is configured"):
        _scorer(a)
    with caplog.at_level(logging.WARNING, logger="dipn.bundle.trust"):
        runtime = _scorer(a, allow_unsigned=True)
    assert runtime.status()["signer"] is None
    assert "WITHOUT checking a signature" in caplog.text


# ---- hot swap -------------------------------------------------------------------------------------


def test_an_update_keeps_the_events_seen_so_far(bundles: tuple[Path, Path], keys: tuple[Path, Path]) -> None:
    a, b = bundles
    runtime = _scorer(a, public_key=keys[1])
    runtime.set_user({"collect_7d": 3, "cart_365d": 40}, {"age_level": 2, "vip_level": 5})
    _feed(runtime, 300)  # more than the 256-step window
    before = {name: array.copy() for name, array in runtime.inputs().items()}
    runtime.update(b)
    runtime.update(a)  # re-encoded twice from the kept events: the very same ids
    after = runtime.inputs()
    assert sorted(after) == sorted(before)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    assert runtime.status()["updates"]["applied"] == 2


def test_hot_swap_is_atomic_while_other_threads_score(bundles: tuple[Path, Path], keys: tuple[Path, Path]) -> None:
    """Each score must be exactly what one of the two models gives: a score computed with a mix
    (one model's version and another's runner or buffers) would match neither."""
    a, b = bundles
    runtime = _scorer(a, public_key=keys[1])
    _feed(runtime)
    expected = {}
    for bundle in (b, a):
        score = runtime.score(T0 + 60_000)
        expected[score.model_version] = (score.p_realtime, score.p_longterm)
        runtime.update(bundle)  # ends on a
    assert len(expected) == 2 and len(set(expected.values())) == 2, "the two models must score differently"

    seen: list[tuple[str, float, float]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def score_until_stopped() -> None:
        try:
            while not stop.is_set():
                score = runtime.score(T0 + 60_000)
                seen.append((score.model_version, score.p_realtime, score.p_longterm))
        except BaseException as exc:  # noqa: BLE001 (reported by the main thread)
            errors.append(exc)

    threads = [threading.Thread(target=score_until_stopped) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for i in range(8):
            runtime.update(b if i % 2 == 0 else a)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert not errors, errors
    assert {version for version, _, _ in seen} == set(expected), "scores from both models were expected"
    for version, p_realtime, p_longterm in seen:
        assert (p_realtime, p_longterm) == expected[version], version
