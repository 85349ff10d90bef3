"""A bundle's format: ``manifest.json`` and every file it lists, checked before anything runs it.

``load_bundle(dir)`` reads ``manifest.json`` and checks each listed file's size and sha256; a
missing, truncated or modified file is refused with ``BundleIntegrityError`` naming the file and
both digests. A bundle whose conversion failed the parity gate (``status`` "rejected") is refused
too. ``describe_files`` is how ``convert`` records the files, so writing and checking agree.
Standard library only.

What a device (and a port in another language) reads of ``manifest.json``: ``inputs`` (name,
dtype, shape with the batch axis first, in the artifact's signature order), ``outputs``
(``p_realtime``, ``p_longterm``), ``features`` (the encoder's spec, ``features.json``), ``golden``,
``artifacts`` (format, precision, path, minimum runtime versions), ``default_precision``, and
``scoring_policy``: ``{"on_event": true, "timer_ms": 60000 | null, "idle_limit_ms": 1800000}``, the
moments the training samples were cut at (``dipn.samples.cuts.cut_moments``; docs/device.md). A
bundle without it (older than issue 24) is scored with those defaults.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dipn.bundle.errors import BundleIntegrityError

MANIFEST = "manifest.json"
BUNDLE_FORMAT = 1
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def describe_files(root: Path, paths: list[Path]) -> dict[str, dict[str, Any]]:
    """{path relative to root: {sha256, bytes}} for files and for every file inside directories."""
    out = {}
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            out[file.relative_to(root).as_posix()] = {"sha256": sha256_file(file), "bytes": file.stat().st_size}
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class Bundle:
    root: Path
    manifest: dict[str, Any]

    @property
    def artifacts(self) -> list[dict[str, Any]]:
        return self.manifest["artifacts"]

    def artifact(self, fmt: str, precision: str | None = None) -> dict[str, Any]:
        """The artifact of a format: the given precision, else the manifest's default for it."""
        precision = precision or self.manifest["default_precision"]
        for entry in self.artifacts:
            if entry["format"] == fmt and entry["precision"] == precision:
                return entry
        have = [f"{a['format']}/{a['precision']}" for a in self.artifacts]
        raise BundleIntegrityError(f"{self.root}: no {fmt} {precision} artifact in this bundle (it has {have})")

    def path(self, entry: Mapping[str, Any]) -> Path:
        return self.root / entry["path"]


def load_bundle(root: str | Path, *, manifest_bytes: bytes | None = None) -> Bundle:
    """Read and check a bundle directory; raises ``BundleIntegrityError`` on any mismatch.

    ``manifest_bytes``: the manifest as the caller already read it (``dipn.bundle.trust`` passes the
    very bytes whose signature it checked, so the file is not read a second time).
    """
    root = Path(root)
    manifest_path = root / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_bytes() if manifest_bytes is None else manifest_bytes)
    except FileNotFoundError:
        raise BundleIntegrityError(f"{root}: not a bundle (no {MANIFEST})") from None
    except (OSError, ValueError) as exc:  # ValueError: bad JSON or bad UTF-8
        raise BundleIntegrityError(f"{manifest_path}: unreadable ({exc})") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise BundleIntegrityError(f"{manifest_path}: not a bundle manifest (no file list)")
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleIntegrityError(f"{manifest_path}: bundle format {manifest.get('format')!r} is not {BUNDLE_FORMAT}")
    if manifest.get("status") != "ok":
        failures = "; ".join(manifest.get("parity", {}).get("failures", [])) or "no reason recorded"
        raise BundleIntegrityError(f"{root}: this bundle was rejected when it was converted ({failures})")
    for relative, expected in manifest["files"].items():
        check_file(root, relative, expected)
    return Bundle(root, manifest)


def check_file(root: Path, relative: str, expected: Mapping[str, Any]) -> None:
    if Path(relative).is_absolute() or ".." in Path(relative).parts:  # a manifest names files inside its bundle
        raise BundleIntegrityError(f"{root / MANIFEST}: file {relative!r} lies outside the bundle")
    path = root / relative
    if not path.is_file():
        raise BundleIntegrityError(f"{path}: missing (listed in {MANIFEST})")
    size = path.stat().st_size
    if size != expected["bytes"]:
        raise BundleIntegrityError(
            f"{path}: {size} bytes, manifest.json says {expected['bytes']} (truncated or replaced); "
            f"sha256 mismatch: rebuild the bundle with dipn convert"
        )
    digest = sha256_file(path)
    if digest != expected["sha256"]:
        raise BundleIntegrityError(
            f"{path}: sha256 mismatch: expected {expected['sha256']}, got {digest} (the file is corrupted "
            f"or was modified); rebuild the bundle with dipn convert"
        )
