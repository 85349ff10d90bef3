/**
 * The device in TypeScript, mirroring mobile_demo/scorer.py's IntentScorer: raw events in, scores
 * out, at the moments the bundle's scoring policy names, each marked with whether the posting
 * policy sends it (policy.ts). Each event is checked and repaired as mobile_demo/sanitize.py does
 * where the moment matters (a ts more than 5 min ahead of the device clock is dropped; a ts before
 * its view's last one is clamped to it), encoded once on arrival into its view's window, and
 * scored at its own (repaired) timestamp: a second event at the same millisecond scores that
 * moment again, and the later score supersedes. A score reads the windows as they are and applies
 * what only the scoring moment decides (assemble.ts). Calls are serialized: events arriving while
 * a score runs wait for it, so each score sees exactly the events before it.
 */
import { InputAssembler, VIEWS, ViewWindow, rawStay } from "./assemble.js";
import type { Inputs } from "./assemble.js";
import type { LoadedBundle } from "./bundle.js";
import { StreamEncoder, checkedTimestamp } from "./encoder.js";
import type { RawEvent } from "./encoder.js";
import { PortError } from "./errors.js";
import { scoringPolicy } from "./manifest.js";
import type { ScoringPolicy } from "./manifest.js";
import { DEFAULT_POSTING, PostingPolicy, TickSchedule } from "./policy.js";
import type { PostReason, PostingPolicyOptions } from "./policy.js";
import type { Scorer } from "./scorer.js";

/** How far an event may be ahead of the device clock (mobile_demo.sanitize.MAX_AHEAD_MS). */
export const MAX_AHEAD_MS = 5 * 60_000;

export type Trigger = "event" | "idle" | "call";

export interface Score {
  p_realtime: number;
  p_longterm: number;
  ts: number;
  latency_ms: number;
  model_version: string;
  trigger: Trigger;
  /** Whether the posting policy sends this score, and why (null: not posted). */
  post: boolean;
  post_reason: PostReason | null;
}

export interface ViewEvent {
  view: string;
  event: RawEvent;
}

export interface DeviceOptions {
  bundle: LoadedBundle;
  scorer: Scorer;
  screen: readonly [number, number];
  /** Raise on a bad event (development) instead of dropping and counting it (production). */
  strict?: boolean;
  /** Overrides the bundle's scoring policy (tests). */
  policy?: ScoringPolicy;
  /** The posting policy (default: DEFAULT_POSTING, mobile_demo.policies.PostingPolicy's defaults). */
  posting?: PostingPolicyOptions;
  /** The device's time in ms since the epoch (default Date.now): events are bounded by it. */
  clock?: () => number;
  listener?: (score: Score) => void;
  /** Called with each event the device took (as repaired), in the order scores see them. */
  eventListener?: (event: ViewEvent) => void;
}

