/**
 * When the device scores and which scores it posts (docs/device.md; contracts of issue 24).
 *
 * Scoring: at the timestamp of every accepted event (the cut at t includes every event with
 * ts <= t), and at idle ticks: after the latest event at t0, at t0 + k * timer_ms for
 * k = 1 .. floor(idle_limit_ms / timer_ms), each strictly before the next event; exactly the
 * moments dipn build-samples cuts (dipn.data.cuts.cut_moments).
 *
 * Posting: a score is posted when nothing was posted yet, when p_realtime crosses into or out of
 * the campaign band, when either probability moved by min_delta or more, or after heartbeat_ms.
 */
import type { ScoringPolicy } from "./manifest.js";

export class TickSchedule {
  private lastEvent: number | undefined;
  private ticksDone = 0;

  constructor(readonly policy: ScoringPolicy) {}

  /** An event at ts: the tick count restarts from the latest event. */
  event(ts: number): void {
    if (this.lastEvent === undefined || ts >= this.lastEvent) {
      if (ts !== this.lastEvent) this.ticksDone = 0;
      this.lastEvent = ts;
    }
  }

  /** The tick moments <= now (and < before, the time of an event about to be taken) not scored yet, in order. */
  due(now: number, before: number = Infinity): number[] {
    const { timer_ms: timer, idle_limit_ms: limit } = this.policy;
    if (timer === null || timer <= 0 || this.lastEvent === undefined) return [];
    const maxTicks = Math.floor(limit / timer);
    const out: number[] = [];
    while (this.ticksDone < maxTicks) {
      const moment = this.lastEvent + (this.ticksDone + 1) * timer;
      if (moment > now || moment >= before) break;
      out.push(moment);
      this.ticksDone += 1;
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

  /** Whether to post this score (and if so, it becomes the last posted). */
  offer(score: Posted): boolean {
    const last = this.last;
    const o = this.options;
    const post = !o.enabled || last === undefined
      || this.inBand(score.p_realtime) !== this.inBand(last.p_realtime)
      || Math.abs(score.p_realtime - last.p_realtime) >= o.minDelta
      || Math.abs(score.p_longterm - last.p_longterm) >= o.minDelta
      || score.ts - last.ts >= o.heartbeatMs;
    if (post) this.last = { p_realtime: score.p_realtime, p_longterm: score.p_longterm, ts: score.ts };
    return post;
  }

  /** A new user: the next score is posted whatever it is. */
  reset(): void {
    this.last = undefined;
  }
}
