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
import hashlib
import io
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
from dipn.outputs import write_bytes

CHECKPOINT_FORMAT = 1
DIGEST = "content_sha256"  # the digest of every other key, checked on load
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
    """Atomic (``dipn.outputs.write_bytes``): a kill or a full disk during the write leaves the
    previous checkpoint intact. The file carries the digest of its contents, checked by ``load``;
    weights that are not finite are never written."""
    path = Path(path)
    if "model_state" in state:
        bad, total = nonfinite_weights(state["model_state"])
        if bad:
            raise DipnValidationError(f"{path}: not written: {bad:,} of {total:,} weights are not finite (NaN or "
                                      "infinity), training diverged; train again with a lower --lr")  # fmt: skip
    content = {"format": CHECKPOINT_FORMAT, "dipn_version": __version__,
               "saved_at": dt.datetime.now(dt.UTC).isoformat(), **state}  # fmt: skip
    buffer = io.BytesIO()
    torch.save({**content, DIGEST: content_digest(content)}, buffer)
    buffer.seek(0)
    objects = torch.serialization.get_unsafe_globals_in_checkpoint(buffer)
    if objects:  # ``load`` would refuse it: store such values as plain data (a dict, a float) instead
        raise DipnValidationError(f"{path}: checkpoint state holds Python objects {objects}; store plain data")
    return write_bytes(path, buffer.getvalue())


def content_digest(content: dict[str, Any]) -> str:
    """sha256 of a checkpoint's contents, walked in a fixed order (tensors by dtype, shape and
    bytes; dicts by sorted keys): a byte flipped anywhere in the file changes a value or breaks
    the unpickling, so ``load`` refuses a damaged checkpoint instead of scoring with it."""
    digest = hashlib.sha256()
    _feed(digest, content)
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        flat = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{flat.dtype}{tuple(value.shape)}:".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}:".encode())
        for key in sorted(value, key=repr):
            _feed(digest, key)
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"{type(value).__name__[0]}{len(value)}:".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"{type(value).__name__}:{value!r};".encode())


def nonfinite_weights(state: Any) -> tuple[int, int]:
    """(not finite, all) floating-point values of a model's state dict."""
    bad = total = 0
    for tensor in state.values() if isinstance(state, dict) else ():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
            bad += int((~torch.isfinite(tensor)).sum())
            total += tensor.numel()
    return bad, total


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
    except Exception as exc:  # a damaged zip or pickle fails in torch's many ways
        raise DipnValidationError(f"{path}: not a readable checkpoint (damaged: {exc.__class__.__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise DipnValidationError(f"{path}: not a dipn checkpoint (format {CHECKPOINT_FORMAT})")
    recorded = ckpt.pop(DIGEST, None)
    if recorded is None:
        raise DipnValidationError(f"{path}: carries no digest of its contents (written before dipn checked them); "
                                  "train it again")  # fmt: skip
    try:
        computed = content_digest(ckpt)
    except Exception:  # values of a damaged file that do not even hash
        computed = None
    if computed != recorded:
        raise DipnValidationError(f"{path}: damaged: its contents do not match the digest it was saved with "
                                  "(a changed byte, a partial copy); use another copy or train again")  # fmt: skip
    bad, total = nonfinite_weights(ckpt.get("model_state"))
    if bad:
        raise DipnValidationError(f"{path}: {bad:,} of {total:,} weights are not finite (NaN or infinity): the "
                                  "training run diverged; train again with a lower --lr")  # fmt: skip
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

