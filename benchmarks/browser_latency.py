"""In-browser inference latency (onnxruntime-web, WebAssembly, 1 thread, headless Chromium) beside
onnxruntime in Python (CPU, 1 thread) on the same artifact, and what the live page downloads.

    python -m benchmarks.browser_latency                      # runs/demo: bundle and keys
    python -m benchmarks.browser_latency --bundle B --public-key K --repeat 50 --rounds 2 --out /tmp/bl

For each ONNX artifact of the bundle (fp32, int8), each round loads the live page of ``dipn shop``
(mobile_demo/web, against a ``dipn serve`` on loopback) in a fresh Chromium and times ``repeat``
calls of the artifact on the golden case with full views (``long``) in the page, then times the
same artifact on the same inputs with onnxruntime in this process; rounds alternate the two so
that background load hits both alike. Medians of all calls, and the median of the per-round
ratios. The page's download is every response the page received, by kind. The 1-minute load
average is recorded at the start and the end: on a shared machine the figures are upper bounds.
Writes benchmarks/results/browser_latency.{json,md} (or under --out).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

from benchmarks.machine import machine_info, machine_line

WEB = ROOT / "mobile_demo" / "web"
DRIVER = WEB / "dist" / "e2e" / "drive.js"
CHROMIUM = "/usr/bin/chromium"
KINDS = (("/app/", "page code (compiled TypeScript)"), ("/vendor/ort/", "onnxruntime-web (JS + WebAssembly)"),
         ("/bundle/model", "model artifact"), ("/bundle/", "bundle metadata (manifest, features, golden)"),
         ("/", "page, style, config"))  # fmt: skip


def page_run(url: str, repeat: int, out: Path) -> dict[str, Any]:
    """One fresh Chromium on the page: ``repeat`` timed inferences, the load time and every response."""
    done = subprocess.run(["node", str(DRIVER), "--url", url, "--out", str(out), "--bench", str(repeat),
                           "--chromium", CHROMIUM], capture_output=True, text=True, timeout=900)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the page run failed: {done.stderr.strip()}")
    run = json.loads(out.read_text())
    if run["error"] is not None:
        raise RuntimeError(f"the page refused the bundle: {run['error']}")
    return run


def download_by_kind(requests: list[dict[str, Any]]) -> dict[str, int]:
    """Bytes the page received, by kind (its own device posts left out)."""
    sizes = dict.fromkeys([label for _, label in KINDS], 0)
    for request in requests:
        if request["method"] != "GET":
            continue
        path = urlsplit(request["url"]).path
        label = next(label for prefix, label in KINDS if path.startswith(prefix))
        sizes[label] += int(request.get("responseBytes") or 0)
    return sizes


def python_times(bundle_dir: Path, artifact: str, repeat: int) -> tuple[list[float], str]:
    """Seconds of ``repeat`` onnxruntime calls (1 thread) on the golden case with full views."""
    from dipn.bundle.golden import input_shapes, read_golden, stored_inputs
    from dipn.bundle.manifest import load_bundle
    from dipn.bundle.runners.onnx import OnnxRunner
    from dipn.bundle.timing import timed

    bundle = load_bundle(bundle_dir)
    golden = read_golden(bundle_dir, bundle.manifest)
    case = next(c for c in golden["cases"] if c["name"] == "long")
    feeds = stored_inputs(case, input_shapes(bundle.manifest))
    runner = OnnxRunner(bundle_dir / artifact, threads=1)
    timed(lambda: runner.run_one(feeds), 3)  # warm-up: first calls allocate
    return timed(lambda: runner.run_one(feeds), repeat), runner.label


class Shop:
    """``dipn serve`` (SQLite in a temporary directory) and ``dipn shop`` for one precision."""

    def __init__(self, bundle: Path, public_key: Path, precision: str, work: Path) -> None:
        from dipn.serving.config import ServerConfig
        from dipn.serving.server import ThreadedServer, free_port

        self.enroll_token = secrets.token_urlsafe(32)  # enrollment closed, as dipn serve runs by default
        self.endpoint = ThreadedServer(ServerConfig(db_url=f"sqlite:///{work / f'serve-{precision}.db'}",
                                                    admin_token="bench", enroll_token=self.enroll_token, rate_limit=0),
                                       free_port())  # fmt: skip
        self.args = [sys.executable, "-m", "dipn.cli", "shop", "--bundle", str(bundle), "--public-key", str(public_key),
                     "--precision", precision, "--port", "0"]  # fmt: skip

    def __enter__(self) -> str:
        self.endpoint.__enter__()
        env = os.environ | {"PYTHONPATH": str(ROOT), "DIPN_ENROLL_TOKEN": self.enroll_token}  # the shop adds it
        self.process = subprocess.Popen([*self.args, "--endpoint", self.endpoint.url], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
        line = self.process.stdout.readline()
        if not line.startswith("dipn shop: "):
            self.__exit__()
            raise RuntimeError(f"dipn shop did not start: {line}{self.process.stderr.read()}")
        return line.split()[2]

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(30)
        self.endpoint.__exit__()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from dipn.bundle.manifest import load_bundle

    bundle = load_bundle(args.bundle)
    rows, download, versions = [], {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for entry in [a for a in bundle.artifacts if a["format"] == "onnx"]:
            browser_ms, python_ms, ratios, loads = [], [], [], []
            with Shop(args.bundle, args.public_key, entry["precision"], work) as url:
                for round_index in range(args.rounds):
                    run = page_run(url, args.repeat, work / f"page-{entry['precision']}-{round_index}.json")
                    page = run["times_ms"]
                    host, label = python_times(args.bundle, entry["path"], args.repeat)
                    host_ms = [t * 1e3 for t in host]
                    browser_ms += page
                    python_ms += host_ms
                    ratios.append(statistics.median(page) / statistics.median(host_ms))
                    loads.append(run["load_ms"])
                    download = download_by_kind(run["requests"])
                    versions = {"browser_runtime": run["runtime"], "python_runtime": label}
            rows.append({"artifact": entry["path"], "precision": entry["precision"], "bytes": entry["bytes"],
                         "browser_p50_ms": statistics.median(browser_ms), "python_p50_ms": statistics.median(python_ms),
                         "ratio_browser_over_python": statistics.median(ratios), "calls_each": len(browser_ms),
                         "page_ready_ms_median": statistics.median(loads), "download_bytes": download})  # fmt: skip
            print(f"{entry['path']}: browser {rows[-1]['browser_p50_ms']:.2f} ms, python {rows[-1]['python_p50_ms']:.2f} ms",
                  flush=True)  # fmt: skip
    return {"rows": rows, **versions}


def chromium_version() -> str:
    try:
        return subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def markdown(report: dict[str, Any]) -> str:
    lines = ["## Browser inference latency (WebAssembly, 1 thread)", "",
             f"`{report['command']}`; {machine_line(report['machine'])}; {report['chromium']}, Node {report['node']}; "
             f"load average {report['load_average_start'][0]:.1f} at the start, {report['load_average_end'][0]:.1f} at "
             f"the end (figures are upper bounds on a loaded machine).", "",
             f"One inference of the golden case with full views, batch 1: {report['browser_runtime']} in headless "
             f"Chromium beside {report['python_runtime']} (CPU, 1 thread) in Python, on the same artifact, alternating "
             f"rounds; medians of all calls, and the median of the per-round ratios.", "",
             "| artifact | MB | browser p50 ms | Python p50 ms | browser / Python | calls each | page ready ms |",
             "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for row in report["rows"]:
        lines.append(f"| {row['artifact']} ({row['precision']}) | {row['bytes'] / 1e6:.2f} | {row['browser_p50_ms']:.2f} | "
                     f"{row['python_p50_ms']:.2f} | {row['ratio_browser_over_python']:.2f}x | {row['calls_each']} | "
                     f"{row['page_ready_ms_median']:.0f} |")  # fmt: skip
    lines += ["", "What the live page downloads (`dipn shop`, everything served by the shop itself, no CDN), by artifact:", "",
              "| artifact | " + " | ".join(label for _, label in KINDS) + " | total MB |",
              "| --- |" + " --- |" * (len(KINDS) + 1)]  # fmt: skip
    for row in report["rows"]:
        sizes = row["download_bytes"]
        lines.append(f"| {row['artifact']} | " + " | ".join(f"{sizes.get(label, 0) / 1e3:,.0f} kB" for _, label in KINDS)
                     + f" | {sum(sizes.values()) / 1e6:.2f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=ROOT / "runs/demo/bundle")
    parser.add_argument("--public-key", type=Path, help="the bundle signer's key (default: keys/*.pub beside it)")
    parser.add_argument("--repeat", type=int, default=200, help="timed inferences per round and side")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (a fresh browser each)")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="results directory")
    args = parser.parse_args(argv)
    args.public_key = args.public_key or next(iter(sorted((args.bundle.parent / "keys").glob("*.pub"))), None)
    problems = [f"{args.bundle}: no bundle (run `make demo` first, or pass --bundle)"
                if not (args.bundle / "manifest.json").is_file() else None,
                "no public key: pass --public-key" if args.public_key is None else None,
                f"{DRIVER}: the page is not built (make setup)" if not DRIVER.is_file() else None,
                f"{CHROMIUM}: Chromium is not installed" if not Path(CHROMIUM).is_file() else None,
                "node is not installed" if shutil.which("node") is None else None]  # fmt: skip
    if any(problems):
        print("; ".join(p for p in problems if p), file=sys.stderr)
        return 2
    load_start = os.getloadavg()
    measured = measure(args)
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    command = " ".join(["python -m benchmarks.browser_latency", *(sys.argv[1:] if argv is None else argv)])
    report = {"command": command, "machine": machine_info(), "chromium": chromium_version(), "node": node,
              "load_average_start": load_start, "load_average_end": os.getloadavg(), "repeat": args.repeat,
              "rounds": args.rounds, **measured}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "browser_latency.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "browser_latency.md").write_text(markdown(report))
    print((args.out / "browser_latency.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
