"""The whole conversion: checkpoint -> artifacts -> parity on the eval split -> ``bundle/``.

    bundle/
      model.onnx  model.int8.onnx            ONNX, opset 17 (dynamic batch)
      model.tflite  model.int8.tflite        TFLite, one WHILE loop (batch 1)
      model.mlpackage/  model.int8.mlpackage/   CoreML ML program (batch 1)
      features.json                          the feature manifest (the encoder's complete spec)
      golden.json                            raw event streams, their ids, each artifact's scores
      manifest.json                          model version, input signature, every file's sha256
                                             and size, parity figures, checkpoint metrics,
                                             minimum runtime versions, the scoring policy the
                                             training samples were cut with
      manifest.sig                           Ed25519 signature of manifest.json, with a signing
                                             key (convert.signing); devices refuse bundles
                                             without a signature of the key they trust

Every artifact is run on held-out samples right after it is written and compared with PyTorch
fp32 (``convert.parity``). If any fails the gate (NaN; or scores apart from PyTorch's and an AUC
drop above ``max_auc_drop`` where the samples can measure one, see ``convert.parity``), the
bundle is still written, for inspection, with ``status: "rejected"`` (``dipn.bundle.manifest`` refuses
to load it) and ``ParityGateError`` is raised. The bundle is assembled in a temporary directory
beside ``out`` and moved into place at the end (``dipn.outputs.replacing``), so an interrupted
conversion never leaves a half-written bundle under ``out``, and the next conversion removes the
temporary directory a killed one left.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from convert import golden as golden_vectors
from convert.errors import ConversionError, ParityGateError
from convert.parity import AGREEMENT, DEFAULT_MAX_AUC_DROP, Parity, compare, gate, measurable_pairs
from convert.quantize import ONNX_INT8, CoremlWeights, quantize_onnx, recipes
from convert.signing import load_private_key, sign_bundle
from convert.signature import example_inputs, input_signature, labels_of, model_inputs, output_signature, torch_scores
from dipn.bundle.errors import RuntimeUnavailableError
from dipn.bundle.golden import GOLDEN_FORMAT, real_rows
from dipn.bundle.manifest import BUNDLE_FORMAT, MANIFEST, describe_files, sha256_file
from dipn.bundle.selftest import encode_case
from dipn.bundle.trust import SIGNATURE
from dipn.outputs import BUNDLE, replacing

FORMATS = ("onnx", "tflite", "coreml")
FILE_NAMES = {
    ("onnx", "fp32"): "model.onnx",
    ("onnx", "int8"): "model.int8.onnx",
    ("tflite", "fp32"): "model.tflite",
    ("tflite", "int8"): "model.int8.tflite",
    ("coreml", "fp32"): "model.mlpackage",
    ("coreml", "int8"): "model.int8.mlpackage",
}
LOOP_NAME = {"onnx": "GRU", "tflite": "WHILE", "coreml": "while_loop"}  # what a recurrence became
RUNTIME_PACKAGES = ("torch", "onnx", "onnxruntime", "tensorflow-cpu", "tensorflow", "ai-edge-litert",
                    "coremltools", "litert-torch", "numpy")  # fmt: skip


@dataclass(frozen=True)
class ConvertOptions:
    formats: tuple[str, ...] = FORMATS
    quantize: str | None = "int8"  # None: fp32 artifacts only
    max_auc_drop: float = DEFAULT_MAX_AUC_DROP
    parity_samples: int | None = 4000  # eval samples scored by every artifact (None: all)
    seed: int = 0  # which eval samples, when capped
    threads: int = 1
    tflite_route: str = "tf-while"
    coreml_weights: str = "int8"  # int8 | palette6 | palette4
    signing_key: Path | None = None  # Ed25519 private key (dipn keygen): sign manifest.json (convert.signing)

    def __post_init__(self) -> None:
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown or not self.formats:
            raise ConversionError(f"--to: unknown format(s) {unknown}; choose from {','.join(FORMATS)}")
        if self.quantize not in (None, "int8"):
            raise ConversionError(f"--quantize: only int8 is supported, got {self.quantize!r}")
        if not 0 <= self.max_auc_drop < 1:
            raise ConversionError("--max-auc-drop must be in [0, 1)")
        if self.parity_samples is not None and self.parity_samples < 2:
            raise ConversionError("--parity-samples must be at least 2")
        if self.threads < 1:
            raise ConversionError(f"--threads must be >= 1, got {self.threads}")
        CoremlWeights(self.coreml_weights)  # validates the mode


Progress = Callable[[str], None]


def _versions() -> dict[str, str]:
    out = {}
    for name in RUNTIME_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


class _Conversion:
    """State of one conversion; each ``_<format>`` method adds its artifacts."""

    def __init__(self, checkpoint: Path, samples: Path, options: ConvertOptions, progress: Progress) -> None:
        from dipn.samples.store import SampleStore
        from dipn.training.batches import subset
        from dipn.training.checkpoint import load_model

        self.start = time.perf_counter()
        self.options, self.progress = options, progress
        self.checkpoint = Path(checkpoint)
        self.model, self.features, self.ckpt = load_model(self.checkpoint)
        self.store = SampleStore(samples)
        if self.store.manifest != self.features:
            raise ConversionError(
                f"{samples} was encoded with a different features.json than {checkpoint} was trained "
                f"with; parity needs samples built with the checkpoint's feature manifest"
            )
        pool = self.store.indices("eval")
        if len(pool) < 2:
            raise ConversionError(f"{samples}: the eval split has {len(pool)} samples; parity needs some")
        self.indices = subset(pool, options.parity_samples, options.seed)
        self.names = tuple(self.model.input_names)
        self.tasks = tuple(self.model.tasks)
        self.inputs = model_inputs(self.store, self.indices, self.names)
        self.labels = labels_of(self.store, self.indices)
        self.example = example_inputs(self.model, self.inputs)
        cases = golden_vectors.golden_cases(self.features)
        self.golden_cases = cases
        self.golden_encoded = [encode_case(c, self.features, self.names) for c in cases]
        self.golden_inputs = golden_vectors.stack_inputs(self.golden_encoded)
        self.artifacts: list[dict[str, Any]] = []
        self.parities: list[Parity] = []
        self.golden_scores: dict[str, np.ndarray] = {}

    # ---- reference -------------------------------------------------------------------------
    def reference(self) -> None:
        t0 = time.perf_counter()
        self.reference_scores = torch_scores(self.model, self.inputs)
        if np.isnan(self.reference_scores).any():
            raise ConversionError(f"{self.checkpoint}: PyTorch itself gives NaN scores on the eval samples")
        self.golden_scores["pytorch"] = torch_scores(self.model, self.golden_inputs)
        aucs = compare("pytorch", "torch", self.reference_scores, self.reference_scores, self.labels, self.tasks)
        self.reference_auc = aucs.auc_reference
        shown = ", ".join(f"{t} AUC {a:.4f}" for t, a in self.reference_auc.items())
        self.progress(f"PyTorch fp32 on {len(self.indices):,} eval samples: {shown} ({time.perf_counter() - t0:.1f} s)")

    def _record(self, fmt: str, precision: str, info: dict[str, Any], scores: np.ndarray,
                golden: np.ndarray, method: str, extra: dict[str, Any] | None = None) -> None:  # fmt: skip
        name = FILE_NAMES[(fmt, precision)]
        parity = compare(name, method, self.reference_scores, scores, self.labels, self.tasks, precision)
        self.parities.append(parity)
        self.golden_scores[name] = golden
        path = self.tmp / name
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
        entry = {"format": fmt, "precision": precision, "path": name, "bytes": size,
                 "batch": "dynamic" if fmt == "onnx" else 1, **info, **(extra or {}),
                 "parity": parity.to_dict()}  # fmt: skip
        self.artifacts.append(entry)
        drop = parity.worst_auc_drop
        self.progress(f"  {name:22s} {size / 1e6:6.2f} MB  max |diff| {parity.max_abs_diff:.2e}  "
                      f"AUC drop {drop:+.4f}  ({info.get('seconds', 0):.1f} s to convert)")  # fmt: skip

    # ---- formats ---------------------------------------------------------------------------
    def onnx(self) -> None:
        from convert.onnx_export import describe_onnx, export_onnx
        from dipn.bundle.runners.onnx import OnnxRunner

        self.progress("ONNX (torch.onnx legacy exporter, opset 17; onnxruntime dynamic int8)")
        fp32 = self.tmp / FILE_NAMES[("onnx", "fp32")]
        info = export_onnx(self.model, fp32, self.example)
        runner = OnnxRunner(fp32, self.options.threads)
        self._record("onnx", "fp32", info, runner.scores(self.inputs), runner.scores(self.golden_inputs), runner.label)
        if self.options.quantize:
            int8 = self.tmp / FILE_NAMES[("onnx", "int8")]
            t0 = time.perf_counter()
            quantization = quantize_onnx(fp32, int8, ONNX_INT8)
            info = describe_onnx(int8) | {"seconds": round(info["seconds"] + time.perf_counter() - t0, 2)}
            runner = OnnxRunner(int8, self.options.threads)
            self._record("onnx", "int8", info, runner.scores(self.inputs), runner.scores(self.golden_inputs),
                         runner.label, {"quantization": quantization})  # fmt: skip

    def tflite(self) -> None:
        from convert.tflite_export import convert_tflite
        from dipn.bundle.runners.litert import TfliteRunner

        route = self.options.tflite_route
        self.progress(f"TFLite (route {route}; dynamic-range int8)")
        paths = {"fp32": self.tmp / FILE_NAMES[("tflite", "fp32")],
                 "int8": self.tmp / FILE_NAMES[("tflite", "int8")] if self.options.quantize else None}  # fmt: skip
        infos = convert_tflite(self.model, paths["fp32"], paths["int8"], route)
        for precision, info in infos.items():
            runner = TfliteRunner(paths[precision], self.options.threads, min_versions=info["min_runtime"])
            extra = {"quantization": recipes()["tflite"]} if precision == "int8" else None
            self._record("tflite", precision, info, runner.scores(self.inputs), runner.scores(self.golden_inputs),
                         runner.label, extra)  # fmt: skip

    def coreml(self) -> None:
        from convert.coreml_export import convert_coreml, weight_quantized_model
        from dipn.bundle.runners.coreml import coreml_available, predict_coreml

        self.progress("CoreML (torch.jit.trace -> mlprogram, fp32 compute; int8 weights)")
        paths = {"fp32": self.tmp / FILE_NAMES[("coreml", "fp32")],
                 "int8": self.tmp / FILE_NAMES[("coreml", "int8")] if self.options.quantize else None}  # fmt: skip
        recipe = CoremlWeights(self.options.coreml_weights)
        infos = convert_coreml(self.model, paths["fp32"], paths["int8"], self.example, recipe)
        available, reason = coreml_available()
        for precision, info in infos.items():
            if available:
                scores = predict_coreml(paths[precision], self.inputs)
                golden = predict_coreml(paths[precision], self.golden_inputs)
                method = "coreml prediction (macOS)"
                check = {"prediction": "ran"}
            else:
                model, replaced = weight_quantized_model(paths[precision], self.model)
                scores, golden = torch_scores(model, self.inputs), torch_scores(model, self.golden_inputs)
                method = ("weights only: the package's dequantized weights in PyTorch (covers weight "
                          "quantization, not CoreML's kernels)")  # fmt: skip
                check = {"prediction": f"skipped: {reason}", "dequantized_weights_loaded": replaced}
            extra = {"check": check}
            if precision == "int8":
                extra["quantization"] = asdict(recipe)
            self._record("coreml", precision, info, scores, golden, method, extra)

    # ---- writing ---------------------------------------------------------------------------
    def write(self) -> dict[str, Any]:
        opts = self.options
        failures = gate(self.parities, opts.max_auc_drop)
        self.features.save(self.tmp / "features.json")
        golden = {
            "format": GOLDEN_FORMAT,
            "about": "raw event streams (one case each), the model inputs they encode to (real rows only: "
            "sequences are left-padded with zero rows to the input shape), and each artifact's scores "
            "[p_realtime, p_longterm]; 'pytorch' is the fp32 reference",
            "tolerance": golden_vectors.TOLERANCE,
            "cases": [
                {"name": case["name"], "raw": case,
                 "ids": {n: real_rows(enc[n]) for n in self.names},
                 "scores": {k: [round(float(x), 7) for x in v[i]] for k, v in self.golden_scores.items()}}
                for i, (case, enc) in enumerate(zip(self.golden_cases, self.golden_encoded, strict=True))
            ],
        }  # fmt: skip
        (self.tmp / "golden.json").write_text(json.dumps(golden, indent=1) + "\n")
        ckpt = self.ckpt
        checkpoint_sha = sha256_file(self.checkpoint)
        files = describe_files(self.tmp, sorted(self.tmp.iterdir()))
        manifest = {
            "format": BUNDLE_FORMAT,
            "status": "rejected" if failures else "ok",
            "model_version": f"{ckpt['model_name']}-{checkpoint_sha[:12]}",
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "model": {
                "name": ckpt["model_name"],
                "config": ckpt["model_config"],
                "tasks": list(self.tasks),
                "checkpoint": {"file": self.checkpoint.name, "sha256": checkpoint_sha,
                               "saved_at": ckpt.get("saved_at"), "git_revision": ckpt.get("git_revision"),
                               "dipn_version": ckpt.get("dipn_version"), "metrics": ckpt.get("metrics")},  # fmt: skip
            },
            "inputs": input_signature(self.model, 1),
            "outputs": output_signature(1),
            "default_precision": "int8" if opts.quantize else "fp32",
            "scoring_policy": scoring_policy_of(self.store.info),
            "features": "features.json",
            "golden": "golden.json",
            "artifacts": self.artifacts,
            "parity": {
                "reference": "PyTorch fp32 (the checkpoint as trained)",
                "split": "eval",
                "samples": len(self.indices),
                "seed": opts.seed,
                "reference_auc": self.reference_auc,
                "max_auc_drop": opts.max_auc_drop,
                "agreement": AGREEMENT,  # scores this close to PyTorch's pass (convert.parity, rule 2)
                "auc_gated_from_pairs": measurable_pairs(opts.max_auc_drop),  # rule 3, else rule 4
                "passed": not failures,
                "failures": failures,
            },
            "quantization": recipes(),
            "converted_with": _versions(),
            "conversion_seconds": round(time.perf_counter() - self.start, 1),
            "files": files,
        }
        manifest = _json_ready(manifest)
        (self.tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, allow_nan=False) + "\n")
        return manifest


def scoring_policy_of(samples_info: dict[str, Any]) -> dict[str, Any]:
    """When a device scores this model: at every event, and on the idle timer the samples were cut
    with (``dipn.samples.cuts.cut_moments``; dataset.json's ``build``), ``timer_ms`` None when they were
    cut without idle moments. Samples of a dipn too old to record the rule get its defaults."""
    from dipn.samples.cuts import IdleRule

    build = samples_info.get("build", {})
    timer = int(build.get("idle_timer_ms", IdleRule.timer_ms))
    limit = int(build.get("idle_limit_ms", IdleRule.idle_limit_ms))
    idle = limit >= timer  # cut_moments places idle cuts only then
    return {"on_event": True, "timer_ms": timer if idle else None, "idle_limit_ms": limit if idle else 0}


def _json_ready(value: Any) -> Any:
    """The manifest as strict JSON holds it: numpy scalars as Python numbers, and a figure that is
    not a number (the AUC of a task whose parity samples hold one class, a checkpoint metric that
    could not be measured) as null, never the NaN or Infinity that JSON parsers other than
    Python's refuse. The gate decided on the figures before they were written."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return value


def build_bundle(
    checkpoint: str | Path,
    samples: str | Path,
    out: str | Path,
    options: ConvertOptions | None = None,
    progress: Progress = print,
) -> dict[str, Any]:
    """Convert, check and write ``out``; returns the manifest. Raises ``ParityGateError`` (after
    writing a bundle marked rejected) when an artifact fails the gate."""
    import torch

    options = options or ConvertOptions()
    out = Path(out)
    threads = torch.get_num_threads()
    torch.set_num_threads(options.threads)  # the PyTorch reference too: no oversubscription
    try:
        manifest = _convert(Path(checkpoint), Path(samples), out, options, progress)
    finally:
        torch.set_num_threads(threads)
    progress(f"wrote {out}: converted and checked in {manifest['conversion_seconds']:.0f} s")
    if manifest["status"] != "ok":
        raise ParityGateError(
            f"parity gate failed (bundle written to {out} with status 'rejected'): "
            + "; ".join(manifest["parity"]["failures"])
        )
    return manifest


def _convert(checkpoint: Path, samples: Path, out: Path, options: ConvertOptions, progress: Progress) -> dict[str, Any]:
    # Read the key before the long conversion: a wrong path should fail in a second, not an hour.
    signer = load_private_key(options.signing_key) if options.signing_key else None
    with replacing(out, BUNDLE) as staging:
        job = _Conversion(checkpoint, samples, options, progress)
        job.tmp = staging
        steps = [("reference", job.reference)] + [(f, getattr(job, f)) for f in FORMATS if f in options.formats]
        for i, (name, step) in enumerate(steps, start=1):
            progress(f"[{i}/{len(steps)}] {name}")
            try:
                step()
            except (ImportError, RuntimeUnavailableError) as exc:
                raise ConversionError(f"{name}: {exc}") from exc
        manifest = job.write()
        if signer is not None and manifest["status"] == "ok":  # a rejected bundle is never signed
            record = sign_bundle(job.tmp, signer)
            progress(f"signed manifest.json with key {record['key_id']} -> {SIGNATURE}")
    return manifest


def size_parity_table(manifest: dict[str, Any]) -> str:
    """The Markdown table the command prints: one row per artifact."""
    tasks = manifest["model"]["tasks"]
    head = (
        ["artifact", "format", "precision", "MB", "max abs diff"]
        + [f"AUC {t}" for t in tasks]
        + ["AUC drop", "ops", "checked by"]
    )
    rows = [head, ["---"] * len(head)]
    ref = manifest["parity"]["reference_auc"]
    rows.append(
        ["PyTorch (checkpoint)", "torch", "fp32", "", "0"]
        + [f"{ref[t]:.4f}" if ref.get(t) is not None else "n/a" for t in tasks]
        + ["", "", "reference"]
    )
    for a in manifest["artifacts"]:
        p = a["parity"]
        drop = p["worst_auc_drop"]
        aucs = [f"{p['auc_artifact'][t]:.4f}" if p["auc_artifact"].get(t) is not None else "n/a" for t in tasks]
        ops = str(a.get("op_count", ""))
        loops = a.get("while_loops") or sum(a.get("recurrent_ops", {}).values())
        if loops:
            ops += f" ({loops} {LOOP_NAME[a['format']]})"
        method = p["method"].split(":")[0].split(" (")[0]
        diff = "n/a" if p["max_abs_diff"] is None else f"{p['max_abs_diff']:.2e}"
        rows.append([a["path"], a["format"], a["precision"], f"{a['bytes'] / 1e6:.2f}", diff, *aucs,
                     "n/a" if drop is None else f"{drop:+.4f}", ops, method])  # fmt: skip
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)
