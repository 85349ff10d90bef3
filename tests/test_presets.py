"""Every preset of the registry (dipn.presets): the names each model module builds, and the
model contract of ``check_model`` for each torch preset."""

from __future__ import annotations

from pathlib import Path

import pytest

from dipn.errors import DipnValidationError
from dipn.models import MODELS, build_model
from dipn.models.gbdt import TOUCH_ROW
from dipn.presets import GBDT_MODELS, PRESETS, TORCH_MODELS, presets_of, variants_help

try:  # tests/ is not a package; pytest puts it on sys.path (or, as a package, its parent)
    from model_check import check_model
except ImportError:  # pragma: no cover
    from tests.model_check import check_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TORCH_PRESETS = [p for p in PRESETS if p.is_torch]


def test_the_registry_names_what_each_model_builds() -> None:
    assert set(MODELS) == set(TORCH_MODELS)
    for model in TORCH_MODELS:
        assert [p.name for p in presets_of(model)] == list(MODELS[model].presets), model
        assert presets_of(model)[0].name == model  # the first preset is the model's full configuration
    assert set(GBDT_MODELS) == {p.name for p in PRESETS if not p.is_torch} and TOUCH_ROW in GBDT_MODELS
    assert len({p.name for p in PRESETS}) == len(PRESETS)
    assert all(p.paper or p.about for p in PRESETS)
    assert all(p.name in variants_help() for p in TORCH_PRESETS)


def test_unknown_names_are_refused_with_the_known_ones() -> None:
    with pytest.raises(DipnValidationError, match="known"):
        build_model("transformer")
    with pytest.raises(DipnValidationError, match="known: \\['rib', 'rib_browse'\\]"):
        build_model("rib", "no_tap")


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # nn.GRU's own input-size checks
@pytest.mark.filterwarnings("ignore:.*torch.jit.*deprecated:DeprecationWarning")
@pytest.mark.parametrize("row", TORCH_PRESETS, ids=lambda p: p.name)
def test_every_preset_keeps_the_model_contract(row, tmp_path: Path) -> None:
    check_model(row, tmp_path)
