/**
 * The discretization rules of features.json ("rules"), each returning the 0-based value; the +1 that
 * keeps id 0 for padding is applied by the encoder. Every operation is the same IEEE-754 double
 * operation, in the same order, as dipn.features.buckets, so the values agree bit for bit.
 */
import { PortError } from "./errors.js";
import type { PiecewiseRule, StayPiece, StepRule } from "./manifest.js";

export const STEP_BUCKETS = 20;

function finiteOrInfinite(x: number, what: string): number {
  if (Number.isNaN(x)) throw new PortError(`${what}: NaN; a time must be a number`);
  return x;
}

/** Section 3.1's step function: floor(x/f_s) below f_b, floor(x/f_b + 9) below 10 f_b, else 19; negative -> 0. */
export function stepBucket(x: number, rule: StepRule): number {
  finiteOrInfinite(x, "step input");
  if (x < 0) return 0;
  if (x < rule.f_b) return Math.floor(x / rule.f_s);
  if (x < 10 * rule.f_b) return Math.floor(x / rule.f_b + 9);
  return STEP_BUCKETS - 1;
}

/** Page stay in ms -> the stay bucket of the manifest's pieces (the last value beyond them). */
export function stayBucket(stayMs: number, pieces: readonly StayPiece[], last: number): number {
  const s = Math.max(finiteOrInfinite(stayMs, "stay time") / 1000.0, 0.0);
  for (const piece of pieces) {
    if (s >= piece.from_s && s < piece.below_s) return piece.first + Math.floor((s - piece.from_s) / piece.step_s);
  }
  return last;
}

/** Elapsed ms -> the value of a piecewise rule (dipn.features.buckets.piecewise_bucket): inside a
 * piece, its first value + floor((x - from_ms) / step_ms); at or beyond the last edge the open
 * value; negative x (clock skew) -> 0. */
export function piecewiseBucket(elapsedMs: number, rule: PiecewiseRule): number {
  const x = Math.max(finiteOrInfinite(elapsedMs, "elapsed time"), 0.0);
  for (const piece of rule.pieces) {
    if (x < piece.to_ms) return piece.first_value + Math.floor((x - piece.from_ms) / piece.step_ms);
  }
  return rule.open_value;
}

/** Hour 0..23 of a unix-ms timestamp read at a fixed offset from UTC. */
export function hourOfDay(tsMs: number, utcOffsetMinutes: number): number {
  const hours = Math.floor((tsMs + utcOffsetMinutes * 60_000) / 3_600_000);
  return ((hours % 24) + 24) % 24;
}

/** Position on the screen -> one of `segments` uniform segments, clamped to the screen. */
export function screenSegment(coord: number, extent: number, segments: number): number {
  const seg = Math.floor((finiteOrInfinite(coord, "screen coordinate") / extent) * segments);
  return Math.min(Math.max(seg, 0), segments - 1);
}

/** Signed swipe length: 0..segments-1 moving right/down, segments..2*segments-1 moving left/up. */
export function signedLengthSegment(delta: number, extent: number, segments: number): number {
  const length = Math.min(Math.max(Math.floor((Math.abs(finiteOrInfinite(delta, "swipe length")) / extent) * segments), 0), segments - 1);
  return length + (delta < 0 ? segments : 0);
}

/** 0 = right (or down), 1 = left (or up). */
export function direction(delta: number): number {
  return finiteOrInfinite(delta, "swipe direction") < 0 ? 1 : 0;
}

/** Counts and levels: clipped to 0..vocabSize-1 (a fraction is cut toward zero, as numpy's cast). */
export function clipped(value: number, vocabSize: number, what: string): number {
  if (Number.isNaN(value)) throw new PortError(`${what}: NaN; counts and levels are integers`);
  return Math.trunc(Math.min(Math.max(value, 0), vocabSize - 1));
}
