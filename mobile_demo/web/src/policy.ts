/**
 * When the device scores and which scores it posts: mobile_demo/policies.py, mirrored rule for
 * rule (docs/device.md, "Scoring and posting policies").
 *
 * Scoring: at the timestamp of every accepted event (the cut at t includes every event with
 * ts <= t; a second event at the same millisecond scores that moment again, and the later score
 * supersedes), and at idle ticks: after the latest event at t0, at t0 + k * timer_ms for
 * k = 1 .. floor(idle_limit_ms / timer_ms), each strictly before the next event; exactly the
 * moments dipn build-samples cuts (dipn.samples.cuts.cut_moments). The app drives the ticks with
 * tick(now); a tick it never drove before the next event arrived is skipped (counted), not
 * scored late.
 *
 * Posting: a score is posted iff (1) nothing was posted yet for this user, (2) p_realtime crosses
 * into or out of the campaign band, (3) either probability moved by min_delta or more since the
 * last posted score, (4) heartbeat_ms passed since it, or (5) no score is scheduled after it (the
 * last idle tick; with no timer, every event score). The reason is reported as first, band,
 * delta, heartbeat, quiet, or every (the policy disabled).
 */
import type { ScoringPolicy } from "./manifest.js";

/** The idle schedule after the latest event (IntentScorer's _last_event_ts and _ticks_done). */
export class TickSchedule {
  private lastEvent: number | undefined;
  private ticksDone = 0;

  constructor(readonly policy: ScoringPolicy) {}

  /** How many idle ticks follow an event when no other event comes. */
  get ticksPerIdle(): number {
    const { timer_ms: timer, idle_limit_ms: limit } = this.policy;
    return timer === null ? 0 : Math.floor(limit / timer);
  }

  /** An accepted event at ts: a later one restarts the schedule from it; returns how many ticks due
   * strictly before it were never driven (skipped). An event at or before the latest changes nothing. */
  event(ts: number): number {
    if (this.lastEvent !== undefined && ts <= this.lastEvent) return 0;
    const skipped = this.lastEvent === undefined ? 0 : this.dueCount(ts - 1) - this.ticksDone;
    this.lastEvent = ts;
    this.ticksDone = 0;
    return skipped;
  }

  /** How many ticks after the latest event are due at now (capped by the idle limit). */
  private dueCount(now: number): number {
    const timer = this.policy.timer_ms;
    if (this.lastEvent === undefined || timer === null || now <= this.lastEvent) return this.ticksDone;
    return Math.max(this.ticksDone, Math.min(this.ticksPerIdle, Math.floor((now - this.lastEvent) / timer)));
  }

  /** The tick moments <= now not scored yet, in order, each with whether it is the last of the
   * schedule (no score follows it); they count as done. */
  due(now: number): { moment: number; last: boolean }[] {
    const timer = this.policy.timer_ms;
    const due = this.dueCount(now);
    const out: { moment: number; last: boolean }[] = [];
    while (this.ticksDone < due && this.lastEvent !== undefined && timer !== null) {
      this.ticksDone += 1;
      out.push({ moment: this.lastEvent + this.ticksDone * timer, last: this.ticksDone === this.ticksPerIdle });
    }
    return out;
  }
}

export interface PostingPolicyOptions {
  bandLow: number;
  bandHigh: number;
  minDelta: number;
  heartbeatMs: number;
  enabled: boolean;
}

export const DEFAULT_POSTING: PostingPolicyOptions = {
  bandLow: 0.2, bandHigh: 0.4, minDelta: 0.05, heartbeatMs: 1_800_000, enabled: true,
};

export type PostReason = "first" | "band" | "delta" | "heartbeat" | "quiet" | "every";

export interface Posted {
  p_realtime: number;
  p_longterm: number;
  ts: number;
}

export class PostingPolicy {
  private last: Posted | undefined;

  constructor(readonly options: PostingPolicyOptions = DEFAULT_POSTING) {}

  private inBand(p: number): boolean {
    return this.options.bandLow <= p && p <= this.options.bandHigh;
  }

  /** Why this score is posted, or null (PostingPolicy.reason_to_post); a posted score becomes the
   * last posted. quietAfter: no score is scheduled after this one. */
  offer(score: Posted, quietAfter: boolean): PostReason | null {
    const reason = this.reason(score, quietAfter);
    if (reason !== null) this.last = { p_realtime: score.p_realtime, p_longterm: score.p_longterm, ts: score.ts };
    return reason;
  }

  private reason(score: Posted, quietAfter: boolean): PostReason | null {
    const { last, options: o } = this;
    if (!o.enabled) return "every";
    if (last === undefined) return "first";
    if (this.inBand(score.p_realtime) !== this.inBand(last.p_realtime)) return "band";
    if (Math.abs(score.p_realtime - last.p_realtime) >= o.minDelta || Math.abs(score.p_longterm - last.p_longterm) >= o.minDelta) {
      return "delta";
    }
    if (score.ts - last.ts >= o.heartbeatMs) return "heartbeat";
    return quietAfter ? "quiet" : null;
  }

  /** A new user: the next score is posted whatever it is. */
  reset(): void {
    this.last = undefined;
  }
}
