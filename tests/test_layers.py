"""The tree's layers hold: what each package may import, read from the source of every module
(top-level and function-level imports alike), and what the device side loads when it runs.

The packages under ``dipn`` follow the data: raw logs (``dipn.logs``: readers, importers, the
simulator), samples (``dipn.samples``: cuts, labels, the store, both engines), models, training (with
its metrics), evaluation (reports, plots), the bundle and serving. Lowest first: ``dipn.errors``;
``dipn.features`` (the contract, the encoder, the input assembly, the shared names); ``dipn.bundle``
(reading, trusting and running a bundle) and ``dipn.wire`` (what leaves the phone); the device
(``mobile_demo`` without ``replay``) on those three alone. The host side: logs on features, samples
on logs, models on features, training on samples and models, evaluation on training (never the
reverse), ``convert`` (the write side of a bundle) on training and bundle, serving on wire, and the
command line over everything. Nothing under ``dipn`` imports ``benchmarks``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dipn", "convert", "mobile_demo", "benchmarks")
ANY = "*"

# layer -> the first-party layers it may import (besides itself); ANY: no restriction.
ALLOWED: dict[str, set[str] | str] = {
    "dipn": set(),  # the package root: its version
    "dipn.errors": set(),
    "dipn.features": {"dipn", "dipn.errors"},
    "dipn.bundle": {"dipn", "dipn.errors", "dipn.features"},
    "dipn.wire": set(),
    "dipn.outputs": {"dipn.errors"},
    "dipn.logs": {"dipn", "dipn.errors", "dipn.features", "dipn.outputs"},
    "dipn.samples": {"dipn", "dipn.errors", "dipn.features", "dipn.outputs", "dipn.logs"},
    "dipn.presets": {"dipn.features", "dipn", "dipn.errors"},  # plain data and group names: no torch
    "dipn.models": {"dipn.errors", "dipn.features", "dipn.presets", "dipn.outputs"},
    "dipn.training": {"dipn", "dipn.errors", "dipn.features", "dipn.samples", "dipn.models", "dipn.presets",
                      "dipn.outputs"},  # fmt: skip
    "dipn.evaluation": {"dipn.errors", "dipn.features", "dipn.samples", "dipn.models", "dipn.presets",
                        "dipn.training", "dipn.outputs"},  # fmt: skip
    "dipn.serving": {"dipn.errors", "dipn.wire"},
    "convert": {"dipn", "dipn.errors", "dipn.features", "dipn.bundle", "dipn.outputs", "dipn.samples", "dipn.models",
                "dipn.training"},  # fmt: skip
    "mobile_demo": {"dipn.errors", "dipn.features", "dipn.bundle", "dipn.wire"},
    "mobile_demo.replay": {"mobile_demo", "dipn.errors", "dipn.features", "dipn.logs", "dipn.serving"},
    "dipn.commands": {"dipn", "dipn.errors", "dipn.features", "dipn.bundle", "dipn.wire", "dipn.outputs", "dipn.logs",
                      "dipn.samples", "dipn.presets", "dipn.models", "dipn.training", "dipn.evaluation",
                      "dipn.serving", "convert", "mobile_demo", "mobile_demo.replay"},  # fmt: skip
    "dipn.cli": {"dipn", "dipn.errors", "dipn.commands"},
    "benchmarks": ANY,  # harnesses over everything; nothing imports them
}
# Third-party packages the light layers may import (the standard library always); others: any.
THIRD_PARTY: dict[str, set[str]] = {
    "dipn.features": {"numpy"},
    "dipn.bundle": {"numpy", "cryptography", "onnxruntime", "coremltools"},  # each runtime inside its runner
    "dipn.wire": {"cryptography"},
    "dipn.presets": set(),
    "mobile_demo": {"numpy", "httpx"},
}


def layer(module: str) -> str:
    """The layer a module belongs to: its package under ``dipn``, its top-level package elsewhere,
    and the replay harness, a layer of its own."""
    for own in ("mobile_demo.replay",):
        if module == own or module.startswith(own + "."):
            return own
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "dipn" and len(parts) > 1 else parts[0]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) of every import statement anywhere in the file; ``from a import b``
    names ``a.b`` when that is a module of the tree."""
    module = module_name(path)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the file's package, one level up per extra dot
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.append((node.lineno, candidate if is_module(candidate) else base))
    return found


def modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)


