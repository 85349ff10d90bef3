/**
 * The port on a real converted bundle (DIPN_TEST_BUNDLE, with its signer's key in
 * DIPN_TEST_PUBLIC_KEY; tests/test_web_port.py makes both): trust, self-test at both precisions,
 * and the device's event path against the golden cases.
 */
import assert from "node:assert/strict";
import { cp, readFile, writeFile } from "node:fs/promises";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { openBundle } from "../src/bundle.js";
import { Device } from "../src/device.js";
import type { Score, ViewEvent } from "../src/device.js";
import { BundleTrustError, PortError } from "../src/errors.js";
import { encodeCase, selfTest } from "../src/golden.js";
import { parseFeatures } from "../src/manifest.js";
import { directorySource } from "../src/node/files.js";
import { nodeScorers } from "../src/node/port-results.js";

const root = process.env["DIPN_TEST_BUNDLE"];
const keyPath = process.env["DIPN_TEST_PUBLIC_KEY"];
const skip = root === undefined || keyPath === undefined ? "DIPN_TEST_BUNDLE and DIPN_TEST_PUBLIC_KEY are not set (tests/test_web_port.py sets them)" : false;

async function open(dir = root as string) {
  return openBundle(directorySource(dir), { publicKeyPem: await readFile(keyPath as string, "utf8") });
}

test("a signed bundle opens, and every artifact passes the self-test", { skip }, async () => {
  const bundle = await open();
  assert.match(bundle.signer ?? "", /^[0-9a-f]{16}$/);
  for (const [path, scorer] of await nodeScorers(bundle)) {
    const precision = bundle.manifest.artifacts.find((a) => a.path === path)?.precision ?? "";
    const report = await selfTest(bundle, path, precision, scorer);
    assert.equal(report.cases, bundle.golden.cases.length);
    assert.ok(report.maxAbsDiff <= (bundle.golden.tolerance[precision] ?? 0));
  }
});

test("a modified manifest, file or signer is refused", { skip }, async () => {
  const copy = join(await mkdtemp(join(tmpdir(), "dipn-web-")), "bundle");
  await cp(root as string, copy, { recursive: true });
  const features = join(copy, "features.json");
  const original = await readFile(features, "utf8");
  await writeFile(features, original.replace('"padding": 0', '"padding": 0 '));
  await assert.rejects(open(copy), (e: unknown) => e instanceof BundleTrustError && /features.json: \d+ bytes/.test(e.message));
  await writeFile(features, original);
  const manifest = join(copy, "manifest.json");
  await writeFile(manifest, (await readFile(manifest, "utf8")).replace('"status": "ok"', '"status":  "ok"'));
  await assert.rejects(open(copy), /signature does not match/);
  const other = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
  await assert.rejects(openBundle(directorySource(root as string), { publicKeyPem: other }), /this device trusts key/);
  await assert.rejects(openBundle(directorySource(root as string), {}), /no public key/);
});

test("events fed one moment at a time score the golden case's inputs and scores at its score_ts", { skip }, async () => {
  const bundle = await open();
  const [path, scorer] = [...(await nodeScorers(bundle))][0] as [string, import("../src/scorer.js").Scorer];
  for (const golden of bundle.golden.cases) {
    const heard: Score[] = [];
    // every event moment is scored in the short case; the long one (hundreds of moments) only at the end
    const onEvent = golden.name === "session";
    const policy = { on_event: onEvent, timer_ms: null, idle_limit_ms: 0 };
    const clock = () => golden.raw.score_ts;
    const device = new Device({ bundle, scorer, screen: golden.raw.screen, strict: true, policy, clock, listener: (s) => heard.push(s) });
    device.setUser(golden.raw.history, golden.raw.profile);
    const byView: ViewEvent[] = Object.entries(golden.raw.events).flatMap(([view, list]) => list.map((event) => ({ view, event })));
    // as they happened (the short case's views interleaved by time); the others view after view
    const events = onEvent ? [...byView].sort((a, b) => Number(a.event["ts"]) - Number(b.event["ts"])) : byView;
    const scores = await device.onEvents(events);
    // every event scores its own moment, a second event at the same millisecond included (the later score supersedes)
    assert.deepEqual(scores.map((s) => s.ts), onEvent ? events.map((e) => e.event["ts"]) : []);
    const expected = encodeCase(bundle.spec, bundle.inputNames, golden.raw);
    const got = device.inputs(golden.raw.score_ts);
    for (const [name, input] of expected) assert.deepEqual(got.get(name)?.data, input.data, `${golden.name} ${name}`);
    const score = await device.score(golden.raw.score_ts);
    const want = golden.scores[path] as [number, number];
    assert.ok(Math.abs(score.p_realtime - want[0]) <= 1e-4 && Math.abs(score.p_longterm - want[1]) <= 1e-4, golden.name);
    assert.deepEqual(heard.at(-1), score);
  }
});

