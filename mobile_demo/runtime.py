"""The on-device wrapper: raw touch and browse events in, intent scores out.

On load it opens the bundle only if the configured public key signed it (``convert.signing``;
without a key, only with ``allow_unsigned=True``, for development), checks every file against its
sha256, picks a backend, and runs the bundle's golden vectors through its own encoder and that
backend, refusing a bundle whose ids or scores differ. Each event is sanitized, encoded once on
arrival (the same ``dipn.features`` code as training) and appended to a bounded ring buffer per
view; scoring reads the buffers as they are (no re-encoding) and applies what only the scoring
moment t decides (``dipn.features.cut``: the stay so far of a page still open, the recency of each
view, the hour of t), so an incremental score costs the model call plus O(T) work.

Model updates (``update``): the new bundle is opened, loaded and self-tested beside the running
model, which keeps scoring meanwhile; only then, under the lock every event and score holds, is one
reference swapped to the new model and its freshly encoded buffers. So a score is computed wholly
by one model, never by a mix, and a refused update (unsigned, another key, any file modified,
golden vectors failing) leaves the previous model running. The last ``sequence_length + 1``
sanitized events of each view are kept so the buffers can be re-encoded for the new model's
feature manifest (vocabularies change at every retraining).
"""

from __future__ import annotations

import platform
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convert.errors import RuntimeUnavailableError
from convert.runners import runner_for
from convert.signing import PublicKeySource, load_public_key, load_trusted_bundle
from convert.verify import Bundle, self_test
from dipn.data.store import merge_by_time
from dipn.features import SEQUENCE_GROUPS, STATIC_ENCODERS, FeatureManifest, StreamEncoder
from dipn.features.contract import VIEW_COLUMNS
from dipn.features.cut import NO_EVENT_TS, browse_at_cut, context_ids, event_stays
from mobile_demo.ring import ViewBuffer
from mobile_demo.sanitize import Sanitizer, wall_clock_ms

VIEWS = tuple(g.value for g in SEQUENCE_GROUPS)
# Preference of backends for "auto": LiteRT (what phones run), then onnxruntime, then CoreML (macOS).
AUTO_ORDER = ("tflite", "onnx", "coreml")


@dataclass(frozen=True)
class Score:
    p_realtime: float
    p_longterm: float
    ts: int
    latency_ms: float
    model_version: str  # of the model that computed this score (updates may swap models in between)


@dataclass(frozen=True)
class LoadedModel:
    """One bundle, signature and files checked, on one backend, self-tested: swapped as a whole."""

    bundle: Bundle
    features: FeatureManifest
    model_version: str
    input_names: tuple[str, ...]
    backend: str
    runner: Any
    self_test: dict[str, Any]
    signer: str | None  # key id of the bundle's signature; None when loaded unsigned


