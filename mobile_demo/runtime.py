"""The on-device wrapper: raw touch and browse events in, intent scores out.

On load it checks every file of the bundle against its sha256, picks a backend, and runs the
bundle's golden vectors through its own encoder and that backend, refusing a bundle whose ids or
scores differ. Each event is sanitized, encoded once on arrival (the same ``dipn.features`` code
as training) and appended to a bounded ring buffer per view; scoring reads the buffers as they are
(no re-encoding), so an incremental score costs the model call plus O(1) work.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convert.errors import RuntimeUnavailableError
from convert.runners import runner_for
from convert.verify import load_bundle, self_test
from dipn.data.store import merge_by_time
from dipn.features import SEQUENCE_GROUPS, STATIC_ENCODERS, FeatureManifest, StreamEncoder
from dipn.features.columns import VIEW_COLUMNS
from mobile_demo.ring import ViewBuffer
from mobile_demo.sanitize import Sanitizer

VIEWS = tuple(g.value for g in SEQUENCE_GROUPS)
# Preference of backends for "auto": LiteRT (what phones run), then onnxruntime, then CoreML (macOS).
AUTO_ORDER = ("tflite", "onnx", "coreml")


@dataclass(frozen=True)
class Score:
    p_realtime: float
    p_longterm: float
    ts: int
    latency_ms: float


class IntentRuntime:
    def __init__(
        self,
        bundle_dir: str | Path,
        screen: tuple[float, float],
        backend: str = "auto",
        threads: int = 1,
        score_on_page_leave: bool = True,
        timer_ms: int | None = None,
        checkpoint: str | Path | None = None,
    ) -> None:
        """``backend``: "auto" (LiteRT, then onnxruntime, then CoreML on macOS), one of "tflite",
        "onnx", "coreml", or "torch" (the PyTorch reference; needs ``checkpoint`` and torch)."""
        self.checkpoint = checkpoint
        self.bundle = load_bundle(bundle_dir)  # refuses any sha256 / size mismatch
        self.manifest = FeatureManifest.load(self.bundle.root / self.bundle.manifest["features"])
        self.model_version = str(self.bundle.manifest.get("model_version", "unknown"))
        self.input_names = [i["name"] for i in self.bundle.manifest["inputs"]]
        self.backend, self.runner, self.self_test = self._pick_backend(backend, threads)
        cfg = self.manifest.config
        self.encoder = StreamEncoder(self.manifest, *screen)
        self.sanitizer = Sanitizer(*screen)
        # Only the views the model reads are encoded and buffered (a browse-only model from a
        # public log never pays for swipes); early fusion reads all three.
        views = VIEWS if "merged" in self.input_names else tuple(v for v in VIEWS if v in self.input_names)
        self.buffers = {v: ViewBuffer(cfg.sequence_length, cfg.width(v)) for v in views}
        never = int(np.iinfo(np.int64).min)  # timestamp of padding: sorts before every event
        self.times = ({v: ViewBuffer(cfg.sequence_length, 1, np.int64, never) for v in VIEWS}
                      if "merged" in self.input_names else {})  # fmt: skip
        self.static = {g: np.zeros((1, cfg.width(g)), np.int32) for g in STATIC_ENCODERS}
        self.score_on_page_leave = score_on_page_leave
        self.timer_ms = timer_ms
        self.last_score_ts: int | None = None
        self.events_encoded = 0
        self.events_unused = 0  # valid events of views the model does not read

    def _pick_backend(self, backend: str, threads: int) -> tuple[str, Any, dict[str, Any]]:
        if backend == "torch":
            return "torch", TorchReference(self.checkpoint), {"skipped": "the reference is the model itself"}
        formats = [a["format"] for a in self.bundle.artifacts]
        order = [f for f in AUTO_ORDER if f in formats] if backend == "auto" else [backend]
        reasons = []
        for fmt in order:
            try:
                entry = self.bundle.artifact(fmt)
                runner = runner_for(entry, self.bundle.root, threads)
            except RuntimeUnavailableError as exc:
                reasons.append(f"{fmt}: {exc}")
                continue
            return fmt, runner, self_test(self.bundle, entry, runner)  # refuses on any disagreement
        raise RuntimeUnavailableError(
            f"no usable backend on {platform.system()} for {self.bundle.root}: " + "; ".join(reasons or ["none requested"])
        )

    def set_user(self, history: Mapping[str, int] | None = None, profile: Mapping[str, int] | None = None) -> None:
        """The user's history counts and profile levels (raw contract fields), as the app knows them."""
        for group, values in (("history", history), ("profile", profile)):
            if values is not None:
                columns = {n: np.array([values.get(n, 0)]) for n in VIEW_COLUMNS[group] if n != "user_id"}
                self.static[group] = STATIC_ENCODERS[group](columns, self.manifest).astype(np.int32)

    def on_event(self, view: str, event: Mapping[str, Any]) -> Score | None:
        """Take one raw event; returns a score when the event is a trigger (leaving a page)."""
        clean = self.sanitizer.clean(view, event)
        if clean is None:
            return None
        if view in self.buffers:
            self.buffers[view].append(self.encoder.encode(view, clean))
            if self.times:
                self.times[view].append(np.array([clean["ts"]]))
            self.events_encoded += 1
        else:
            self.events_unused += 1
        ts = int(clean["ts"])
        if self.score_on_page_leave and self._leaves_page(view, clean):
            return self.score(ts)
        if self.timer_ms is not None and (self.last_score_ts is None or ts - self.last_score_ts >= self.timer_ms):
            return self.score(ts)
        return None

    def _leaves_page(self, view: str, event: Mapping[str, Any]) -> bool:
        """A swipe ``leave_page``; for a model without the swipe view, a browse event, which the
        app logs when the page is left (its stay time is known only then)."""
        if view == "swipe":
            return event.get("type") == "leave_page"
        return view == "browse" and "swipe" not in self.buffers

    def inputs(self) -> dict[str, np.ndarray]:
        """The model's inputs as the buffers hold them now (views are read without copying)."""
        out = {v: buffer.window()[None] for v, buffer in self.buffers.items()} | dict(self.static)
        if self.times:
            times = [self.times[v].window()[None, :, 0] for v in VIEWS]
            out["merged"] = merge_by_time([out[v] for v in VIEWS], times)
        return {n: out[n] for n in self.input_names}

    def score(self, ts: int | None = None) -> Score:
        """Score now (an explicit call or a timer)."""
        started = time.perf_counter()
        p = self.runner.scores(self.inputs())[0]
        latency = (time.perf_counter() - started) * 1000
        self.last_score_ts = int(ts if ts is not None else time.time() * 1000)
        return Score(float(p[0]), float(p[1]), int(ts if ts is not None else time.time() * 1000), latency)

    def status(self) -> dict[str, Any]:
        return {"backend": self.backend, "runtime": getattr(self.runner, "label", self.backend),
                "model_version": self.model_version, "inputs": list(self.input_names),
                "events_encoded": self.events_encoded, "events_unused": self.events_unused,
                "sanitizer": dict(self.sanitizer.counts), "self_test": self.self_test}  # fmt: skip


class TorchReference:
    """The PyTorch model itself as a backend: the reference the artifacts are checked against."""

    label = "torch"

    def __init__(self, checkpoint: str | Path | None) -> None:
        if checkpoint is None:
            raise RuntimeUnavailableError("the torch backend needs the checkpoint (checkpoint=...)")
        from convert.signature import torch_scores
        from dipn.training.checkpoint import load_model

        self.model, _, _ = load_model(checkpoint)
        self._scores = torch_scores

    def scores(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        return self._scores(self.model, inputs)