test("a bad event is dropped and counted, or refused in strict mode", { skip }, async () => {
  const bundle = await open();
  const [, scorer] = [...(await nodeScorers(bundle))][0] as [string, import("../src/scorer.js").Scorer];
  const lenient = new Device({ bundle, scorer, screen: [390, 844] });
  const warn = console.warn;
  console.warn = () => undefined;
  try {
    const bad = [
      { view: "tap", event: { ts: 1_767_261_600_000, event: "view", page: "Page_Home" } },
      { view: "swipe", event: { ts: 1_767_261_600_001, type: "tap", page: "Page_Home" } },
      { view: "browse", event: { action: "browse", page: "Page_Home" } },
      { view: "clicks", event: { ts: 1_767_261_600_002 } },
    ];
    assert.deepEqual(await lenient.onEvents(bad), []);
    assert.deepEqual([...lenient.dropped.values()], [1, 1, 1, 1]);
    assert.match([...lenient.dropped.keys()].join("\n"), /unknown tap event "view"; expected one of \["page","button"\]/);
    assert.match([...lenient.dropped.keys()].join("\n"), /x is missing or not a finite number/);
  } finally {
    console.warn = warn;
  }
  const strict = new Device({ bundle, scorer, screen: [390, 844], strict: true });
  await assert.rejects(strict.onEvents([{ view: "browse", event: { action: "browse", page: "P" } }]), PortError);
});

test("a manifest feature of a kind or rule the port does not know is refused by name", { skip }, async () => {
  const features = JSON.parse(await readFile(join(root as string, "features.json"), "utf8")) as { features: Record<string, unknown>[] };
  const base = { group: "context", column: 4, source: "cut_ts - ts", vocab_size: 20, reads: ["ts"] };
  const withStep = { ...features, features: [...features.features, { ...base, name: "time_before_cut", kind: "step", rule: "time_before_cut" }] };
  assert.throws(() => parseFeatures(withStep), /feature context.time_before_cut: rules.time_before_cut is not a step rule/);
  const withKind = { ...features, features: [...features.features, { ...base, name: "weekday", kind: "weekday", rule: "weekday" }] };
  assert.throws(() => parseFeatures(withKind), /feature context.weekday has kind "weekday", which this port does not know/);
  const renamed = (kind: string, rule: string) => ({ ...features, features: features.features.map((f) => (f["kind"] === kind ? { ...f, rule } : f)) });
  assert.throws(() => parseFeatures(renamed("age", "step_age_v2")), /feature swipe.age of kind age names rule "step_age_v2", which this port does not know/);
  assert.throws(() => parseFeatures(renamed("since", "stay_time")), /feature context.since_purchase of kind since names rule "stay_time"/);
  const older = { ...features, format: 2 };
  assert.throws(() => parseFeatures(older), /format 2: converted by an older dipn, without step ages/);
});

