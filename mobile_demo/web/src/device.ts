/**
 * The device in TypeScript: raw events in, scores out, at the moments the bundle's scoring policy
 * names (policy.ts). Each event is encoded once on arrival into its view's window; a score reads
 * the windows as they are and applies what only the scoring moment decides (assemble.ts). Calls
 * are serialized: events arriving while a score runs wait for it, so each score sees exactly the
 * events before it.
 */
import { InputAssembler, VIEWS, ViewWindow, rawStay } from "./assemble.js";
import type { Inputs } from "./assemble.js";
import type { LoadedBundle } from "./bundle.js";
import { StreamEncoder, checkedTimestamp } from "./encoder.js";
import type { RawEvent } from "./encoder.js";
import { PortError } from "./errors.js";
import { scoringPolicy } from "./manifest.js";
import type { ScoringPolicy } from "./manifest.js";
import { TickSchedule } from "./policy.js";
import type { Scorer } from "./scorer.js";

export type Trigger = "event" | "tick" | "call";

export interface Score {
  p_realtime: number;
  p_longterm: number;
  ts: number;
  latency_ms: number;
  model_version: string;
  trigger: Trigger;
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
  listener?: (score: Score) => void;
  /** Called with each event the device took (encoded), in the order scores see them. */
  eventListener?: (event: ViewEvent) => void;
}

export class Device {
  readonly policy: ScoringPolicy;
  readonly policyRecorded: boolean;
  readonly dropped = new Map<string, number>();
  private readonly encoder: StreamEncoder;
  private readonly assembler: InputAssembler;
  private readonly windows = new Map<string, ViewWindow>();
  private readonly statics = new Map<string, Int32Array>();
  private readonly ticks: TickSchedule;
  private queue: Promise<unknown> = Promise.resolve();
  private lastMoment = -Infinity; // the latest event moment scored
  private pendingMoment: number | undefined;

  constructor(private readonly options: DeviceOptions) {
    const { bundle } = options;
    const recorded = scoringPolicy(bundle.manifest);
    this.policy = options.policy ?? recorded.policy;
    this.policyRecorded = options.policy === undefined && recorded.recorded;
    this.encoder = new StreamEncoder(bundle.spec, options.screen);
    this.assembler = new InputAssembler(bundle.spec, bundle.inputNames);
    for (const view of VIEWS) this.windows.set(view, new ViewWindow(bundle.spec.length, bundle.spec.width(view)));
    this.ticks = new TickSchedule(this.policy);
  }

  /** The user's history counts and profile levels (raw contract fields). */
  setUser(history?: Record<string, number>, profile?: Record<string, number>): void {
    if (history !== undefined) this.statics.set("history", this.options.bundle.spec.staticIds("history", history));
    if (profile !== undefined) this.statics.set("profile", this.options.bundle.spec.staticIds("profile", profile));
  }

  /** Events in arrival order. Before each, the ticks due strictly before its time are scored;
   * after the last event of each moment (a run of equal timestamps) later than every moment scored
   * so far, a score at that moment. An event at or before that (a late record, such as a page's
   * browse event logged when the page is left, stamped with its opening) is taken without a score
   * of its own: the next score includes it. */
  onEvents(events: readonly ViewEvent[]): Promise<Score[]> {
    return this.serialized(async () => {
      const scores: Score[] = [];
      for (const [i, { view, event }] of events.entries()) {
        const ts = event["ts"];
        if (typeof ts === "number" && Number.isFinite(ts)) {
          for (const moment of this.ticks.due(ts, ts)) scores.push(await this.scoreAt(moment, "tick"));
        }
        const accepted = this.accept(view, event);
        if (accepted !== undefined && accepted > this.lastMoment) this.pendingMoment = accepted;
        const pending = this.pendingMoment;
        if (pending !== undefined && events[i + 1]?.event["ts"] !== pending) {
          this.lastMoment = pending;
          this.pendingMoment = undefined;
          if (this.policy.on_event) scores.push(await this.scoreAt(pending, "event"));
        }
      }
      return scores;
    });
  }

  /** The timer: every due tick moment <= now not scored yet, in order. */
  tick(now: number): Promise<Score[]> {
    return this.serialized(async () => {
      const scores: Score[] = [];
      for (const moment of this.ticks.due(now)) scores.push(await this.scoreAt(moment, "tick"));
      return scores;
    });
  }

  /** A score at `ts` asked for by the app. */
  score(ts: number): Promise<Score> {
    return this.serialized(() => this.scoreAt(ts, "call"));
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

  /** Encode and keep one event; its ts, or undefined when it was dropped (lenient mode). */
  private accept(view: string, event: RawEvent): number | undefined {
    try {
      const window = this.windows.get(view);
      if (window === undefined) throw new PortError(`unknown view ${JSON.stringify(view)}; expected one of ${VIEWS.join(", ")}`);
      const row = this.encoder.encode(view, event);
      const ts = checkedTimestamp(event["ts"], view);
      window.append(row, ts, rawStay(this.options.bundle.spec, event));
      this.ticks.event(ts);
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

  private async scoreAt(ts: number, trigger: Trigger): Promise<Score> {
    const started = performance.now();
    const [realtime, longterm] = await this.options.scorer.scores(this.inputs(ts));
    const score: Score = {
      p_realtime: realtime, p_longterm: longterm, ts, latency_ms: performance.now() - started,
      model_version: this.options.bundle.modelVersion, trigger,
    };
    this.options.listener?.(score);
    return score;
  }
}
