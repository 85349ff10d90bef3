"""``dipn keygen``: an Ed25519 key pair for signing model bundles (``dipn convert --signing-key``).

Like ``dipn convert``, it imports the top-level ``convert`` package (``convert.signing``) inside ``run``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dipn.commands.options import plain_name


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "keygen",
        help="make an Ed25519 key pair that signs model bundles; devices are configured with the public key",
        description="Write NAME.key (the private key, PEM PKCS#8, mode 0600: keep it on the build machine or in "
        "the CI secret store, never in a bundle or an app) and NAME.pub (the public key, PEM: ship it inside the "
        "app). dipn convert --signing-key NAME.key signs each bundle's manifest.json; the device wrapper "
        "(mobile_demo.IntentScorerOptions(public_key=NAME.pub)) refuses bundles it did not sign. "
        "Never overwrites an existing key.",
    )
    p.add_argument("--out", type=Path, required=True, help="directory for the two key files (created if absent)")
    p.add_argument("--name", type=plain_name, default="dipn-signing",
                   help="file name stem, a plain name (default dipn-signing)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from convert.signing import generate_keypair
    from dipn.bundle.trust import key_id, load_public_key
    from dipn.outputs import KEYS, KINDS, make_directory, refuse_kinds

    # never a private key inside a bundle, a sample directory or a run, where it would travel with them
    refuse_kinds(args.out, *(kind for kind in KINDS if kind is not KEYS), role="--out")
    make_directory(args.out)
    private_path, public_path = generate_keypair(args.out, args.name)
    print(f"private key {private_path} (mode 600; keep it secret)")
    print(f"public key  {public_path} (key id {key_id(load_public_key(public_path))}; configure devices with it)")
    return 0
