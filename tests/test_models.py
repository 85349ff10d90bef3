"""The model layer: DIPN and its variants, RNN+DNN, GBDT (dipn.models)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from dipn.errors import DipnValidationError
from dipn.features.manifest import MASK_FEATURE
from dipn.features.spec import TABLE3, FeatureConfig, Group
from dipn.models import (
    MODELS,
    VARIANTS,
    DIPNConfig,
    GroupEmbedding,
    RNNDNNConfig,
    build_model,
    multitask_loss,
    parameter_counts,
    size_estimate_mb,
)
from dipn.models.dipn import MERGED, PAPER_ROWS, TASKS

try:  # tests/ is not a package; pytest puts it on sys.path (or, as a package, its parent)
    from synthetic_batches import labels, make_batch, model_inputs, plant_signal
except ImportError:  # pragma: no cover
    from tests.synthetic_batches import labels, make_batch, model_inputs, plant_signal


pytestmark = pytest.mark.usefixtures("one_torch_thread")


SHORT = FeatureConfig(sequence_length=16)  # for training loops: the model is length-agnostic
VIEWS = ("swipe", "tap", "browse")
TORCH_MODELS = [("dipn", name) for name in VARIANTS] + [("rnn_dnn", "rnn_dnn"), ("rnn_dnn", "rnn_dnn_gru")]


@pytest.fixture(scope="module")
def batch256() -> dict[str, np.ndarray]:
    return make_batch(batch_size=4, seq_len=256, seed=1)


def _build(model: str, variant: str, feature_config: FeatureConfig | None = None, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(model, variant, feature_config).eval()


def _mask_columns(name: str, fc: FeatureConfig) -> list[int]:
    """Columns of a sequence input that mark real steps."""
    if name != MERGED:
        return [[s.name for s in fc.group(name)].index(MASK_FEATURE[Group(name)])]
    offsets = np.cumsum([0] + [fc.width(v) for v in VIEWS])
    return [int(offsets[k]) + _mask_columns(v, fc)[0] for k, v in enumerate(VIEWS)]


def _upper_bounds(name: str, fc: FeatureConfig) -> list[int]:
    groups = VIEWS if name == MERGED else (name,)
    return [s.num_embeddings for g in groups for s in fc.group(g)]


# ---- embeddings ---------------------------------------------------------------------------------
def test_embedding_tables_follow_table3():
    fc = FeatureConfig()
    for group in Group:
        embedding = GroupEmbedding.for_group(fc, group)
        specs = [s for s in fc.features if s.group is group]
        assert [(t.num_embeddings, t.embedding_dim) for t in embedding.tables] == [
            (s.num_embeddings, s.embed_dim) for s in specs
        ]
        assert embedding.output_dim == sum(s.embed_dim for s in specs)
        zeros = torch.zeros(2, len(specs), dtype=torch.int64)
        assert torch.count_nonzero(embedding(zeros)) == 0  # id 0 embeds to zeros
    assert GroupEmbedding.for_group(fc, Group.BROWSE).table("leaf_category").num_embeddings == 19013


# ---- DIPN: shapes, padding, NaN ------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_forward_returns_two_logits_per_sample(batch256, dtype):
    model = _build("dipn", "dipn")
    realtime, longterm = model(**model_inputs(batch256, model.input_names, dtype))
    assert realtime.shape == longterm.shape == (4,)
    assert torch.isfinite(realtime).all() and torch.isfinite(longterm).all()


def test_input_names_per_variant():
    assert VARIANTS["dipn"].input_names == ("swipe", "tap", "browse", "history", "profile", "context")
    assert VARIANTS["early_fusion"].input_names == (MERGED, "history", "profile", "context")
    assert VARIANTS["no_tap"].input_names == ("swipe", "browse", "history", "profile", "context")
    assert VARIANTS["only_history"].input_names == ("history", "context")
    assert VARIANTS["only_swipe"].input_names == ("swipe", "context")
    assert VARIANTS["no_tap"].pairs == (("swipe", "browse"),)
    assert set(PAPER_ROWS) == set(VARIANTS)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_absent_groups_build_no_parameters(variant):
    model = _build("dipn", variant)
    used = {v for n in model.input_names for v in (VIEWS if n == MERGED else (n,))}
    groups = {n.split(".")[1] for n, _ in model.named_parameters() if n.startswith("embeddings.")}
    assert groups == used
    sequences = {n.split(".")[1] for n, _ in model.named_parameters() if n.startswith("grus.")}
    assert sequences == {n for n in model.input_names if n in (*VIEWS, MERGED)}


def test_missing_input_is_named(batch256):
    model = _build("dipn", "dipn")
    inputs = model_inputs(batch256, model.input_names)
    del inputs["tap"]
    with pytest.raises(DipnValidationError, match="tap"):
        model(**inputs)


@pytest.mark.parametrize("model_name,variant", TORCH_MODELS)
def test_padded_steps_do_not_change_scores(batch256, model_name, variant):
    model = _build(model_name, variant)
    fc = model.feature_config
    inputs = model_inputs(batch256, model.input_names)
    with torch.no_grad():
        reference = model(**inputs)
    rng = np.random.default_rng(7)
    perturbed = dict(inputs)
    sequences = [n for n in model.input_names if n in (*VIEWS, MERGED)]
    for name in sequences:
        ids = inputs[name].clone()
        mask_cols = _mask_columns(name, fc)
        padded = (ids[..., mask_cols] == 0).all(dim=-1)
        assert padded.any()
        for column, upper in enumerate(_upper_bounds(name, fc)):
            if column in mask_cols:
                continue
            noise = torch.as_tensor(rng.integers(1, upper, size=tuple(padded.shape)))
            ids[..., column] = torch.where(padded, noise, ids[..., column])
        perturbed[name] = ids
    with torch.no_grad():
        after = model(**perturbed)
    for a, b in zip(reference, after):
        assert torch.equal(a, b)
    if sequences:  # the converse: a real step does count
        name = sequences[0]
        changed = dict(inputs)
        ids = inputs[name].clone()
        column = 0 if 0 not in _mask_columns(name, fc) else 2
        ids[:, -1, column] = (ids[:, -1, column] % (_upper_bounds(name, fc)[column] - 1)) + 1
        changed[name] = ids
        with torch.no_grad():
            moved = model(**changed)
        assert not all(torch.equal(a, b) for a, b in zip(reference, moved))


@pytest.mark.parametrize("model_name,variant", [("dipn", "dipn"), ("dipn", "early_fusion"), ("rnn_dnn", "rnn_dnn")])
def test_all_padding_view_gives_finite_outputs(batch256, model_name, variant):
    model = _build(model_name, variant).train()
    inputs = model_inputs(batch256, model.input_names)
    for name in inputs:
        if name in (*VIEWS, MERGED):
            inputs[name] = torch.zeros_like(inputs[name])  # every view empty, every sample
    logits = model(**inputs)
    assert all(torch.isfinite(x).all() for x in logits)
    multitask_loss(logits, labels(batch256), model.tasks).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is None or torch.isfinite(parameter.grad).all(), name


# ---- training, loss ------------------------------------------------------------------------------
@pytest.mark.parametrize("model_name,variant", TORCH_MODELS)
def test_every_variant_overfits_a_tiny_batch(model_name, variant):
    model = _build(model_name, variant, SHORT).train()
    batch = make_batch(batch_size=8, seq_len=SHORT.sequence_length, seed=3)
    inputs, targets = model_inputs(batch, model.input_names, torch.int32), labels(batch)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = multitask_loss(model(**inputs), targets, model.tasks)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.7 * losses[0], losses
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters outside the graph: {no_grad}"


def test_multitask_loss_is_the_sum_of_both_bces():
    logits = (torch.tensor([0.3, -1.0]), torch.tensor([2.0, 0.1]))
    y = {"realtime": torch.tensor([1.0, 0.0]), "longterm": torch.tensor([1.0, 1.0])}
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected = bce(logits[0], y["realtime"]) + bce(logits[1], y["longterm"])
    assert torch.allclose(multitask_loss(logits, y), expected)
    assert torch.allclose(multitask_loss(logits, (y["realtime"], y["longterm"])), expected)


@pytest.mark.parametrize("variant,task", [("no_multitask", "realtime"), ("no_multitask_longterm", "longterm")])
def test_single_task_loss_ignores_the_other_label(batch256, variant, task):
    model = _build("dipn", variant)
    assert model.tasks == (task,)
    logits = model(**model_inputs(batch256, model.input_names))
    other = TASKS[1 - TASKS.index(task)]
    assert torch.equal(logits[TASKS.index(other)], torch.zeros(4))
    y = labels(batch256)
    flipped = dict(y, **{other: 1.0 - y[other]})
    assert torch.equal(multitask_loss(logits, y, model.tasks), multitask_loss(logits, flipped, model.tasks))
    flipped_own = dict(y, **{task: 1.0 - y[task]})
    assert not torch.equal(multitask_loss(logits, y, model.tasks), multitask_loss(logits, flipped_own, model.tasks))


# ---- export-friendliness -------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # nn.GRU's own input-size checks
@pytest.mark.filterwarnings("ignore:.*torch.jit.*deprecated:DeprecationWarning")
@pytest.mark.parametrize(
    "model_name,variant", [("dipn", "dipn"), ("dipn", "early_fusion"), ("dipn", "no_multitask"), ("rnn_dnn", "rnn_dnn")]
)
def test_jit_trace_of_positional_wrapper_matches_eager(model_name, variant):
    model = _build(model_name, variant)
    names = model.input_names
    example = model_inputs(make_batch(batch_size=2, seq_len=256, seed=11), names, torch.int32)
    # Another batch size and other padding: nothing data- or shape-dependent may be baked in.
    other = model_inputs(make_batch(batch_size=3, seq_len=256, seed=12, empty_view="browse"), names, torch.int32)
    wrapper = model.positional()
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, tuple(example[n] for n in names), check_trace=False)
        for a, b in zip(traced(*(other[n] for n in names)), model(**other)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


# ---- size ----------------------------------------------------------------------------------------
def test_parameter_counts_sum_to_the_total():
    model = _build("dipn", "dipn")
    counts = parameter_counts(model)
    assert sum(counts.values()) == sum(p.numel() for p in model.parameters())
    assert set(counts) == {
        "embeddings.swipe", "embeddings.tap", "embeddings.browse", "embeddings.history",
        "embeddings.profile", "embeddings.context", "reshape", "grus", "intra_attention", "heads",
    }
    size = size_estimate_mb(model)
    assert size["int8_mb"] < 2.0 < size["fp32_mb"]
    rnn = _build("rnn_dnn", "rnn_dnn")
    assert sum(parameter_counts(rnn).values()) == sum(p.numel() for p in rnn.parameters())


# ---- registry, config, validation ----------------------------------------------------------------
def test_build_model_registry():
    assert set(MODELS) == {"dipn", "rnn_dnn", "atrank", "rib", "heroes"}
    assert build_model("dipn", DIPNConfig(hidden_size=8)).config.hidden_size == 8
    assert build_model("rnn_dnn").input_names == ("browse", "history", "profile", "context")
    with pytest.raises(DipnValidationError, match="known"):
        build_model("transformer")
    with pytest.raises(DipnValidationError, match="known"):
        build_model("dipn", "no_such_variant")


@pytest.mark.parametrize("variant", ["dipn", "no_tap", "no_multitask"])
def test_config_survives_a_json_round_trip(variant):
    config = VARIANTS[variant]
    assert DIPNConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    rnn = RNNDNNConfig(cell="gru", tasks=("longterm",))
    assert RNNDNNConfig.from_dict(json.loads(json.dumps(rnn.to_dict()))) == rnn


def test_invalid_configs_are_refused():
    with pytest.raises(DipnValidationError):
        DIPNConfig(views=("swipe", "click"))
    with pytest.raises(DipnValidationError):
        DIPNConfig(tasks=())
    with pytest.raises(DipnValidationError):
        DIPNConfig(early_fusion=True)  # inter-view attention needs separate views


def test_check_inputs_names_the_offending_column(batch256):
    model = _build("dipn", "dipn")
    model.check_inputs(batch256)
    bad = dict(batch256, browse=batch256["browse"].copy())
    bad["browse"][0, -1, 1] = 19013  # leaf_category has rows 0..19012
    with pytest.raises(DipnValidationError, match="leaf_category"):
        model.check_inputs(bad)
    with pytest.raises(DipnValidationError, match="swipe"):
        model.check_inputs(dict(batch256, swipe=batch256["swipe"][:, :100]))
    early = _build("dipn", "early_fusion")
    early.check_inputs(batch256)


# ---- GBDT ----------------------------------------------------------------------------------------
def test_gbdt_learns_a_planted_signal():
    from dipn.models.gbdt import GBDTBaseline, GBDTConfig, summary_features

    train = plant_signal(make_batch(batch_size=600, seq_len=64, seed=21), seed=1)
    valid = plant_signal(make_batch(batch_size=200, seq_len=64, seed=22), seed=2)
    test = plant_signal(make_batch(batch_size=300, seq_len=64, seed=23), seed=3)
    fc = FeatureConfig(sequence_length=64)
    matrix, names = summary_features(train, fc)
    assert matrix.shape == (600, len(names)) and len(set(names)) == len(names)
    assert "browse.count.cart" in names and "swipe.last.time_gap" in names
    config = GBDTConfig(num_boost_round=100, num_threads=1, touch=True)  # 2 OpenMP threads stall on a busy machine
    model = GBDTBaseline(config, fc).fit(train, valid)
    scores = model.predict(test)
    assert set(scores) == {"realtime", "longterm"}
    for task, p in scores.items():
        assert p.shape == (300,) and ((p >= 0) & (p <= 1)).all()
        assert roc_auc_score(test[task], p) > 0.75, task
    again = GBDTBaseline(config, fc).fit(train, valid).predict(test)
    assert np.array_equal(again["realtime"], scores["realtime"])  # seeded


def test_the_papers_gbdt_reads_browse_history_profile_and_recency_but_no_touch():
    from dipn.models.gbdt import GBDTBaseline, GBDTConfig, gbdt_config_for_data

    batch = make_batch(batch_size=8, seq_len=64, seed=3)
    fc = FeatureConfig(sequence_length=64)
    paper, touch = GBDTBaseline(GBDTConfig(), fc), GBDTBaseline(GBDTConfig(touch=True), fc)
    paper.features(batch), touch.features(batch)
    groups = {n.split(".")[0] for n in paper.feature_names}
    assert groups == {"browse", "history", "profile", "cut_hour"}
    assert {"browse.recency", "cut_hour", "browse.last.stay_time"} <= set(paper.feature_names)
    assert {"swipe.recency", "tap.recency", "tap.distinct_buttons"} <= set(touch.feature_names)
    assert set(paper.feature_names) < set(touch.feature_names)
    # swipes and taps change nothing the paper's row reads
    other = dict(batch, swipe=np.zeros_like(batch["swipe"]), tap=np.zeros_like(batch["tap"]))
    assert np.array_equal(paper.features(batch), paper.features(other), equal_nan=True)
    # on logs without touch views: gbdt_touch is refused, and absent static groups are left out
    with pytest.raises(DipnValidationError, match="no swipe, tap events; use --model gbdt"):
        gbdt_config_for_data("gbdt_touch", ("browse", "history", "context"))
    assert gbdt_config_for_data("gbdt", ("browse", "history", "context")).statics == ("history",)


def test_a_saved_gbdt_scores_as_the_fitted_one(tmp_path):
    from dipn.models.gbdt import GBDTBaseline, GBDTConfig

    train = plant_signal(make_batch(batch_size=300, seq_len=64, seed=31), seed=1)
    test = plant_signal(make_batch(batch_size=50, seq_len=64, seed=32), seed=2)
    fc = FeatureConfig(sequence_length=64)
    model = GBDTBaseline(GBDTConfig(num_boost_round=20, num_threads=1), fc).fit(train, test)
    loaded = GBDTBaseline.load(model.save(tmp_path / "gbdt.json"), fc)
    for task, p in model.predict(test).items():
        np.testing.assert_allclose(loaded.predict(test)[task], p, rtol=0, atol=1e-12)
    (tmp_path / "bad.json").write_text('{"kind": "gbdt", "format": 1, "config": {"nope": 1}}')
    with pytest.raises(DipnValidationError, match="not a readable GBDT model"):
        GBDTBaseline.load(tmp_path / "bad.json", fc)


def test_a_source_ablation_reads_no_recency_of_the_views_it_leaves_out(batch256):
    model = _build("dipn", "only_browse").eval()
    inputs = model_inputs(batch256, model.input_names, torch.int64)
    other = dict(inputs)
    other["context"] = inputs["context"].clone()
    other["context"][:, :2] = 3  # recency of swipe and tap
    assert torch.equal(torch.stack(model(**inputs)), torch.stack(model(**other)))
    other["context"][:, 2] = 5  # recency of browse: read
    assert not torch.equal(torch.stack(model(**inputs)), torch.stack(model(**other)))
