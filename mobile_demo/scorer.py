"""The on-device scorer: typed events in, intent scores out, in the style of MediaPipe Tasks.

    options = IntentScorerOptions(bundle="bundle", public_key="keys/dipn-signing.pub",
                                  result_listener=uplink.submit)
    with IntentScorer.create_from_options(options) as scorer:
        scorer.on_event(Browse(ts=now, action="cart", page="Page_Cart"))
        scorer.tick(now + 60_000)

On load it opens the bundle only if the configured public key signed it (``dipn.bundle.trust``;
without a key, only with ``allow_unsigned=True``, for development), checks every file against its
sha256, picks the artifact (format and precision), and runs the bundle's golden vectors through
its own encoder and that artifact, refusing a bundle whose ids or scores differ. Each event is
checked (``mobile_demo.events``: strict mode raises ``InvalidEventError``, lenient mode drops it,
counts it and logs each reason once), repaired where the contract allows (``mobile_demo.sanitize``),
encoded once on arrival (the same ``dipn.features`` code as training) and appended to a bounded
ring buffer per view; scoring reads the buffers as they are and applies what only the scoring
moment t decides (``dipn.features.inputs_at_cut``, the samples' and golden cases' own assembly), so
a score costs the model call plus O(T) work. When to score and which scores to post:
``mobile_demo.policies``. Each score goes to the result listener (the uplink's ``submit``).

Model updates (``update``): the new bundle is opened, loaded and self-tested beside the running
model, which keeps scoring meanwhile; only then, under the lock every event and score holds, is one
reference swapped to the new model and its freshly encoded buffers. A refused update leaves the
previous model running. The last ``sequence_length + 1`` accepted events of each view are kept so
the buffers can be re-encoded for the new model's feature manifest.
"""

from __future__ import annotations

import logging
import math
import numbers
import platform
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
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
from dipn.features.timing import MAX_ABS_TS
from mobile_demo.errors import DeviceError, InvalidArgumentError, InvalidEventError
from mobile_demo.events import Event
from mobile_demo.policies import PostingPolicy, ScoringPolicy
from mobile_demo.ring import ViewBuffer
from mobile_demo.sanitize import Sanitizer, wall_clock_ms

log = logging.getLogger(__name__)

FORMATS = ("tflite", "onnx", "coreml")  # "auto" tries them in this order: LiteRT is what phones run
PRECISIONS = ("fp32", "int8")
TRIGGERS = ("event", "idle", "call")


@dataclass(frozen=True)
class Score:
    """One score: both probabilities at ``ts`` (ms since the epoch), the model that computed it,
    what triggered it, and whether the posting policy sends it (``post``, with its ``post_reason``)."""

    p_realtime: float
    p_longterm: float
    ts: int
    latency_ms: float
    model_version: str
    trigger: str = "call"  # event | idle | call
    post: bool = True
    post_reason: str | None = None  # first | band | delta | heartbeat | quiet | every; None: not posted


ResultListener = Callable[[Score], Any]


