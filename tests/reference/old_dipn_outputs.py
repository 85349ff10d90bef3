"""DIPN's outputs and gradients as the code before issue 19 computed them: the fixture that
``tests/test_fast_paths.py`` holds the faster code to (``old_dipn_outputs.json``).

Every variant, seeded weights (``torch.manual_seed(0)`` before building: the same parameters in
any revision that creates them in the same order), one seeded batch of ``tests/synthetic_batches``
with views of every length, some empty; train mode (no dropout in any variant). Gradients are
summarized per parameter as (sum, sum of absolute values).

Regenerate only when the model's function is meant to change, from the old code:
    tmp=$(mktemp -d) && git archive 54134d8 dipn | tar -x -C "$tmp"
    PYTHONPATH="$tmp" python tests/reference/old_dipn_outputs.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from synthetic_batches import labels, make_batch, model_inputs  # noqa: E402

FIXTURE = HERE / "old_dipn_outputs.json"
BATCH = {"batch_size": 20, "seq_len": 256, "seed": 3}  # 20 samples: more than one attention chunk


def outputs(variant: str) -> dict[str, Any]:
    """Logits, loss and gradient summaries of one seeded variant on the reference batch, in the
    feature layout before issue 25 (Table 3 and the recency / cut hour context: no step ages, no
    action ages), which both the old code and today's read."""
    import dipn.models
    from dipn.features.spec import CONTEXT_FEATURES, TABLE3, FeatureConfig
    from dipn.models import build_model, multitask_loss

    before_issue_25 = FeatureConfig(
        features=TABLE3 + tuple(f for f in CONTEXT_FEATURES if f.kind.value in ("recency", "hour")), sequence_length=256
    )
    torch.manual_seed(0)
    model = build_model("dipn", variant, before_issue_25).train()
    batch = make_batch(**BATCH, feature_config=before_issue_25)
    logits = model(**model_inputs(batch, model.input_names))
    loss = multitask_loss(logits, labels(batch), model.tasks)
    loss.backward()
    grads = {n: [float(p.grad.sum()), float(p.grad.abs().sum())] for n, p in model.named_parameters() if p.grad is not None}
    return {"logits": [t.tolist() for t in logits], "loss": float(loss.detach()), "grads": grads,
            "dipn": str(Path(dipn.models.__file__).parents[1])}  # fmt: skip


def main() -> None:
    from dipn.models import VARIANTS

    torch.set_num_threads(1)
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True).stdout
    report = {"code": "dipn/ of 54134d8 (before issue 19)", "tree_at_generation": revision.strip(), "batch": BATCH,
              "variants": {}}  # fmt: skip
    for variant in VARIANTS:
        result = outputs(variant)
        print(variant, "computed by", result.pop("dipn"))
        report["variants"][variant] = result
    FIXTURE.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {FIXTURE}")


if __name__ == "__main__":
    main()
