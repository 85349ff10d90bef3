"""``dipn check-port``: judge a port of the device (its ids and scores of a bundle's golden cases).

Reads the bundle with ``dipn.bundle`` alone (numpy, no torch): a phone team runs it beside their
build without the training stack."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check-port",
        help="check a port of the device (TypeScript, Kotlin, Swift): its ids and scores of the bundle's golden cases",
        description="Compare PORT_RESULTS.json, what a port of the encoder and runtime produced for the golden "
        "cases of BUNDLE (golden.json), with the golden ids and scores: ids must be equal, scores within the "
        "bundle's tolerance of each artifact's precision. Prints each mismatch by case, input, row and field. "
        "Exit code 0 when everything matches, 1 on any mismatch, 2 when an input cannot be read. "
        "The layout of PORT_RESULTS.json is in docs/device.md (Porting and the port checker).",
    )
    p.add_argument("bundle", type=Path, help="the bundle directory (from dipn convert)")
    p.add_argument("results", type=Path, help="PORT_RESULTS.json written by the port")
    p.add_argument("--precision", choices=["fp32", "int8"],
                   help="check the artifacts of this precision only (default: every artifact the results score)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of lines")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dipn.bundle.manifest import load_bundle
    from dipn.bundle.port_check import check_port, read_port_results

    bundle = load_bundle(args.bundle)
    report = check_port(bundle, read_port_results(args.results), args.precision)
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
        return 0 if report.ok else 1
    checked = ", ".join(f"{path} (tolerance {tol:g})" for path, tol in report.artifacts.items())
    print(f"port {report.port!r} against {args.bundle} ({report.model_version}): {len(report.cases)} golden cases, "
          f"ids of {', '.join(report.inputs)}; scores of {checked}")  # fmt: skip
    for line in report.mismatches:
        print(f"  MISMATCH {line}")
    worst = ", ".join(f"{path} max |diff| {diff:.2g}" for path, diff in report.max_abs_diff.items())
    if report.ok:
        print(f"OK: every id equal, every score within tolerance ({worst})")
        return 0
    print(f"FAILED: {len(report.mismatches)} mismatch line(s) ({worst})")
    return 1