def test_every_layer_imports_only_what_its_row_allows() -> None:
    stdlib = sys.stdlib_module_names
    problems = []
    for path in modules():
        own = layer(module_name(path))
        assert own in ALLOWED, f"{path.relative_to(ROOT)}: layer {own!r} has no row in ALLOWED"
        allowed, third_party = ALLOWED[own], THIRD_PARTY.get(own)
        for line, imported in imports(path):
            top = imported.split(".")[0]
            where = f"{path.relative_to(ROOT)}:{line} imports {imported}"
            if top in PACKAGES:
                target = layer(imported)
                if allowed != ANY and target != own and target not in allowed:
                    problems.append(f"{where} (layer {target}, not allowed in {own})")
            elif third_party is not None and top not in stdlib and top != "__future__" and top not in third_party:
                problems.append(f"{where} (third-party, not allowed in {own})")
    assert not problems, "\n".join(problems)


def test_the_layers_form_no_cycle() -> None:
    """Each row names only layers below it: an order exists in which every layer comes after what it imports."""
    pending = {name: set(rule) for name, rule in ALLOWED.items() if rule != ANY}
    while pending:
        ready = [name for name, needs in pending.items() if not needs & set(pending)]
        assert ready, f"a cycle among {sorted(pending)}"
        for name in ready:
            del pending[name]


def test_the_import_table_reads_imports_inside_functions_too() -> None:
    """The checker sees a late import (the way a heavy runtime hides) as well as a top-level one."""
    found = dict((name, line) for line, name in imports(ROOT / "dipn" / "bundle" / "runners" / "onnx.py"))
    assert "onnxruntime" in found and "dipn.features" in found


DEVICE_RUN = """
import json, sys
from pathlib import Path
import mobile_demo.ring, mobile_demo.sanitize, mobile_demo.uplink
from mobile_demo import HOST_ONLY
from mobile_demo import IntentScorer, IntentScorerOptions
from dipn.bundle.errors import RuntimeUnavailableError
from dipn.bundle.manifest import load_bundle
from dipn.bundle.runners import runner_for
from dipn.bundle.selftest import self_test

bundle = load_bundle(Path(sys.argv[1]))
built, refused = {}, {}
for entry in bundle.artifacts:
    try:
        runner = runner_for(entry, bundle.root)
    except RuntimeUnavailableError as exc:
        refused[entry["path"]] = str(exc)
        continue
    built[entry["path"]] = self_test(bundle, entry, runner)["max_abs_diff"]
backends = {}
for fmt in sorted({a["format"] for a in bundle.artifacts}):
    try:
        options = IntentScorerOptions(bundle.root, allow_unsigned=True, format=fmt, screen=(360, 780))
        backends[fmt] = IntentScorer.create_from_options(options).score(1_790_000_000_000).p_longterm
    except RuntimeUnavailableError as exc:
        backends[fmt] = str(exc)
loaded = sorted(set(HOST_ONLY) & {m.split(".")[0] for m in sys.modules})
print(json.dumps({"built": built, "refused": refused, "backends": backends, "host_only_loaded": loaded}))
"""


def test_the_device_builds_every_runner_of_a_real_bundle_and_loads_nothing_of_the_host(tiny_bundle: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("ai_edge_litert")
    done = subprocess.run([sys.executable, "-c", DEVICE_RUN, str(tiny_bundle)], capture_output=True, text=True,
                          cwd=ROOT, check=True)  # fmt: skip
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["host_only_loaded"] == []
    formats = {a["path"]: a["format"] for a in json.loads((tiny_bundle / "manifest.json").read_text())["artifacts"]}
    assert set(report["built"]) | set(report["refused"]) == set(formats)
    assert {formats[p] for p in report["built"]} >= {"onnx", "tflite"}
    for path, reason in report["refused"].items():  # CoreML off macOS: its one-line reason
        assert formats[path] == "coreml" and sys.platform != "darwin" and "\n" not in reason and "macOS" in reason
    assert all(isinstance(report["backends"][f], float) for f in ("onnx", "tflite"))


# Read under old runtimes (tflite-runtime: numpy < 2, Python <= 3.10) where the rest of dipn does not run.
OLD_RUNTIME_MODULES = ("dipn/__init__.py", "dipn/bundle/__init__.py", "dipn/bundle/golden.py", "dipn/bundle/timing.py",
                       "dipn/bundle/litert_golden.py")  # fmt: skip


def test_what_old_runtimes_run_is_python_3_9_and_imports_numpy_and_itself_only() -> None:
    ours = {module_name(ROOT / path) for path in OLD_RUNTIME_MODULES}
    for path in OLD_RUNTIME_MODULES:
        ast.parse((ROOT / path).read_text(), path, feature_version=(3, 9))
        for line, imported in imports(ROOT / path):
            top = imported.split(".")[0]
            assert imported in ours or top in sys.stdlib_module_names or top in ("__future__", "numpy"), (
                f"{path}:{line} imports {imported}")
