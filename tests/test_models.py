"""The model layer: DIPN and its variants, RNN+DNN, GBDT (dipn.models). What every torch preset
keeps (shapes, padding, gradients, learning, round trips, tracing) is checked in test_presets.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from dipn.errors import DipnValidationError
from dipn.features import MERGED, VIEWS
from dipn.features.spec import FeatureConfig, Group
from dipn.models import VARIANTS, DIPNConfig, GroupEmbedding, build_model, multitask_loss, parameter_counts, size_estimate_mb

try:  # tests/ is not a package; pytest puts it on sys.path (or, as a package, its parent)
    from synthetic_batches import make_batch, model_inputs, plant_signal
except ImportError:  # pragma: no cover
    from tests.synthetic_batches import make_batch, model_inputs, plant_signal


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def batch256() -> dict[str, np.ndarray]:
    return make_batch(batch_size=4, seq_len=256, seed=1)


def _build(model: str, variant: str, feature_config: FeatureConfig | None = None, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(model, variant, feature_config).eval()


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


# ---- DIPN: inputs per variant ---------------------------------------------------------------------
def test_input_names_per_variant():
    assert VARIANTS["dipn"].input_names == ("swipe", "tap", "browse", "history", "profile", "context")
    assert VARIANTS["early_fusion"].input_names == (MERGED, "history", "profile", "context")
    assert VARIANTS["no_tap"].input_names == ("swipe", "browse", "history", "profile", "context")
    assert VARIANTS["only_history"].input_names == ("history", "context")
    assert VARIANTS["only_swipe"].input_names == ("swipe", "context")
    assert VARIANTS["no_tap"].pairs == (("swipe", "browse"),)


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


# ---- training, loss ------------------------------------------------------------------------------
def test_multitask_loss_is_the_sum_of_both_bces():
    logits = (torch.tensor([0.3, -1.0]), torch.tensor([2.0, 0.1]))
    y = {"realtime": torch.tensor([1.0, 0.0]), "longterm": torch.tensor([1.0, 1.0])}
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected = bce(logits[0], y["realtime"]) + bce(logits[1], y["longterm"])
    assert torch.allclose(multitask_loss(logits, y), expected)
    assert torch.allclose(multitask_loss(logits, (y["realtime"], y["longterm"])), expected)


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
def test_build_model_takes_a_config_or_a_preset():
    assert build_model("dipn", DIPNConfig(hidden_size=8)).config.hidden_size == 8
    assert build_model("rnn_dnn").input_names == ("browse", "history", "profile", "context")
    with pytest.raises(DipnValidationError, match="known"):
        build_model("dipn", "no_such_variant")


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


def test_the_wide_path_adds_a_linear_term_of_the_context_to_each_logit(batch256):
    deep = DIPNConfig(views=("browse",), use_profile=False)
    model = build_model("dipn", replace(deep, wide_context=True)).eval()
    assert set(model.wide) == {"realtime", "longterm"} and not build_model("dipn", deep).wide
    inputs = model_inputs(batch256, model.input_names, torch.int64)
    with torch.no_grad():
        for branch in model.heads.branches.values():  # silence the deep branches: the wide term alone
            branch[-1].weight.zero_()
            branch[-1].bias.zero_()
        context = model.embeddings["context"](inputs["context"])
        realtime, longterm = model(**inputs)
        assert torch.allclose(realtime, model.wide["realtime"](context).squeeze(-1))
        assert torch.allclose(longterm, model.wide["longterm"](context).squeeze(-1))
    without_context = build_model("dipn", replace(deep, wide_context=True, use_context=False))
    assert not without_context.wide  # no context read, no wide path


def test_the_ordinal_wide_path_reads_recency_and_action_ages_as_ordered_numbers(batch256):
    deep = DIPNConfig(views=("browse",), use_profile=False)
    model = build_model("dipn", replace(deep, wide_ordinal=True)).eval()
    assert set(model.ordinal) == {"realtime", "longterm"} and not build_model("dipn", deep).ordinal
    names = [spec.name for spec in model.feature_config.group("context")]
    read = {n for n, scale in zip(names, model.ordinal_scale.tolist()) if scale > 0}
    # the browse view's recency and the time since each action; not the cyclic hour, not absent views
    assert read == {"recency_browse", "since_purchase", "since_cart", "since_collect", "since_browse"}
    inputs = model_inputs(batch256, model.input_names, torch.int64)
    with torch.no_grad():
        for branch in model.heads.branches.values():  # silence the deep branches: the ordinal term alone
            branch[-1].weight.zero_()
            branch[-1].bias.zero_()
        model.ordinal["realtime"].weight.fill_(-1.0)
        model.ordinal["realtime"].bias.zero_()
        column = names.index("recency_browse")
        newer, older = (dict(inputs, context=inputs["context"].clone()) for _ in range(2))
        newer["context"][:, column], older["context"][:, column] = 3, 4  # one bucket older: 1 / (largest id) lower
        difference = model(**newer)[0] - model(**older)[0]
        assert torch.allclose(difference, model.ordinal_scale[column].expand_as(difference), atol=1e-6)
        numbers = inputs["context"].float() * model.ordinal_scale
        assert torch.allclose(model(**inputs)[1], model.ordinal["longterm"](numbers).squeeze(-1), atol=1e-6)
    paper = build_model("dipn", replace(deep, wide_ordinal=True, action_ages=False))
    names_read = {n for n, scale in zip(names, paper.ordinal_scale.tolist()) if scale > 0}
    assert names_read == {"recency_browse"}  # no action ages read, none on the ordinal path either


def test_an_action_age_horizon_reads_every_id_beyond_it_as_none(batch256):
    """Beyond the horizon the time since an action reads as "none", in training (the lookup) and in
    scoring (the tied rows), with the graph unchanged: what an export traces is a plain lookup."""
    config = DIPNConfig(views=("browse",), use_profile=False, action_age_horizon_hours=24.0, dropout=0.0)
    torch.manual_seed(0)
    model = build_model("dipn", config)
    names = [spec.name for spec in model.feature_config.group("context")]
    column, none = names.index("since_purchase"), model.feature_config.spec("context", "since_purchase").num_embeddings - 1
    inputs = model_inputs(batch256, model.input_names, torch.int64)

    def scored(since_id: int, train: bool) -> torch.Tensor:
        model.train(train)
        given = dict(inputs, context=inputs["context"].clone())
        given["context"][:, column] = since_id
        return torch.stack(model(**given))

    for train in (True, False):
        assert torch.equal(scored(25, train), scored(none, train))  # 1-2 days ago: beyond 24 h
        assert torch.equal(scored(34, train), scored(none, train))  # 10 days or more
        assert not torch.equal(scored(24, train), scored(none, train))  # 23-24 h ago: inside
    # In training the lookup goes to the "none" row: it learns, the tied rows get no gradient ...
    model.train()
    scored(30, True).sum().backward()
    grad = model.embeddings["context"].tables[column].weight.grad
    assert grad[none].abs().sum() > 0 and grad[25:none].abs().sum() == 0
    # ... and a step of the optimizer is followed by tie_rows, which copies it back.
    with torch.no_grad():
        model.embeddings["context"].tables[column].weight[none] += 1.0
    model.embeddings["context"].tie_rows()
    assert torch.equal(scored(30, False), scored(none, False))
    without = build_model("dipn", replace(config, action_age_horizon_hours=None))
    assert not without.embeddings["context"].ties
    assert not build_model("dipn", "dipn").embeddings["context"].ties  # the default reads all of it


def test_an_action_age_horizon_off_a_bucket_edge_is_refused_naming_the_edges():
    with pytest.raises(DipnValidationError, match=r"30 h is not a bucket edge.*24, 48, 72"):
        build_model("dipn", DIPNConfig(action_age_horizon_hours=30.0))
    with pytest.raises(DipnValidationError, match="must be > 0"):
        DIPNConfig(action_age_horizon_hours=-1.0)
    for reads_none in ("dipn_paper", "no_browse"):  # no action ages, or no browse window to take them from
        with pytest.raises(DipnValidationError, match="reads no time since a browse action"):
            replace(VARIANTS[reads_none], action_age_horizon_hours=24.0)