export class Device {
  readonly policy: ScoringPolicy;
  readonly policyRecorded: boolean;
  /** Drops by reason (IntentScorer.status()["dropped"]). */
  readonly dropped = new Map<string, number>();
  /** Events, scores by trigger, posted or not, ticks skipped, repairs (status()["counts"] and ["repaired"]). */
  readonly counts = new Map<string, number>();
  private readonly encoder: StreamEncoder;
  private readonly assembler: InputAssembler;
  private readonly windows = new Map<string, ViewWindow>();
  private readonly statics = new Map<string, Int32Array>();
  private readonly lastTs = new Map<string, number>(); // per view, as repaired (Sanitizer.last_ts)
  private readonly ticks: TickSchedule;
  private readonly posting: PostingPolicy;
  private readonly clock: () => number;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: DeviceOptions) {
    const { bundle } = options;
    const recorded = scoringPolicy(bundle.manifest);
    this.policy = options.policy ?? recorded.policy;
    this.policyRecorded = options.policy === undefined && recorded.recorded;
    this.encoder = new StreamEncoder(bundle.spec, options.screen);
    this.assembler = new InputAssembler(bundle.spec, bundle.inputNames);
    for (const view of VIEWS) this.windows.set(view, new ViewWindow(bundle.spec.length, bundle.spec.width(view)));
    this.ticks = new TickSchedule(this.policy);
    this.posting = new PostingPolicy(options.posting ?? DEFAULT_POSTING);
    this.clock = options.clock ?? Date.now;
  }

  /** The user's history counts and profile levels (raw contract fields). The posting policy
   * starts afresh: the next score is posted. */
  setUser(history?: Record<string, number>, profile?: Record<string, number>): void {
    if (history !== undefined) this.statics.set("history", this.options.bundle.spec.staticIds("history", history));
    if (profile !== undefined) this.statics.set("profile", this.options.bundle.spec.staticIds("profile", profile));
    this.posting.reset();
  }

  /** Events in time order, one at a time as IntentScorer.on_event takes them: each accepted event
   * is scored at its own (repaired) timestamp when the policy scores events; an event later than
   * every event before it restarts the idle schedule, and the ticks due before it that tick()
   * never drove are skipped (counted in counts "ticks_skipped"), not scored late. A bad event is
   * dropped and counted (lenient) or raises PortError (strict). */
  onEvents(events: readonly ViewEvent[]): Promise<Score[]> {
    return this.serialized(async () => {
      const scores: Score[] = [];
      for (const { view, event } of events) {
        const ts = this.accept(view, event);
        if (ts === undefined) continue;
        this.count("ticks_skipped", this.ticks.event(ts));
        if (this.policy.on_event) scores.push(await this.scoreAt(ts, "event", this.ticks.ticksPerIdle === 0));
      }
      return scores;
    });
  }

  /** The idle timer: every tick moment <= now not scored since the latest event, in order (none
   * without a timer or after the idle limit). The app calls it from its own timer. */
  tick(now: number): Promise<Score[]> {
    return this.serialized(async () => {
      const scores: Score[] = [];
      for (const { moment, last } of this.ticks.due(now)) scores.push(await this.scoreAt(moment, "idle", last));
      return scores;
    });
  }

  /** A score at `ts` asked for by the app, whatever the policy. */
  score(ts: number): Promise<Score> {
    return this.serialized(() => this.scoreAt(ts, "call", false));
  }

  /** The model's inputs at `ts` (what a score at ts would read). */
  inputs(ts: number): Inputs {
    return this.assembler.inputsAt(ts, { windows: this.windows, statics: this.statics });
  }

  private serialized<T>(job: () => Promise<T>): Promise<T> {
    const next = this.queue.then(job, job);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private count(name: string, by = 1): void {
    if (by !== 0) this.counts.set(name, (this.counts.get(name) ?? 0) + by);
  }

  /** The event's timestamp as Sanitizer.clean repairs it, or a PortError naming why it is dropped. */
  private repairedTs(view: string, event: RawEvent): number {
    if (event["ts"] === null || event["ts"] === undefined) throw new PortError(`${view} event has no ts`);
    const ts = checkedTimestamp(event["ts"], `${view} event`);
    if (ts < 0) throw new PortError(`${view} event: ts must be milliseconds since the epoch, got ${ts}`);
    const now = this.clock();
    if (ts > now + MAX_AHEAD_MS) throw new PortError(`${view} event: ts more than ${MAX_AHEAD_MS / 60_000} min ahead of the device clock`);
    let last = this.lastTs.get(view);
    if (last !== undefined && last > now + MAX_AHEAD_MS) { // the device clock went back: follow it
      last = undefined;
      this.count("clock_reset");
    }
    if (last !== undefined && ts < last) {
      this.count("clamped_time_backwards");
      return last;
    }
    return ts;
  }

  /** Check, repair, encode and keep one event; its repaired ts, or undefined when it was dropped (lenient mode). */
  private accept(view: string, raw: RawEvent): number | undefined {
    try {
      const window = this.windows.get(view);
      if (window === undefined) throw new PortError(`unknown view ${JSON.stringify(view)}; expected one of ${VIEWS.join(", ")}`);
      const ts = this.repairedTs(view, raw);
      const event: RawEvent = ts === raw["ts"] ? raw : { ...raw, ts };
      const row = this.encoder.encode(view, event);
      window.append(row, ts, rawStay(this.options.bundle.spec, event));
      this.lastTs.set(view, ts);
      this.count("events_encoded");
      this.options.eventListener?.({ view, event });
      return ts;
    } catch (error) {
      if (this.options.strict === true || !(error instanceof PortError)) throw error;
      const reason = error.message;
      if (!this.dropped.has(reason)) console.warn(`dipn: dropped an event: ${reason}`);
      this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1);
      return undefined;
    }
  }

  private async scoreAt(ts: number, trigger: Trigger, quietAfter: boolean): Promise<Score> {
    const started = performance.now();
    const [realtime, longterm] = await this.options.scorer.scores(this.inputs(ts));
    const latency = performance.now() - started;
    const reason = this.posting.offer({ p_realtime: realtime, p_longterm: longterm, ts }, quietAfter);
    const score: Score = {
      p_realtime: realtime, p_longterm: longterm, ts, latency_ms: latency,
      model_version: this.options.bundle.modelVersion, trigger, post: reason !== null, post_reason: reason,
    };
    this.count(`scores_${trigger}`);
    this.count(reason !== null ? "scores_posted" : "scores_not_posted");
    try {
      this.options.listener?.(score);
    } catch (error) { // the app's listener must not break scoring (IntentScorer._deliver): logged once, counted
      if (!this.counts.has("listener_errors")) console.error("dipn: the result listener raised (later errors are counted only)", error);
      this.count("listener_errors");
    }
    return score;
  }
}
