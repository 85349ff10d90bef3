"""The on-device wrapper: raw touch and browse events in, intent scores out.

On load it opens the bundle only if the configured public key signed it (``dipn.bundle.trust``;
without a key, only with ``allow_unsigned=True``, for development), checks every file against its
sha256, picks a backend, and runs the bundle's golden vectors through its own encoder and that
backend, refusing a bundle whose ids or scores differ. Each event is sanitized, encoded once on
arrival (the same ``dipn.features`` code as training) and appended to a bounded ring buffer per
view; scoring reads the buffers as they are (no re-encoding) and applies what only the scoring
moment t decides (``dipn.features.inputs_at_cut``, the samples' and golden cases' own assembly: the
stay so far of a page still open, the recency of each view, the hour of t), so an incremental
score costs the model call plus O(T) work. Runners come from ``dipn.bundle.runners``, one per
artifact format; a caller may inject its own (the PyTorch reference, ``convert.reference``), so this
package names no torch.

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

from dipn.bundle.errors import RuntimeUnavailableError
from dipn.bundle.manifest import Bundle
from dipn.bundle.runners import Runner, runner_for
from dipn.bundle.selftest import self_test
from dipn.bundle.trust import PublicKeySource, load_public_key, load_trusted_bundle
from dipn.features import MERGED, STATIC_ENCODERS, VIEWS, FeatureManifest, StreamEncoder, inputs_at_cut, static_ids
from dipn.features.cut import NO_EVENT_TS, event_stays
from mobile_demo.ring import ViewBuffer
from mobile_demo.sanitize import Sanitizer, wall_clock_ms

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
    runner: Runner
    self_test: dict[str, Any]
    signer: str | None  # key id of the bundle's signature; None when loaded unsigned


class EncodedInputs:
    """A model's inputs as events arrive: encoder state, a ring buffer per view the model reads (ids,
    timestamps, and for browse the stay as logged) and the static groups. Built for one model's
    feature manifest; a new model gets a new one."""

    def __init__(self, model: LoadedModel, screen: tuple[float, float]) -> None:
        cfg = model.features.config
        self.model = model
        self.encoder = StreamEncoder(model.features, *screen)
        # Only the views the model reads are encoded and buffered (a browse-only model from a
        # public log never pays for swipes); early fusion reads all three.
        self.merged = MERGED in model.input_names
        views = VIEWS if self.merged else tuple(v for v in VIEWS if v in model.input_names)
        self.buffers = {v: ViewBuffer(cfg.sequence_length, cfg.width(v)) for v in views}
        never = int(NO_EVENT_TS)  # timestamp of padding: sorts before every event
        self.times = {v: ViewBuffer(cfg.sequence_length, 1, np.int64, never) for v in views}
        self.stays = ViewBuffer(cfg.sequence_length, 1, np.int64, 0) if "browse" in views else None
        self.static = {g: np.zeros((1, cfg.width(g)), np.int32) for g in STATIC_ENCODERS}

    def append(self, view: str, clean: Mapping[str, Any]) -> bool:
        """Encode a sanitized event; False when the model does not read its view."""
        if view not in self.buffers:
            return False
        self.buffers[view].append(self.encoder.encode(view, clean))
        self.times[view].append(np.array([clean["ts"]]))
        if view == "browse" and self.stays is not None:
            self.stays.append(event_stays([clean]))
        return True

    def set_user(self, group: str, values: Mapping[str, float]) -> None:
        self.static[group] = static_ids(group, values, self.model.features)

    def inputs(self, at: int) -> dict[str, np.ndarray]:
        """The inputs of a score at time ``at`` (ms): what the phone knows then."""
        windows = {v: buffer.window()[None] for v, buffer in self.buffers.items()}
        times = {v: self.times[v].window()[None, :, 0] for v in self.buffers}
        stays = None if self.stays is None else self.stays.window()[None, :, 0]
        out = inputs_at_cut(windows, times, stays, np.array([at], np.int64), self.static, self.model.features,
                            self.merged)  # fmt: skip
        return {n: out[n] for n in self.model.input_names}


class IntentRuntime:
    def __init__(
        self,
        bundle_dir: str | Path,
        screen: tuple[float, float],
        backend: str | Runner = "auto",
        threads: int = 1,
        score_on_page_leave: bool = True,
        timer_ms: int | None = None,
        public_key: PublicKeySource | None = None,
        allow_unsigned: bool = False,
        clock: Callable[[], float] = wall_clock_ms,
    ) -> None:
        """``backend``: "auto" (LiteRT, then onnxruntime, then CoreML on macOS), one of "tflite",
        "onnx", "coreml", or a runner the caller built (``scores(inputs) -> (N, 2)``, such as the
        PyTorch reference ``convert.reference.TorchReference``), used as it is: not self-tested,
        never updated.
        ``public_key``: the model builder's Ed25519 public key (PEM file, PEM text or key object);
        bundles it did not sign are refused. Without one, only ``allow_unsigned=True`` (development)
        loads anything, with a warning. ``clock``: the device's time in ms since the epoch; events
        more than a few minutes ahead of it are dropped (``mobile_demo.sanitize``)."""
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
    def runner(self) -> Runner:
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

    def _pick_backend(self, bundle: Bundle, backend: str | Runner, threads: int) -> tuple[str, Runner, dict[str, Any]]:
        if not isinstance(backend, str):
            return backend.label, backend, {"skipped": "an injected runner: the caller's reference, not an artifact"}
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
        if not isinstance(self.backend_choice, str):
            raise RuntimeUnavailableError("an injected runner scores one model; it cannot be updated")
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

