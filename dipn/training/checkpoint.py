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
MODEL_KEYS = ("model_name", "model_config", "model_state", "feature_manifest")
RESUME_KEYS = (*MODEL_KEYS, "optimizer_state", "train_state", "torch_rng")
_UNSAFE_GLOBAL = "Unsupported global"  # torch's words when weights_only=True refuses to import a name


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
    except pickle.UnpicklingError as exc:
        if _UNSAFE_GLOBAL not in str(exc):  # an opcode torch does not know: random bytes, another format
            raise DipnValidationError(f"{path}: not a readable checkpoint (not a PyTorch file of tensors and "
                                      "plain data)") from None  # fmt: skip
        raise DipnValidationError(
            f"{path}: holds Python objects besides tensors and plain data; refused, not unpickled (loading "
            "it could run code): a checkpoint from dipn train never does") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise DipnValidationError(f"{path}: not a readable checkpoint ({exc.__class__.__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise DipnValidationError(f"{path}: not a dipn checkpoint (format {CHECKPOINT_FORMAT})")
    return ckpt


def require_keys(ckpt: dict[str, Any], path: Path, keys: tuple[str, ...]) -> None:
    """Refuse a checkpoint that lacks what the caller reads from it (to score: ``MODEL_KEYS``)."""
    missing = [key for key in keys if key not in ckpt]
    if missing:
        raise DipnValidationError(f"{path}: not a complete dipn checkpoint (no {', '.join(missing)})")


def require_same_run(ckpt: dict[str, Any], path: Path, model_name: str, model_config: dict[str, Any],
                     manifest: FeatureManifest) -> None:  # fmt: skip
    """Refuse to resume a run with another model, variant or feature encoding than it was trained with."""
    if ckpt["model_name"] != model_name:
        raise DipnValidationError(f"{path} was trained as model {ckpt['model_name']!r}, not {model_name!r}; "
                                  "resume with the run's options or start a new run")  # fmt: skip
    theirs = ckpt["model_config"] if isinstance(ckpt["model_config"], dict) else {}
    differ = sorted(k for k in set(theirs) | set(model_config) if theirs.get(k) != model_config.get(k))
    if differ:
        shown = ", ".join(f"{k} {theirs.get(k)!r} (now {model_config.get(k)!r})" for k in differ[:4])
        raise DipnValidationError(f"{path} was trained with another model configuration: {shown}; resume with "
                                  "the run's options (same --model, --variant) or start a new run")  # fmt: skip
    if _manifest_of(ckpt, path) != manifest:
        raise DipnValidationError(f"{path} was trained on samples encoded with another features.json; resume "
                                  "on the run's samples")  # fmt: skip


def _manifest_of(ckpt: dict[str, Any], path: Path) -> FeatureManifest:
    try:
        return FeatureManifest.from_dict(ckpt["feature_manifest"])
    except DipnValidationError as exc:
        raise DipnValidationError(f"{path}: {exc}") from None


def rebuild_model(ckpt: dict[str, Any], path: Path) -> tuple[nn.Module, FeatureManifest]:
    """The model and feature manifest a checkpoint was trained with, weights loaded, eval mode."""
    manifest = _manifest_of(ckpt, path)
    name = ckpt["model_name"]
    if name not in CONFIG_TYPES:
        raise DipnValidationError(f"{path}: unknown model {name!r}; known: {sorted(CONFIG_TYPES)}")
    try:
        config = CONFIG_TYPES[name].from_dict(ckpt["model_config"])
        model = build_model(name, config, manifest.config)
        model.load_state_dict(ckpt["model_state"])
    except DipnValidationError as exc:
        raise DipnValidationError(f"{path}: {exc}") from None
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:  # RuntimeError: weights of other shapes
        raise DipnValidationError(f"{path}: its weights do not fit its model configuration ({str(exc)[:200]})") from None
    model.eval()
    return model, manifest


def load_model(path: str | Path) -> tuple[nn.Module, FeatureManifest, dict[str, Any]]:
    ckpt = load(path)
    require_keys(ckpt, Path(path), MODEL_KEYS)
    model, manifest = rebuild_model(ckpt, Path(path))
    return model, manifest, ckpt

