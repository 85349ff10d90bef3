"""Build the emulated ARM64 phone (``make emulator``): host tools, two userlands, the instruction counter.

    python -m benchmarks.emulator.build            # builds what is missing (about 1-2 minutes, ~400 MB)
    python -m benchmarks.emulator.build --rebuild  # from scratch

Where it cannot be built (not root and tools missing, no room), it says why and exits 0: the
emulator benchmark then skips with the same reason, and nothing else depends on it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from benchmarks.emulator import rootfs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rebuild", action="store_true", help="rebuild the userlands and the plugin")
    args = parser.parse_args()
    reason = rootfs.missing_preconditions()
    if reason:
        print(f"emulator: not built here: {reason}")
        return 0
    started = time.perf_counter()
    try:
        build(args.rebuild)
    except subprocess.CalledProcessError as exc:  # a package or wheel missing from the mirror, no network
        print(f"emulator: not built here: `{' '.join(map(str, exc.cmd))}` failed (exit {exc.returncode})")
        return 0
    print(f"emulator ready under {rootfs.CACHE} in {time.perf_counter() - started:.0f} s")
    return 0


def build(rebuild: bool) -> None:
    rootfs.install_host_tools()
    for land in (rootfs.bookworm(), rootfs.bullseye()):
        stamp = land.built()
        if rebuild or stamp is None or not _wheels_match(land, stamp):
            stamp = rootfs.build_userland(land)
        print(f"{land.name}: {json.dumps(stamp)}")
    if rebuild or not rootfs.PLUGIN.exists():
        rootfs.build_insn_plugin()
    print(f"plugin: {rootfs.PLUGIN}")


def _wheels_match(land: rootfs.Userland, stamp: dict) -> bool:
    """A userland built for other pinned versions (the host's numpy or onnxruntime moved) is rebuilt."""
    pins = dict(w.lower().split("==") for w in land.wheels)
    return all(stamp["wheels"].get(name) == version for name, version in pins.items())


if __name__ == "__main__":
    sys.exit(main())
