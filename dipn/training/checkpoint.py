"""Checkpoints hold everything needed to score, resume or convert: weights, model config, feature
manifest, training config, metrics, optimizer and RNG state, and the code's git revision.

All of it is tensors and plain data (dicts, lists, strings, numbers), so ``load`` unpickles with
``torch.load(weights_only=True)``: a crafted .pt cannot run code in ``dipn evaluate``, ``dipn
convert`` or a resumed run. ``save`` refuses to write anything else, so every checkpoint it writes
loads that way; a file holding other Python objects is refused, not unpickled (docs/security.md).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import pickle
import subprocess
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dipn import __version__
from dipn.errors import DipnValidationError
from dipn.features import FeatureManifest
from dipn.models import MODEL_CONFIGS, build_model

CHECKPOINT_FORMAT = 1
CONFIG_TYPES = MODEL_CONFIGS


def git_revision() -> str:
    """The commit the code ran from (with "-dirty" for local changes), or "unknown"."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()  # fmt: skip
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def model_config_dict(model: nn.Module) -> dict[str, Any]:
    return dataclasses.asdict(model.config)


def save(path: Path, state: dict[str, Any]) -> Path:
    """Atomic: a kill during the write leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"format": CHECKPOINT_FORMAT, "dipn_version": __version__,
                "saved_at": dt.datetime.now(dt.UTC).isoformat(), **state}, tmp)  # fmt: skip
    objects = torch.serialization.get_unsafe_globals_in_checkpoint(tmp)
    if objects:  # ``load`` would refuse it: store such values as plain data (a dict, a float) instead
        tmp.unlink()
        raise DipnValidationError(f"{path}: checkpoint state holds Python objects {objects}; store plain data")
    os.replace(tmp, path)
    return path


def load(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise DipnValidationError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise DipnValidationError(
            f"{path}: holds Python objects besides tensors and plain data; refused, not unpickled (loading "
            "it could run code): a checkpoint from dipn train never does") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise DipnValidationError(f"{path}: not a readable checkpoint ({exc.__class__.__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise DipnValidationError(f"{path}: not a dipn checkpoint (format {CHECKPOINT_FORMAT})")
    return ckpt


def rebuild_model(ckpt: dict[str, Any]) -> tuple[nn.Module, FeatureManifest]:
    """The model and feature manifest a checkpoint was trained with, weights loaded, eval mode."""
    manifest = FeatureManifest.from_dict(ckpt["feature_manifest"])
    name = ckpt["model_name"]
    config_type = CONFIG_TYPES[name]
    config = config_type.from_dict(ckpt["model_config"])
    model = build_model(name, config, manifest.config)
    model.load_state_dict(ckpt["model_state"])
    model.eval()
    return model, manifest


def load_model(path: str | Path) -> tuple[nn.Module, FeatureManifest, dict[str, Any]]:
    ckpt = load(path)
    model, manifest = rebuild_model(ckpt)
    return model, manifest, ckpt

