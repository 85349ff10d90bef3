/**
 * The bundle's golden cases through this port: each case's raw events encoded one at a time, the
 * inputs assembled at its score_ts, and each artifact run; written as PORT_RESULTS.json for
 * `dipn check-port` (docs/device.md, "Porting and the port checker"), and checked in place as the device's self-test.
 */
import { InputAssembler, VIEWS, ViewWindow, rawStay } from "./assemble.js";
import type { Inputs } from "./assemble.js";
import type { GoldenRaw, LoadedBundle } from "./bundle.js";
import { EncoderSpec, StreamEncoder } from "./encoder.js";
import { BundleTrustError } from "./errors.js";
import type { Scorer } from "./scorer.js";

export const PORT_RESULTS_FORMAT = 1;

export interface PortCase {
  name: string;
  ids: Record<string, number[] | number[][]>;
  scores: Record<string, [number, number]>;
}

export interface PortResults {
  format: number;
  port: string;
  model_version: string;
  cases: PortCase[];
}

/** One case's raw events -> the model inputs at its score_ts, as a phone builds them. */
export function encodeCase(spec: EncoderSpec, inputNames: readonly string[], raw: GoldenRaw): Inputs {
  const encoder = new StreamEncoder(spec, raw.screen);
  const windows = new Map<string, ViewWindow>();
  for (const view of VIEWS) {
    const window = new ViewWindow(spec.length, spec.width(view));
    for (const event of raw.events[view] ?? []) {
      window.append(encoder.encode(view, event), Number(event["ts"]), rawStay(spec, event));
    }
    windows.set(view, window);
  }
  const statics = new Map([["history", spec.staticIds("history", raw.history)], ["profile", spec.staticIds("profile", raw.profile)]]);
  return new InputAssembler(spec, inputNames).inputsAt(raw.score_ts, { windows, statics });
}

/** An input's ids as nested arrays: (T, F) rows for a sequence, one row for a static group. */
export function idsAsRows(input: { data: Int32Array; dims: number[] }): number[] | number[][] {
  const dims = input.dims.slice(1);
  if (dims.length === 1) return Array.from(input.data);
  const width = dims[1] as number;
  return Array.from({ length: dims[0] as number }, (_, r) => Array.from(input.data.subarray(r * width, (r + 1) * width)));
}

/** Every golden case through the encoder and each scorer (keyed by artifact path); `alsoInputs`:
 * inputs to assemble beside the model's (their ids are written, not scored). */
export async function portResults(bundle: LoadedBundle, scorers: ReadonlyMap<string, Scorer>, port: string,
  alsoInputs: readonly string[] = []): Promise<PortResults> {
  const cases: PortCase[] = [];
  const names = [...bundle.inputNames, ...alsoInputs.filter((name) => !bundle.inputNames.includes(name))];
  for (const golden of bundle.golden.cases) {
    const inputs = encodeCase(bundle.spec, names, golden.raw);
    const ids: PortCase["ids"] = {};
    for (const [name, input] of inputs) ids[name] = idsAsRows(input);
    const scores: PortCase["scores"] = {};
    for (const [path, scorer] of scorers) scores[path] = await scorer.scores(inputs);
    cases.push({ name: golden.name, ids, scores });
  }
  return { format: PORT_RESULTS_FORMAT, port, model_version: bundle.modelVersion, cases };
}

/** The device's self-test: ids equal and scores within tolerance, or BundleTrustError naming the case. */
export async function selfTest(bundle: LoadedBundle, path: string, precision: string, scorer: Scorer): Promise<{ cases: number; maxAbsDiff: number }> {
  const tolerance = bundle.golden.tolerance[precision] ?? 0;
  let worst = 0;
  for (const golden of bundle.golden.cases) {
    const inputs = encodeCase(bundle.spec, bundle.inputNames, golden.raw);
    for (const [name, rows] of Object.entries(golden.ids)) {
      const input = inputs.get(name);
      const real = rows.flat();
      const data = input?.data ?? new Int32Array();
      const padded = data.subarray(data.length - real.length);
      if (input === undefined || padded.some((v, i) => v !== real[i]) || data.subarray(0, data.length - real.length).some((v) => v !== 0)) {
        throw new BundleTrustError(`golden case ${golden.name}: this encoder's ${name} ids differ from golden.json`);
      }
    }
    const got = await scorer.scores(inputs);
    const expected = golden.scores[path] ?? [Number.NaN, Number.NaN];
    const diff = Math.max(Math.abs(got[0] - expected[0]), Math.abs(got[1] - expected[1]));
    worst = Math.max(worst, diff);
    if (!(diff <= tolerance)) {
      throw new BundleTrustError(`golden case ${golden.name}: ${path} scores ${got.join(", ")}, golden.json ${expected.join(", ")} (tolerance ${tolerance})`);
    }
  }
  return { cases: bundle.golden.cases.length, maxAbsDiff: worst };
}