class EncodedInputs:
    """A model's inputs as events arrive: encoder state, a ring buffer per view the model reads (ids,
    timestamps, and for browse the stay as logged), the static groups and each view's last event
    time. Built for one model's feature manifest; a new model gets a new one."""

    def __init__(self, model: LoadedModel, screen: tuple[float, float]) -> None:
        cfg = model.features.config
        self.model = model
        self.encoder = StreamEncoder(model.features, *screen)
        # Only the views the model reads are encoded and buffered (a browse-only model from a
        # public log never pays for swipes); early fusion reads all three.
        merged = "merged" in model.input_names
        views = VIEWS if merged else tuple(v for v in VIEWS if v in model.input_names)
        self.buffers = {v: ViewBuffer(cfg.sequence_length, cfg.width(v)) for v in views}
        never = int(NO_EVENT_TS)  # timestamp of padding: sorts before every event
        self.times = {v: ViewBuffer(cfg.sequence_length, 1, np.int64, never) for v in views}
        self.stays = ViewBuffer(cfg.sequence_length, 1, np.int64, 0) if "browse" in views else None
        self.last_ts = {v: never for v in VIEWS}  # the recency inputs (a view not read: none, unread by the model)
        self.static = {g: np.zeros((1, cfg.width(g)), np.int32) for g in STATIC_ENCODERS}

    def append(self, view: str, clean: Mapping[str, Any]) -> bool:
        """Encode a sanitized event; False when the model does not read its view."""
        if view not in self.buffers:
            return False
        self.last_ts[view] = int(clean["ts"])
        self.buffers[view].append(self.encoder.encode(view, clean))
        self.times[view].append(np.array([clean["ts"]]))
        if view == "browse" and self.stays is not None:
            self.stays.append(event_stays([clean]))
        return True

    def set_user(self, group: str, values: Mapping[str, int]) -> None:
        columns = {n: np.array([values.get(n, 0)]) for n in VIEW_COLUMNS[group] if n != "user_id"}
        self.static[group] = STATIC_ENCODERS[group](columns, self.model.features).astype(np.int32)

    def inputs(self, at: int) -> dict[str, np.ndarray]:
        """The inputs of a score at time ``at`` (ms): what the phone knows then."""
        cut = np.array([at], np.int64)
        out = {v: buffer.window()[None] for v, buffer in self.buffers.items()} | dict(self.static)
        times = {v: self.times[v].window()[None, :, 0] for v in self.buffers}
        if "browse" in out and self.stays is not None:
            out["browse"] = browse_at_cut(out["browse"], times["browse"], self.stays.window()[None, :, 0], cut,
                                          self.model.features)  # fmt: skip
        out["context"] = context_ids(cut, {v: np.array([t]) for v, t in self.last_ts.items()}, self.model.features)
        if "merged" in self.model.input_names:
            out["merged"] = merge_by_time([out[v] for v in VIEWS], [times[v] for v in VIEWS])
        return {n: out[n] for n in self.model.input_names}


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
        public_key: PublicKeySource | None = None,
        allow_unsigned: bool = False,
        clock: Callable[[], float] = wall_clock_ms,
    ) -> None:
        """``backend``: "auto" (LiteRT, then onnxruntime, then CoreML on macOS), one of "tflite",
        "onnx", "coreml", or "torch" (the PyTorch reference; needs ``checkpoint`` and torch).
        ``public_key``: the model builder's Ed25519 public key (PEM file, PEM text or key object);
        bundles it did not sign are refused. Without one, only ``allow_unsigned=True`` (development)
        loads anything, with a warning. ``clock``: the device's time in ms since the epoch; events
        more than a few minutes ahead of it are dropped (``mobile_demo.sanitize``)."""
        self.checkpoint = checkpoint
        self.clock = clock  # also the time of a score that names none
        self.sanitizer = Sanitizer(*screen, clock=clock)  # refuses a screen that is no two sizes > 0
        self.screen = self.sanitizer.screen
        self.backend_choice, self.threads = backend, threads
        self.public_key = None if public_key is None else load_public_key(public_key)
        self.allow_unsigned = allow_unsigned
        self.score_on_page_leave = score_on_page_leave
        self.timer_ms = timer_ms
        self.last_score_ts: int | None = None
        self.events_encoded = 0
        self.events_unused = 0  # valid events of views the model does not read
        self.updates = {"applied": 0, "refused": 0, "last_refusal": None}
        self._lock = threading.RLock()  # events, scores and the swap; a TFLite interpreter is not thread-safe
        self._update_lock = threading.Lock()  # one update loads at a time
        self._user: dict[str, Mapping[str, int]] = {}
        model = self._load(bundle_dir)
        self._recent = {v: deque(maxlen=model.features.config.sequence_length + 1) for v in VIEWS}
        self._active = EncodedInputs(model, self.screen)

    # ---- the model in use (one reference, swapped whole) ----------------------------------------
    @property
    def model(self) -> LoadedModel:
        return self._active.model

    @property
    def bundle(self) -> Bundle:
        return self.model.bundle

    @property
    def manifest(self) -> FeatureManifest:
        return self.model.features

    @property
    def model_version(self) -> str:
        return self.model.model_version

    @property
    def input_names(self) -> list[str]:
        return list(self.model.input_names)

    @property
    def backend(self) -> str:
        return self.model.backend

    @property
    def runner(self) -> Any:
        return self.model.runner

    @property
    def self_test(self) -> dict[str, Any]:
        return self.model.self_test

    def _load(self, bundle_dir: str | Path) -> LoadedModel:
        """Open, check and self-test a bundle; raises (``BundleIntegrityError`` and subclasses,
        ``RuntimeUnavailableError``) without touching the model in use."""
        bundle, signer = load_trusted_bundle(bundle_dir, self.public_key, allow_unsigned=self.allow_unsigned)
        features = FeatureManifest.load(bundle.root / bundle.manifest["features"])
        input_names = tuple(i["name"] for i in bundle.manifest["inputs"])
        backend, runner, report = self._pick_backend(bundle, self.backend_choice, self.threads)
        return LoadedModel(bundle, features, str(bundle.manifest.get("model_version", "unknown")), input_names,
                           backend, runner, report, signer)  # fmt: skip

    def _pick_backend(self, bundle: Bundle, backend: str, threads: int) -> tuple[str, Any, dict[str, Any]]:
        if backend == "torch":
            return "torch", TorchReference(self.checkpoint), {"skipped": "the reference is the model itself"}
        formats = [a["format"] for a in bundle.artifacts]
        order = [f for f in AUTO_ORDER if f in formats] if backend == "auto" else [backend]
        reasons = []
        for fmt in order:
            try:
                entry = bundle.artifact(fmt)
                runner = runner_for(entry, bundle.root, threads)
            except RuntimeUnavailableError as exc:
                reasons.append(f"{fmt}: {exc}")
                continue
            return fmt, runner, self_test(bundle, entry, runner)  # refuses on any disagreement
        raise RuntimeUnavailableError(
            f"no usable backend on {platform.system()} for {bundle.root}: " + "; ".join(reasons or ["none requested"])
        )

    def update(self, bundle_dir: str | Path) -> LoadedModel:
        """Switch to a new bundle, atomically, once it is checked and self-tested.

        A refused bundle raises (``BundleSignatureError``, ``BundleIntegrityError``, ...) and the
        previous model keeps running; ``status()["updates"]`` counts both outcomes.
        """
        if self.backend_choice == "torch":
            raise RuntimeUnavailableError("the torch reference backend scores one checkpoint; it cannot be updated")
        with self._update_lock:
            try:
                model = self._load(bundle_dir)  # slow; the old model keeps scoring meanwhile
            except Exception as exc:
                self.updates["refused"] += 1
                self.updates["last_refusal"] = str(exc)
                raise
            with self._lock:
                self._active = self._reencoded(model)
                self.updates["applied"] += 1
        return model

    def _reencoded(self, model: LoadedModel) -> EncodedInputs:
        """The new model's inputs from the kept events and the user's values (under the lock)."""
        active = EncodedInputs(model, self.screen)
        length = model.features.config.sequence_length + 1
        for view in VIEWS:
            self._recent[view] = deque(self._recent[view], maxlen=length)
            for event in self._recent[view]:
                active.append(view, event)
        for group, values in self._user.items():
            active.set_user(group, values)
        return active

    # ---- events and scores -----------------------------------------------------------------------
    def set_user(self, history: Mapping[str, int] | None = None, profile: Mapping[str, int] | None = None) -> None:
        """The user's history counts and profile levels (raw contract fields), as the app knows them;
        values that are no numbers count as 0 (``Sanitizer.clean_static``), never raise."""
        with self._lock:
            for group, values in (("history", history), ("profile", profile)):
                if values is not None:
                    clean = self.sanitizer.clean_static(group, values)
                    self._active.set_user(group, clean)
                    self._user[group] = clean

    def on_event(self, view: str, event: Mapping[str, Any]) -> Score | None:
        """Take one raw event; returns a score when the event is a trigger (leaving a page)."""
        with self._lock:
            clean = self.sanitizer.clean(view, event)
            if clean is None:
                return None
            self._recent[view].append(clean)
            if self._active.append(view, clean):
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
        return view == "browse" and "swipe" not in self._active.buffers

    def inputs(self, at: int | None = None) -> dict[str, np.ndarray]:
        """The model's inputs of a score at ``at`` (ms since the epoch; None: now)."""
        with self._lock:
            return self._active.inputs(self._now() if at is None else int(at))

    def score(self, ts: int | None = None) -> Score:
        """Score at ``ts`` (ms; None: now): an explicit call, a page leave or the timer."""
        with self._lock:
            active = self._active  # one model for the whole call
            at = self._now() if ts is None else int(ts)
            started = time.perf_counter()
            p = active.model.runner.scores(active.inputs(at))[0]
            latency = (time.perf_counter() - started) * 1000
            self.last_score_ts = at
            return Score(float(p[0]), float(p[1]), self.last_score_ts, latency, active.model.model_version)

    def tick(self, now: int | None = None) -> Score | None:
        """The timer trigger at an idle moment: a score when ``timer_ms`` has passed since the last
        one (the app calls this from its own timer; ``now`` in ms, None: the clock)."""
        with self._lock:
            at = self._now() if now is None else int(now)
            if self.timer_ms is None or (self.last_score_ts is not None and at - self.last_score_ts < self.timer_ms):
                return None
            return self.score(at)

    def _now(self) -> int:
        return int(self.clock())

    def status(self) -> dict[str, Any]:
        model = self.model
        return {"backend": model.backend, "runtime": getattr(model.runner, "label", model.backend),
                "model_version": model.model_version, "inputs": list(model.input_names), "signer": model.signer,
                "events_encoded": self.events_encoded, "events_unused": self.events_unused,
                "sanitizer": dict(self.sanitizer.counts), "self_test": model.self_test,
                "updates": dict(self.updates)}  # fmt: skip


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

