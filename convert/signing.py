"""The builder's side of bundle signatures: Ed25519 keys, and the signature of a manifest.

What a signature covers and how a device checks it: ``dipn.bundle.trust``. Keys are files in the
standard PEM encodings (PKCS#8 private key, SubjectPublicKeyInfo public key) that OpenSSL and
every platform's crypto library read. The private key is created with mode 0600 and never travels
with a bundle.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dipn.bundle.errors import BundleSignatureError
from dipn.bundle.manifest import MANIFEST
from dipn.bundle.trust import SIGNATURE, SIGNATURE_FORMAT, SIGNED_PREFIX, key_id
from dipn.outputs import make_directory, write_bytes

log = logging.getLogger(__name__)


def generate_keypair(out_dir: str | Path, name: str = "dipn-signing") -> tuple[Path, Path]:
    """Write ``NAME.key`` (private, mode 0600) and ``NAME.pub`` in ``out_dir``; never overwrites.

    Each file is written whole or not at all (``dipn.outputs``), the private key first: a kill or
    a full disk leaves no key, or a whole key whose public half the next run writes (derived from
    it), never an empty key file that every later run refuses to overwrite.
    """
    out_dir = Path(out_dir)
    make_directory(out_dir)
    private_path, public_path = out_dir / f"{name}.key", out_dir / f"{name}.pub"
    if private_path.exists():
        if public_path.exists():
            raise BundleSignatureError(f"{private_path} already exists; refusing to overwrite a key (choose another --name)")
        private_key = load_private_key(private_path)  # an interrupted run's key: complete it with its public half
    else:
        if public_path.exists():
            raise BundleSignatureError(f"{public_path} already exists; refusing to overwrite a key (choose another --name)")
        private_key = Ed25519PrivateKey.generate()
        private_pem = private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # Created 0600: the key is never readable by others, not even for a moment.
        write_bytes(private_path, private_pem, mode=0o600, overwrite=False)
    write_bytes(public_path, private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), overwrite=False)  # fmt: skip
    return private_path, public_path


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BundleSignatureError(f"{path}: cannot read the signing key ({exc.strerror})") from None
    if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & 0o077:
        log.warning("%s: the signing key is readable by other users (mode %o); chmod 600 it",
                    path, stat.S_IMODE(path.stat().st_mode))
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise BundleSignatureError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleSignatureError(f"{path}: a {type(key).__name__}, not an Ed25519 key (make one with dipn keygen)")
    return key


def sign_bundle(root: str | Path, private_key: Ed25519PrivateKey) -> dict[str, str | int]:
    """Sign ``root/manifest.json`` as it is on disk; writes ``root/manifest.sig`` atomically."""
    root = Path(root)
    manifest_bytes = (root / MANIFEST).read_bytes()
    record = {
        "format": SIGNATURE_FORMAT,
        "algorithm": "ed25519",
        "key_id": key_id(private_key.public_key()),
        "signed": MANIFEST,
        "signature": base64.b64encode(private_key.sign(SIGNED_PREFIX + manifest_bytes)).decode(),
    }
    tmp = root / f".{SIGNATURE}.tmp"
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(root / SIGNATURE)
    return record
