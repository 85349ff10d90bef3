"""Embedding tables sized to the vocabulary a build makes, the frequency floor that sends rare values
to OOV, embedding dropout, and AUCs over several training seeds (issue 25, items 2 and 4)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from dipn.errors import DipnValidationError
from dipn.evaluation.seeded import seeded_auc, seeded_difference
from dipn.features import FeatureManifest, Kind, Vocabulary, vocab_key
from dipn.features.spec import OOV_ID, TABLE3
from dipn.models import build_model_for_data
from dipn.models.embeddings import GroupEmbedding, set_embedding_dropout
from dipn.samples.build import BuildConfig, build_samples
from dipn.samples.cuts import cut_window
from dipn.samples.store import SampleStore
from dipn.training.config import TrainConfig
from tests.raw_logs import DAY, HOUR, START


def test_a_frequency_floor_keeps_the_frequent_values_in_the_same_order() -> None:
    counts = Counter({"a": 9, "b": 5, "c": 5, "d": 2, "e": 1})
    every = Vocabulary.build(counts, capacity=10)
    floored = Vocabulary.build(counts, capacity=10, min_count=3)
    assert every.values == ("a", "b", "c", "d", "e") and floored.values == ("a", "b", "c")
    # the kept values keep their ids (a prefix), the rest read as OOV
    assert every.ids(np.array(["a", "c", "d"])).tolist() == [2, 4, 5]
    assert floored.ids(np.array(["a", "c", "d"])).tolist() == [2, 4, OOV_ID]
    with pytest.raises(DipnValidationError, match="floor must be >= 1"):
        Vocabulary.build(counts, capacity=10, min_count=0)
    with pytest.raises(DipnValidationError, match="min count"):
        BuildConfig(min_count=0)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    from dipn.logs.importers import ImportConfig, import_logs
    from tests.test_public_logs import write_userbehavior

    root = tmp_path_factory.mktemp("vocab")
    import_logs("taobao-userbehavior", [write_userbehavior(root / "UserBehavior.csv", users=12)], root / "raw",
                ImportConfig(progress=False))  # fmt: skip
    out = {}
    for floor in (1, 40):
        build_samples(root / "raw", root / f"samples{floor}", BuildConfig(cuts_per_day=3, min_count=floor), progress=False)
        out[floor] = root / f"samples{floor}"
    return out


def test_tables_are_sized_to_the_vocabulary_and_the_manifest_says_so(built: dict[int, Path]) -> None:
    store = SampleStore(built[1])
    manifest = store.manifest
    leaf = manifest.config.spec("browse", "leaf_category")
    values = len(manifest.vocabularies["browse.leaf_category"])
    assert 0 < values <= 25 and leaf.vocab_size == values and leaf.num_embeddings == values + 2
    saved = FeatureManifest.load(built[1] / "features.json")  # what a device and a port read
    assert saved.config.spec("browse", "leaf_category").num_embeddings == values + 2
    assert "vocabulary_size" in saved.to_dict()["ids"]
    model = build_model_for_data("dipn", None, manifest.config, store.groups_present)
    assert model.embeddings["browse"].table("leaf_category").num_embeddings == values + 2
    for spec in manifest.config.features:  # every vocabulary feature, Table 3's cap only as the ceiling
        if spec.kind is Kind.VOCABULARY:
            assert spec.vocab_size == len(manifest.vocabularies[vocab_key(spec)])
            assert spec.vocab_size <= next(t for t in TABLE3 if vocab_key(t) == vocab_key(spec)).vocab_size
    batch = store.batch(store.indices("train")[:64])
    assert batch["browse"][..., 1].max() < values + 2


def test_the_floor_changes_ids_only_of_rare_values_never_the_cuts(built: dict[int, Path]) -> None:
    every, floored = SampleStore(built[1]), SampleStore(built[40])
    kept = len(floored.manifest.vocabularies["browse.leaf_category"])
    assert kept < len(every.manifest.vocabularies["browse.leaf_category"])
    assert floored.manifest.vocabularies["browse.leaf_category"].values == \
        every.manifest.vocabularies["browse.leaf_category"].values[:kept]  # fmt: skip
    np.testing.assert_array_equal(every.labels, floored.labels)
    a, b = every.batch(np.arange(50))["browse"][..., 1], floored.batch(np.arange(50))["browse"][..., 1]
    np.testing.assert_array_equal(np.where(a > kept + 1, OOV_ID, a), b)


def test_embedding_dropout_reads_vocabulary_ids_as_oov_in_training_only(built: dict[int, Path]) -> None:
    config = SampleStore(built[1]).manifest.config
    embedding = GroupEmbedding.for_group(config, "browse")
    ids = torch.tensor(SampleStore(built[1]).batch(np.arange(8))["browse"], dtype=torch.int64)
    set_embedding_dropout(embedding, 0.999)
    embedding.eval()
    scored = embedding(ids)
    embedding.train()
    torch.manual_seed(0)
    trained = embedding(ids)
    oov = ids.clone()
    oov[..., 1] = torch.where(ids[..., 1] > OOV_ID, OOV_ID, ids[..., 1])  # leaf_category
    oov[..., 3] = torch.where(ids[..., 3] > OOV_ID, OOV_ID, ids[..., 3])  # page
    embedding.eval()
    assert torch.equal(scored, embedding(ids))
    assert torch.allclose(trained, embedding(oov))  # every known id dropped; type, stay, hour untouched
    with pytest.raises(DipnValidationError, match="embedding_dropout"):
        TrainConfig(embedding_dropout=1.0)


def test_a_log_shorter_than_the_label_horizon_is_refused_in_one_line() -> None:
    meta = {"start_ms": START, "cut_end_ms": START + 8 * DAY, "end_ms": START + 9 * DAY,
            "window": {"events_first_ms": START + DAY, "events_last_ms": START + DAY + 2 * HOUR + 600_000}}  # fmt: skip
    with pytest.raises(DipnValidationError, match=r"events span 2\.2 h, not more than the 24 h label horizon") as info:
        cut_window(START + DAY, START + 2 * DAY, 1.0, meta, 1.0, 24 * HOUR)
    assert "\n" not in str(info.value)
    assert cut_window(START + DAY, START + 2 * DAY, 1.0, meta, 1.0, HOUR).end_ms > START  # the 1 h task builds


def test_auc_over_seeds_is_their_mean_with_an_interval_over_users_and_seeds() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random(600) < 0.3).astype(float)
    users = rng.integers(0, 60, 600)
    runs = [labels * 0.5 + rng.random(600) for _ in range(3)]
    m = seeded_auc(labels, runs, users, rounds=100)
    aucs = [roc_auc_score(labels, r) for r in runs]
    assert m["auc"] == pytest.approx(np.mean(aucs)) and m["auc_sd"] == pytest.approx(np.std(aucs, ddof=1))
    assert m["auc_low"] < m["auc"] < m["auc_high"]
    same = seeded_difference(labels, runs, runs, users, rounds=100)
    assert same == {"delta": 0.0, "low": 0.0, "high": 0.0}
    worse = seeded_difference(labels, runs, [rng.random(600)], users, rounds=100)  # one run stands for every seed
    assert worse["low"] > 0
    one = seeded_auc(labels, runs[:1], users, rounds=100)
    assert one["auc_sd"] == 0.0 and one["auc"] == pytest.approx(aucs[0])
