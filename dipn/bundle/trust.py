"""Which bundles a device trusts: an Ed25519 signature of the manifest by the model builder's key.

``manifest.json`` lists the sha256 and size of every other file of a bundle, and ``load_bundle``
checks them; so one signature over the manifest's exact bytes covers the whole bundle. It is
detached, in ``manifest.sig`` (JSON: algorithm, key id, base64 signature), so that signing never
changes the manifest. What is signed is ``SIGNED_PREFIX + manifest bytes``: the prefix keeps a
signature made for a bundle from ever counting as a signature of anything else made with the
same key. (``convert.signing`` makes keys and signatures; this module only checks them.)

A device is configured with the public key and opens bundles with ``load_trusted_bundle``, which
refuses an unsigned bundle, one signed by another key, a modified manifest, and (through the
manifest's digests) any modified, missing or added file. With no public key configured it refuses
everything unless the caller opts in with ``allow_unsigned=True``, which is for development and
logs a warning on every load. Public keys are PEM (SubjectPublicKeyInfo) files or text, which
OpenSSL and every platform's crypto library read. Needs the ``cryptography`` package.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dipn.bundle.errors import BundleIntegrityError, BundleSignatureError
from dipn.bundle.manifest import MANIFEST, Bundle, load_bundle

log = logging.getLogger(__name__)

SIGNATURE = "manifest.sig"
SIGNATURE_FORMAT = 1
SIGNED_PREFIX = b"dipn bundle manifest v1\n"
PublicKeySource = Ed25519PublicKey | bytes | str | Path


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short name of a public key: the first 16 hex digits of SHA-256 of its 32 raw bytes."""
    return hashlib.sha256(public_key.public_bytes_raw()).hexdigest()[:16]


def load_public_key(source: PublicKeySource) -> Ed25519PublicKey:
    """An Ed25519 public key from a key object, PEM bytes or text, or a path to a PEM file."""
    if isinstance(source, Ed25519PublicKey):
        return source
    if isinstance(source, Path) or (isinstance(source, str) and "-----BEGIN" not in source):
        try:
            source = Path(source).read_bytes()
        except OSError as exc:
            raise BundleSignatureError(f"{source}: cannot read the public key ({exc.strerror})") from None
    data = source.encode() if isinstance(source, str) else source
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise BundleSignatureError(f"not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleSignatureError(f"the public key is a {type(key).__name__}, not Ed25519")
    return key


def check_signature(root: Path, manifest_bytes: bytes, public_key: Ed25519PublicKey) -> str:
    """The signer's key id, or ``BundleSignatureError`` saying what is wrong."""
    try:
        record = json.loads((root / SIGNATURE).read_text())
    except FileNotFoundError:
        raise BundleSignatureError(f"{root}: the bundle is not signed (no {SIGNATURE}); "
                                   "this device only loads bundles signed by its trusted key") from None
    except (OSError, ValueError) as exc:
        raise BundleSignatureError(f"{root / SIGNATURE}: unreadable ({exc})") from None
    trusted = key_id(public_key)
    if not isinstance(record, dict) or record.get("algorithm") != "ed25519":
        raise BundleSignatureError(f"{root / SIGNATURE}: not an ed25519 signature record")
    if record.get("key_id") != trusted:
        raise BundleSignatureError(
            f"{root}: signed by key {record.get('key_id')!r}, but this device trusts key {trusted!r} only")
    try:
        signature = base64.b64decode(str(record.get("signature", "")), validate=True)
        public_key.verify(signature, SIGNED_PREFIX + manifest_bytes)
    except (InvalidSignature, ValueError):
        raise BundleSignatureError(
            f"{root}: the signature does not match {MANIFEST} (modified after signing, or signed by another "
            f"key under the trusted key's name)") from None
    return trusted


def check_no_unlisted_files(bundle: Bundle) -> None:
    """Every file of the bundle, but the manifest and its signature, must be listed (and so hashed)
    in the signed manifest: an added file, say a second weights file inside a CoreML package,
    could otherwise ride along unchecked."""
    listed = set(bundle.manifest["files"]) | {MANIFEST, SIGNATURE}
    present = {p.relative_to(bundle.root).as_posix() for p in bundle.root.rglob("*") if p.is_file()}
    extra = sorted(present - listed)
    if extra:
        raise BundleSignatureError(f"{bundle.root}: file(s) {extra[:5]} are not listed in the signed {MANIFEST}")


def load_trusted_bundle(root: str | Path, public_key: PublicKeySource | None, *,
                        allow_unsigned: bool = False) -> tuple[Bundle, str | None]:
    """Open a bundle only if ``public_key`` signed it; returns it and the signer's key id.

    The manifest is read once: the bytes whose signature is checked are the bytes then parsed.
    Without a public key, ``allow_unsigned=True`` loads it unchecked (key id None) with a warning.
    """
    root = Path(root)
    try:
        manifest_bytes = (root / MANIFEST).read_bytes()
    except FileNotFoundError:
        raise BundleIntegrityError(f"{root}: not a bundle (no {MANIFEST})") from None
    except OSError as exc:
        raise BundleIntegrityError(f"{root / MANIFEST}: unreadable ({exc.strerror})") from None
    if public_key is None:
        if not allow_unsigned:
            raise BundleSignatureError(
                f"{root}: no public key is configured to check the bundle's signature; configure the key of "
                "the model builder (public_key=...), or pass allow_unsigned=True for development only")
        log.warning("%s: loaded WITHOUT checking a signature (allow_unsigned=True): development only", root)
        return load_bundle(root, manifest_bytes=manifest_bytes), None
    signer = check_signature(root, manifest_bytes, load_public_key(public_key))
    bundle = load_bundle(root, manifest_bytes=manifest_bytes)
    check_no_unlisted_files(bundle)
    return bundle, signer