@dataclass(frozen=True)
class IntentScorerOptions:
    """Everything a scorer is created from. ``bundle`` and, outside development, ``public_key``
    are the two an app must give.

    ``format``: "auto" (LiteRT, then onnxruntime, then CoreML on macOS) or one of those;
    ``precision``: "fp32", "int8" or None (the bundle's default); ``screen``: (width, height) in the
    units of the app's touch coordinates, needed only by a model that reads the swipe view;
    ``scoring_policy``: None takes the bundle's (the rule its training samples were cut with);
    ``strict``: raise ``InvalidEventError`` on a bad event (development) instead of dropping and
    counting it (production); ``result_listener``: called with every ``Score``; ``runner``: a
    runner the caller built (the PyTorch reference, ``convert.reference.TorchReference``), used
    as it is, neither self-tested nor updatable; ``clock``: the device's time in ms."""

    bundle: str | Path
    public_key: PublicKeySource | None = None
    allow_unsigned: bool = False
    format: str = "auto"
    precision: str | None = None
    threads: int = 1
    screen: tuple[float, float] | None = None
    scoring_policy: ScoringPolicy | None = None
    posting_policy: PostingPolicy = field(default_factory=PostingPolicy)
    strict: bool = False
    result_listener: ResultListener | None = None
    runner: Runner | None = None
    clock: Callable[[], float] = wall_clock_ms

    def __post_init__(self) -> None:
        if not isinstance(self.bundle, (str, Path)):
            raise InvalidArgumentError(f"bundle must be a directory path, got {type(self.bundle).__name__}")
        if not callable(self.clock):
            raise InvalidArgumentError("clock must be callable: the device's time in ms since the epoch")
        if self.format not in ("auto", *FORMATS):
            raise InvalidArgumentError(f"format must be auto or one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise InvalidArgumentError(f"precision must be fp32, int8 or None, got {self.precision!r}")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or not 1 <= self.threads <= 256:
            raise InvalidArgumentError(f"threads must be a whole number in [1, 256], got {self.threads!r}")
        for name, kind in (("scoring_policy", ScoringPolicy), ("posting_policy", PostingPolicy)):
            value = getattr(self, name)
            if value is not None and not isinstance(value, kind):
                raise InvalidArgumentError(f"{name} must be a {kind.__name__}, got {type(value).__name__}")
        if self.result_listener is not None and not callable(self.result_listener):
            raise InvalidArgumentError("result_listener must be callable with one Score")


@dataclass(frozen=True)
class LoadedModel:
    """One bundle, signature and files checked, on one artifact, self-tested: swapped as a whole."""

    bundle: Bundle
    features: FeatureManifest
    model_version: str
    input_names: tuple[str, ...]
    backend: str
    runner: Runner
    self_test: dict[str, Any]
    signer: str | None  # key id of the bundle's signature; None when loaded unsigned
    scoring_policy: ScoringPolicy | None  # the bundle's; None: an older bundle without one

    @property
    def reads_swipe(self) -> bool:
        return "swipe" in self.input_names or MERGED in self.input_names


class EncodedInputs:
    """A model's inputs as events arrive: encoder state, a ring buffer per view the model reads (ids,
    timestamps, and for browse the stay as logged) and the static groups. Built for one model's
    feature manifest; a new model gets a new one."""

    def __init__(self, model: LoadedModel, screen: tuple[float, float] | None) -> None:
        cfg = model.features.config
        self.model = model
        self.encoder = StreamEncoder(model.features, *(screen or (1.0, 1.0)))  # the screen matters to swipes only
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


def _moment(name: str, value: Any) -> int:
    """A time argument in ms since the epoch, or ``InvalidArgumentError`` (NaN, 2**70, a string)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidArgumentError(f"{name} must be milliseconds since the epoch, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not (math.isfinite(number) and 0 <= number < MAX_ABS_TS):
        raise InvalidArgumentError(f"{name} must be finite milliseconds since the epoch in [0, 2**53), got {value!r}")
    return int(number)


class IntentScorer:
    """Create with ``create_from_options``; see the module docstring and docs/device.md."""

    def __init__(self, options: IntentScorerOptions) -> None:
        if not isinstance(options, IntentScorerOptions):
            raise InvalidArgumentError(f"options must be IntentScorerOptions, got {type(options).__name__}")
        self.options = options
        self.public_key = None if options.public_key is None else load_public_key(options.public_key)
        screen = None if options.screen is None else tuple(options.screen)
        self._sanitizer = Sanitizer(*(screen or (None, None)), clock=options.clock)
        self._screen = self._sanitizer.screen
        self._lock = threading.RLock()  # events, scores and the swap; a TFLite interpreter is not thread-safe
        self._update_lock = threading.Lock()  # one update loads at a time
        self._user: dict[str, Mapping[str, float]] = {}
        self._counts: Counter[str] = Counter()
        self._dropped: Counter[str] = Counter()
        self._updates: dict[str, Any] = {"applied": 0, "refused": 0, "last_refusal": None}
        self._last_event_ts: int | None = None  # t0 of the idle schedule
        self._ticks_done = 0  # idle ticks scored (or skipped) since t0
        self._last_posted: tuple[float, float, int] | None = None
        self._closed = False
        model = self._load(options.bundle)
        self._recent = {v: deque(maxlen=model.features.config.sequence_length + 1) for v in VIEWS}
        self._active = EncodedInputs(model, self._screen)

    @classmethod
    def create_from_options(cls, options: IntentScorerOptions) -> IntentScorer:
        """Load, check and self-test the options' bundle; raises a typed error saying why not."""
        return cls(options)

    # ---- loading and updating ---------------------------------------------------------------
    @property
    def model(self) -> LoadedModel:
        """The model in use (replaced whole by ``update``)."""
        return self._active.model

    @property
    def scoring_policy(self) -> ScoringPolicy:
        """The options' policy, else the bundle's, else the defaults an older bundle was cut with."""
        return self.options.scoring_policy or self.model.scoring_policy or ScoringPolicy()

    def _load(self, bundle_dir: str | Path) -> LoadedModel:
        """Open, check and self-test a bundle; raises (``BundleIntegrityError`` and subclasses,
        ``RuntimeUnavailableError``, ``DeviceError``) without touching the model in use."""
        bundle, signer = load_trusted_bundle(bundle_dir, self.public_key, allow_unsigned=self.options.allow_unsigned)
        features = FeatureManifest.load(bundle.root / bundle.manifest["features"])
        input_names = tuple(i["name"] for i in bundle.manifest["inputs"])
        backend, runner, report = self._pick_backend(bundle)
        policy = bundle.manifest.get("scoring_policy")
        model = LoadedModel(bundle, features, str(bundle.manifest.get("model_version", "unknown")), input_names,
                            backend, runner, report, signer, None if policy is None else ScoringPolicy.from_dict(policy))
        if model.reads_swipe and self._screen is None:
            raise DeviceError(f"{bundle.root}: this model reads the swipe view; give screen=(width, height) in the "
                              "units of the app's touch coordinates")  # fmt: skip
        return model

    def _pick_backend(self, bundle: Bundle) -> tuple[str, Runner, dict[str, Any]]:
        if self.options.runner is not None:
            runner = self.options.runner
            return runner.label, runner, {"skipped": "an injected runner: the caller's reference, not an artifact"}
        formats = [a["format"] for a in bundle.artifacts]
        choice = self.options.format
        order = [f for f in FORMATS if f in formats] if choice == "auto" else [choice]
        reasons = []
        for fmt in order:
            try:
                entry = bundle.artifact(fmt, self.options.precision)
                runner = runner_for(entry, bundle.root, self.options.threads)
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
        self._check_open()
        if self.options.runner is not None:
            raise RuntimeUnavailableError("an injected runner scores one model; it cannot be updated")
        with self._update_lock:
            try:
                model = self._load(bundle_dir)  # slow; the old model keeps scoring meanwhile
            except Exception as exc:
                self._updates["refused"] += 1
                self._updates["last_refusal"] = str(exc)
                raise
            with self._lock:
                self._active = self._reencoded(model)
                self._updates["applied"] += 1
        return model

    def _reencoded(self, model: LoadedModel) -> EncodedInputs:
        """The new model's inputs from the kept events and the user's values (under the lock)."""
        active = EncodedInputs(model, self._screen)
        length = model.features.config.sequence_length + 1
        for view in VIEWS:
            self._recent[view] = deque(self._recent[view], maxlen=length)
            for event in self._recent[view]:
                active.append(view, event)
        for group, values in self._user.items():
            active.set_user(group, values)
        return active

    # ---- events and scores ------------------------------------------------------------------
    def set_user(self, history: Mapping[str, Any] | None = None, profile: Mapping[str, Any] | None = None) -> None:
        """The user's history counts and profile levels (raw contract fields), as the app knows them;
        values that are no numbers count as 0 (counted in ``status()["repaired"]``), never raise.
        The posting policy starts afresh: the next score is posted."""
        self._check_open()
        with self._lock:
            for group, values in (("history", history), ("profile", profile)):
                if values is not None:
                    clean = self._sanitizer.clean_static(group, values)
                    self._active.set_user(group, clean)
                    self._user[group] = clean
            self._last_posted = None

    def on_event(self, event: Event) -> Score | None:
        """Take one event, in time order; returns its score when the scoring policy scores events.
        A bad event raises ``InvalidEventError`` in strict mode; in lenient mode it is dropped,
        counted in ``status()["dropped"]`` and its reason logged once, and None is returned."""
        self._check_open()
        with self._lock:
            clean = self._accept(event)
            if clean is None:
                return None
            view = event.view
            self._recent[view].append(clean)
            self._counts["events_encoded" if self._active.append(view, clean) else "events_unused"] += 1
            ts = int(clean["ts"])
            if self._last_event_ts is None or ts > self._last_event_ts:
                if self._last_event_ts is not None:
                    self._counts["ticks_skipped"] += self._due_ticks(ts - 1) - self._ticks_done
                self._last_event_ts, self._ticks_done = ts, 0
            if not self.scoring_policy.on_event:
                return None
            return self._score(ts, "event", quiet_after=self.scoring_policy.ticks_per_idle == 0)

    def _accept(self, event: Any) -> dict[str, Any] | None:
        """The event's repaired row, or None (lenient) / ``InvalidEventError`` (strict) for a bad one."""
        problem = event.problem() if isinstance(event, Event) else InvalidEventError(
            type(event).__name__, "event", "not a typed event", "use Page, Swipe, Touch, Tap or Browse")
        clean = None
        if problem is None:
            clean = self._sanitizer.clean(event.view, event.row())
            if clean is None:
                problem = InvalidEventError(type(event).__name__, *self._sanitizer.last_drop)
        if problem is None:
            return clean
        if self.options.strict:
            raise problem
        if not self._dropped[problem.reason]:
            log.warning("dropped an event: %s (strict=False; later drops for this reason are counted in "
                        "status()['dropped'] only)", problem)  # fmt: skip
        self._dropped[problem.reason] += 1
        return None

    def _due_ticks(self, now: int) -> int:
        """How many idle ticks after the last event are due at ``now`` (capped by the idle limit)."""
        policy = self.scoring_policy
        if self._last_event_ts is None or policy.timer_ms is None or now <= self._last_event_ts:
            return self._ticks_done
        return max(self._ticks_done, min(policy.ticks_per_idle, (now - self._last_event_ts) // policy.timer_ms))

    def tick(self, now: int | float | None = None) -> list[Score]:
        """The idle timer: scores every idle tick moment <= ``now`` (ms; None: the clock) not yet
        scored since the last event, in order (none without a timer or after the idle limit)."""
        self._check_open()
        with self._lock:
            at = self._now() if now is None else _moment("now", now)
            due = self._due_ticks(at)
            scores = []
            policy = self.scoring_policy
            while self._ticks_done < due:
                self._ticks_done += 1
                moment = self._last_event_ts + self._ticks_done * policy.timer_ms
                scores.append(self._score(moment, "idle", quiet_after=self._ticks_done == policy.ticks_per_idle))
            return scores

    def score(self, ts: int | float | None = None) -> Score:
        """Score at ``ts`` (ms; None: now), whatever the policy: an explicit call."""
        self._check_open()
        with self._lock:
            return self._score(self._now() if ts is None else _moment("ts", ts), "call", quiet_after=False)

    def inputs(self, at: int | float | None = None) -> dict[str, np.ndarray]:
        """The model's inputs of a score at ``at`` (ms since the epoch; None: now)."""
        self._check_open()
        with self._lock:
            return self._active.inputs(self._now() if at is None else _moment("at", at))

    def _score(self, at: int, trigger: str, quiet_after: bool) -> Score:
        active = self._active  # one model for the whole call
        started = time.perf_counter()
        p = active.model.runner.scores(active.inputs(at))[0]
        latency = (time.perf_counter() - started) * 1000
        p_realtime, p_longterm = float(p[0]), float(p[1])
        reason = self.options.posting_policy.reason_to_post(p_realtime, p_longterm, at, self._last_posted, quiet_after)
        if reason is not None:
            self._last_posted = (p_realtime, p_longterm, at)
        score = Score(p_realtime, p_longterm, at, latency, active.model.model_version, trigger, reason is not None,
                      reason)  # fmt: skip
        self._counts[f"scores_{trigger}"] += 1
        self._counts["scores_posted" if score.post else "scores_not_posted"] += 1
        self._deliver(score)
        return score

    def _deliver(self, score: Score) -> None:
        listener = self.options.result_listener
        if listener is None:
            return
        try:
            listener(score)
        except Exception:  # noqa: BLE001 (the app's listener must not break scoring; it is logged and counted)
            if not self._counts["listener_errors"]:
                log.exception("the result listener raised (later errors are counted in status() only)")
            self._counts["listener_errors"] += 1

    def _now(self) -> int:
        return _moment("the clock", self.options.clock())

    def _check_open(self) -> None:
        if self._closed:
            raise DeviceError("this IntentScorer is closed")

    # ---- status and lifetime ----------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """What the scorer runs and what it did: model, backend, policies (and where the scoring
        policy came from), counts of events, drops by reason, repairs, scores, updates."""
        model = self.model
        source = ("options" if self.options.scoring_policy else "bundle" if model.scoring_policy
                  else "defaults (the bundle records no scoring_policy)")  # fmt: skip
        return {"backend": model.backend, "runtime": getattr(model.runner, "label", model.backend),
                "model_version": model.model_version, "inputs": list(model.input_names), "signer": model.signer,
                "scoring_policy": self.scoring_policy.to_dict() | {"source": source},
                "posting_policy": asdict(self.options.posting_policy), "strict": self.options.strict,
                "counts": dict(self._counts), "dropped": dict(self._dropped),
                "repaired": dict(self._sanitizer.counts), "self_test": model.self_test,
                "updates": dict(self._updates), "closed": self._closed}  # fmt: skip

    def close(self) -> None:
        """Release the model; later calls raise ``DeviceError``. Closing twice is harmless."""
        with self._lock:
            self._closed = True
            close = getattr(self.model.runner, "close", None)
            if callable(close):
                close()

    def __enter__(self) -> IntentScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