test("each event scores its own moment; ticks the app did not drive are skipped; time is repaired as the Python device does", { skip }, async () => {
  const bundle = await open();
  const [, scorer] = [...(await nodeScorers(bundle))][0] as [string, import("../src/scorer.js").Scorer];
  const policy = { on_event: true, timer_ms: 1_000, idle_limit_ms: 3_000 };
  const t0 = 1_767_261_600_000;
  let now = t0;
  const device = new Device({ bundle, scorer, screen: [390, 844], strict: true, policy, clock: () => now });
  const page = (ts: number) => ({ view: "tap", event: { user_id: "u", ts, event: "page", page: "Page_Home", button: null } });
  const moments = (scores: Score[]) => scores.map((s) => [s.trigger, s.ts - t0]);
  const reasons = (scores: Score[]) => scores.map((s) => s.post_reason);
  const first = await device.onEvents([page(t0)]);
  assert.deepEqual(moments(first), [["event", 0]]);
  assert.deepEqual(reasons(first), ["first"]);
  now = t0 + 1_500;
  assert.deepEqual(moments(await device.tick(now)), [["idle", 1_000]]);
  // the tick at 2 000 was never driven: skipped, not scored late; both events at 2 500 score that moment
  now = t0 + 2_500;
  assert.deepEqual(moments(await device.onEvents([page(t0 + 2_500), page(t0 + 2_500)])), [["event", 2_500], ["event", 2_500]]);
  assert.equal(device.counts.get("ticks_skipped"), 1);
  // a late record of another view scores at its own moment and leaves the idle schedule alone
  const late = { view: "browse", event: { user_id: "u", ts: t0 + 100, action: "browse", leaf_category: null, top_category: null, page: "Page_Home", stay_ms: 2_400 } };
  now = t0 + 2_600;
  assert.deepEqual(moments(await device.onEvents([late, page(t0 + 2_600)])), [["event", 100], ["event", 2_600]]);
  // a tap stamped before its view's last one is clamped to it
  assert.deepEqual(moments(await device.onEvents([page(t0 + 50)])), [["event", 2_600]]);
  assert.equal(device.counts.get("clamped_time_backwards"), 1);
  // more than 5 min ahead of the device clock: refused (strict), dropped and counted (lenient)
  await assert.rejects(device.onEvents([page(now + 300_001)]), /more than 5 min ahead of the device clock/);
  const ticks = await device.tick(t0 + 60_000);
  assert.deepEqual(moments(ticks), [["idle", 3_600], ["idle", 4_600], ["idle", 5_600]]);
  assert.equal(ticks.at(-1)?.post, true); // the last tick: nothing is scheduled after it
  assert.equal(device.counts.get("ticks_skipped"), 1);
  device.setUser();
  assert.deepEqual(reasons([await device.score(t0 + 5_600)]), ["first"]); // a new user: posted afresh
  const quiet = new Device({ bundle, scorer, screen: [390, 844], strict: true, clock: () => now, policy: { on_event: true, timer_ms: null, idle_limit_ms: 0 } });
  const all = await quiet.onEvents([page(t0), page(t0 + 1), page(t0 + 2)]);
  assert.deepEqual(all.map((s) => s.post), [true, true, true]); // no timer: every event score is the last one scheduled
  assert.deepEqual(reasons(all).slice(1).filter((r) => r !== "quiet" && r !== "delta" && r !== "band"), []);
});

test("step ages and action ages are computed at the cut from the windows alone; a purchase scrolled out of the browse window is none", { skip }, async () => {
  const bundle = await open();
  const [, scorer] = [...(await nodeScorers(bundle))][0] as [string, import("../src/scorer.js").Scorer];
  const policy = { on_event: false, timer_ms: null, idle_limit_ms: 0 };
  const device = new Device({ bundle, scorer, screen: [390, 844], strict: true, policy });
  const spec = bundle.spec;
  const column = (group: string, name: string) => spec.group(group).find((f) => f.name === name)?.column as number;
  const rule = (name: string) => spec.features.rules[name] as { none_value: number };
  const [D, t0] = [86_400_000, 1_767_261_600_000];
  const browse = (ts: number, action: string) => ({ view: "browse", event: { user_id: "u", ts, action, leaf_category: null, top_category: null, page: "Page_Home", stay_ms: null } });
  await device.onEvents([browse(t0, "purchase")]);
  const at = (ts: number) => {
    const inputs = device.inputs(ts);
    const rows = inputs.get("browse")?.data as Int32Array;
    const width = spec.width("browse");
    return { context: inputs.get("context")?.data as Int32Array, lastRow: rows.subarray(rows.length - width) };
  };
  // two days on: the purchase's row is 2 days old (step_age 43 + 2 days -> value 44), 2 days since it (24 + 1 -> 25)
  let { context, lastRow } = at(t0 + 2 * D);
  assert.equal(lastRow[column("browse", "age")], 44 + 1);
  assert.equal(context[column("context", "since_purchase")], 25 + 1);
  assert.equal(context[column("context", "since_cart")], rule("action_age").none_value + 1);
  // at its own moment it is 0 ms old, and the same row is younger at an earlier cut: no state but the windows
  ({ context, lastRow } = at(t0));
  assert.deepEqual([lastRow[column("browse", "age")], context[column("context", "since_purchase")]], [1, 1]);
  // T browse events later the purchase has left the window: none, though the device saw it
  await device.onEvents(Array.from({ length: spec.length }, (_, i) => browse(t0 + 1_000 * (i + 1), "browse")));
  ({ context } = at(t0 + 2 * D));
  assert.equal(context[column("context", "since_purchase")], rule("action_age").none_value + 1);
  assert.equal(context[column("context", "since_browse")], 24 + 1);
});
