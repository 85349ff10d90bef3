/** The numeric rules and the two policies, against values worked out from dipn's Python rules. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { direction, hourOfDay, piecewiseBucket, screenSegment, signedLengthSegment, stayBucket, stepBucket } from "../src/buckets.js";
import { PostingPolicy, TickSchedule } from "../src/policy.js";

const PIECES = [
  { from_s: 0, below_s: 120, step_s: 1, first: 0 },
  { from_s: 120, below_s: 600, step_s: 10, first: 120 },
  { from_s: 600, below_s: 1200, step_s: 60, first: 168 },
];

test("the step function: fine below f_b, coarse below 10 f_b, one bucket beyond, 0 for negatives", () => {
  const rule = { f_s: 100, f_b: 1000 };
  assert.deepEqual([0, 99, 100, 999, 1000, 1999, 9999, 10_000, Infinity, -5].map((x) => stepBucket(x, rule)),
    [0, 0, 1, 9, 10, 10, 18, 19, 19, 0]);
  assert.throws(() => stepBucket(Number.NaN, rule), /NaN/);
});

test("stay buckets follow the manifest's pieces", () => {
  assert.deepEqual([0, 999, 1000, 119_999, 120_000, 129_999, 130_000, 599_999, 600_000, 1_199_999, 1_200_000, 5e9, -10]
    .map((ms) => stayBucket(ms, PIECES, 178)), [0, 0, 1, 119, 120, 120, 121, 167, 168, 177, 178, 178, 0]);
});

const S = 1_000, MIN = 60_000, H = 3_600_000, D = 86_400_000;
/** A piecewise rule as features.json states it: ((to_ms, step_ms), ...) from 0 up. */
function piecewise(pieces: [number, number][]) {
  let from = 0, first = 0;
  const out = pieces.map(([to, step]) => {
    const piece = { from_ms: from, to_ms: to, step_ms: step, first_value: first };
    first += (to - from) / step;
    from = to;
    return piece;
  });
  return { rule: "piecewise" as const, pieces: out, open_value: first, buckets: first + 1 };
}

test("step and action ages follow the manifest's pieces (values of dipn.features.buckets.piecewise_bucket)", () => {
  const stepAge = piecewise([[60 * S, 10 * S], [10 * MIN, MIN], [H, 10 * MIN], [D, H], [10 * D, D]]);
  const actionAge = piecewise([[D, H], [10 * D, D]]);
  const xs = [-5, 0, 9_999, 10_000, 59_999, 60_000, 119_999, 599_999, 600_000, 3_599_999, 3_600_000, 86_399_999,
    86_400_000, 863_999_999, 864_000_000, 1e15, Infinity];
  assert.deepEqual(xs.map((x) => piecewiseBucket(x, stepAge)), [0, 0, 0, 1, 5, 6, 6, 14, 15, 19, 20, 42, 43, 51, 52, 52, 52]);
  assert.deepEqual(xs.map((x) => piecewiseBucket(x, actionAge)), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 23, 24, 32, 33, 33, 33]);
  assert.equal(stepAge.buckets, 53);
  assert.throws(() => piecewiseBucket(Number.NaN, stepAge), /NaN/);
});

test("hours, screen segments, signed lengths and directions", () => {
  assert.equal(hourOfDay(1_767_261_600_000, 0), 10);
  assert.equal(hourOfDay(1_767_261_600_000, 480), 18);
  assert.equal(hourOfDay(0, -60), 23);
  assert.deepEqual([-10, 0, 22.9, 390, 500].map((x) => screenSegment(x, 390, 17)), [0, 0, 0, 16, 16]);
  assert.equal(signedLengthSegment(-100, 390, 17), 17 + 4);
  assert.equal(signedLengthSegment(1000, 390, 17), 16);
  assert.deepEqual([direction(-1), direction(0), direction(3)], [1, 0, 0]);
});

test("idle ticks: every timer_ms after the latest event, up to the idle limit; ticks not driven before the next event are skipped", () => {
  const ticks = new TickSchedule({ on_event: true, timer_ms: 60_000, idle_limit_ms: 180_000 });
  const moments = (now: number) => ticks.due(now).map((t) => [t.moment, t.last]);
  assert.deepEqual(moments(1e9), []);
  assert.equal(ticks.event(1_000), 0);
  assert.deepEqual(moments(100_000), [[61_000, false]]);
  assert.equal(ticks.event(1_000), 0); // the same moment again: the schedule goes on from it
  assert.equal(ticks.event(500), 0); // earlier (a late record): nothing changes
  assert.equal(ticks.event(181_001), 2); // the ticks at 121 000 and 181 000 were never driven: skipped
  assert.deepEqual(moments(10_000_000), [[241_001, false], [301_001, false], [361_001, true]]);
  assert.deepEqual(moments(10_000_000), []);
  assert.equal(ticks.event(20_000_000), 0); // all three were scored
  assert.equal(ticks.event(20_060_000), 0); // its tick at 20 060 000 is not strictly before this event: not due
  assert.equal(ticks.event(20_120_001), 1); // the tick at 20 120 000 is: never driven, skipped
  assert.equal(ticks.ticksPerIdle, 3);
  const off = new TickSchedule({ on_event: true, timer_ms: null, idle_limit_ms: 1_800_000 });
  assert.equal(off.event(0), 0);
  assert.deepEqual(off.due(1e9), []);
  assert.equal(off.ticksPerIdle, 0);
});

test("posting: the first score, band crossings, moves of min_delta, the heartbeat, the quiet last; every score when disabled", () => {
  const policy = new PostingPolicy();
  const offer = (p_realtime: number, p_longterm: number, ts: number, quiet = false) => policy.offer({ p_realtime, p_longterm, ts }, quiet);
  assert.equal(offer(0.10, 0.5, 0), "first");
  assert.equal(offer(0.12, 0.52, 1_000), null);
  assert.equal(offer(0.21, 0.52, 2_000), "band"); // into the band [0.2, 0.4]
  assert.equal(offer(0.22, 0.56, 3_000), null); // 0.04 of longterm since the last posted 0.52
  assert.equal(offer(0.22, 0.571, 4_000), "delta"); // 0.051 moved
  assert.equal(offer(0.22, 0.571, 4_000 + 1_800_000), "heartbeat");
  assert.equal(offer(0.22, 0.571, 4_000 + 1_800_001), null);
  assert.equal(offer(0.22, 0.571, 4_000 + 1_800_002, true), "quiet"); // nothing scheduled after it
  assert.equal(offer(0.50, 0.571, 4_000 + 1_800_003, true), "band"); // the first reason that holds is named
  policy.reset();
  assert.equal(offer(0.50, 0.571, 4_000 + 1_800_004), "first");
  const all = new PostingPolicy({ bandLow: 0.2, bandHigh: 0.4, minDelta: 0.05, heartbeatMs: 1_800_000, enabled: false });
  assert.equal(all.offer({ p_realtime: 0.1, p_longterm: 0.1, ts: 0 }, false), "every");
  assert.equal(all.offer({ p_realtime: 0.1, p_longterm: 0.1, ts: 0 }, false), "every");
});
