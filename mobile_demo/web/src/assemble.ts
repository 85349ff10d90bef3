/**
 * A model's inputs at a cut, assembled as dipn.features.inputs_at_cut does: each view's last T
 * encoded rows, left-padded; what only the scoring moment t decides, in the manifest's order (each
 * row's age t - ts, the stay so far of a page still open at t, then the context: each view's
 * recency, the hour of t, the time since the last browse event of each action in the window); the
 * static groups; the early-fusion view. All of it is read from the windows and t: the device keeps
 * no other state.
 */
import { PortError } from "./errors.js";
import type { EncoderSpec, RawEvent } from "./encoder.js";
import { numberValue, stringValue } from "./encoder.js";

export const VIEWS = ["swipe", "tap", "browse"] as const;
export const MERGED = "merged";
const OPEN_STAY = -1; // the stored stay of a page whose end is not known: still open
const MAX_STAY = 2 ** 62;

/** The last T encoded rows of one view, their timestamps and (browse) their stays as logged. */
export class ViewWindow {
  readonly rows: Int32Array[] = [];
  readonly ts: number[] = [];
  readonly stays: number[] = [];

  constructor(readonly length: number, readonly width: number) {}

  append(row: Int32Array, ts: number, stay: number): void {
    this.rows.push(row);
    this.ts.push(ts);
    this.stays.push(stay);
    if (this.rows.length > this.length) {
      this.rows.shift();
      this.ts.shift();
      this.stays.shift();
    }
  }
}

/** The stay to keep for a browse event: its stay in integer ms, OPEN_STAY for a page not left yet. */
export function rawStay(spec: EncoderSpec, event: RawEvent): number {
  const rule = spec.features.rules.open_page;
  const stay = numberValue(event, "stay_ms");
  const kind = stringValue(event, rule.applies_when.column);
  const open = kind !== null && rule.applies_when.in.includes(kind);
  if (!Number.isFinite(stay)) return open ? OPEN_STAY : 0;
  return Math.trunc(Math.min(Math.max(stay, 0), MAX_STAY));
}

export type Inputs = Map<string, { data: Int32Array; dims: number[] }>;

/** Everything the inputs at a cut are made of. */
export interface CutState {
  windows: ReadonlyMap<string, ViewWindow>;
  statics: ReadonlyMap<string, Int32Array>;
}

export class InputAssembler {
  private readonly openColumn: number;
  private readonly openKindColumn: number;
  private readonly openKindIds: number[];

  constructor(readonly spec: EncoderSpec, readonly inputNames: readonly string[]) {
    const rule = spec.features.rules.open_page;
    const group = spec.group(rule.group);
    const stay = group.find((f) => f.name === rule.feature);
    const kind = group.find((f) => f.kind === "category" && f.reads[0] === rule.applies_when.column);
    if (stay === undefined || kind === undefined) {
      throw new PortError(`features.json: rules.open_page names no ${rule.group} feature ${rule.feature} or ${rule.applies_when.column}`);
    }
    this.openColumn = stay.column;
    this.openKindColumn = kind.column;
    this.openKindIds = rule.applies_when.in.map((value) => spec.categoryId(kind, value, rule.group));
    for (const name of inputNames) {
      if (![...VIEWS, MERGED, "history", "profile", "context"].includes(name)) {
        throw new PortError(`the model reads an input ${JSON.stringify(name)} this port does not assemble`);
      }
    }
  }

  /** Each input the model reads, at the cut `cutTs`: int32 data and its dims (batch 1). */
  inputsAt(cutTs: number, state: CutState): Inputs {
    const spec = this.spec;
    const length = spec.length;
    const padded = new Map<string, Int32Array>();
    for (const view of VIEWS) {
      const window = state.windows.get(view);
      const width = spec.width(view);
      const data = new Int32Array(length * width);
      const ages = spec.atCutColumns(view);
      if (window !== undefined) {
        const offset = length - window.rows.length;
        window.rows.forEach((row, i) => {
          const out = data.subarray((offset + i) * width, (offset + i + 1) * width);
          const ts = window.ts[i] ?? 0;
          out.set(row);
          for (const age of ages) out[age.column] = spec.elapsedId(age, cutTs - ts);
          if (view === spec.features.rules.open_page.group) this.atCut(out, ts, window.stays[i] ?? 0, cutTs);
        });
      }
      padded.set(view, data);
    }
    const inputs: Inputs = new Map();
    for (const name of this.inputNames) {
      if ((VIEWS as readonly string[]).includes(name)) {
        inputs.set(name, { data: padded.get(name) as Int32Array, dims: [1, length, spec.width(name)] });
      } else if (name === "context") {
        inputs.set(name, { data: spec.contextIds(cutTs, state.windows), dims: [1, spec.width(name)] });
      } else if (name === MERGED) {
        const width = VIEWS.reduce((sum, view) => sum + spec.width(view), 0);
        inputs.set(name, { data: this.merged(padded, state), dims: [1, length, width] });
      } else {
        const ids = state.statics.get(name) ?? new Int32Array(spec.width(name));
        inputs.set(name, { data: ids, dims: [1, spec.width(name)] });
      }
    }
    return inputs;
  }

  /** A page still open at the cut has stayed cut - ts so far (its final stay is not known yet). */
  private atCut(row: Int32Array, ts: number, stay: number, cutTs: number): void {
    const elapsed = cutTs - ts;
    if (this.openKindIds.includes(row[this.openKindColumn] ?? 0) && (stay === OPEN_STAY || stay > elapsed)) {
      row[this.openColumn] = this.spec.stayId(elapsed);
    }
  }

  /** Early fusion: the three padded windows side by side, rows stably sorted by time, the last T kept. */
  private merged(padded: ReadonlyMap<string, Int32Array>, state: CutState): Int32Array {
    const length = this.spec.length;
    const widths = VIEWS.map((view) => this.spec.width(view));
    const total = widths.reduce((a, b) => a + b, 0);
    const rows: { ts: number; view: number; index: number }[] = [];
    VIEWS.forEach((view, v) => {
      const window = state.windows.get(view);
      const count = window?.rows.length ?? 0;
      for (let i = 0; i < length; i += 1) {
        const real = i - (length - count);
        rows.push({ ts: real >= 0 ? (window?.ts[real] ?? -Infinity) : -Infinity, view: v, index: i });
      }
    });
    rows.sort((a, b) => a.ts - b.ts || a.view - b.view || a.index - b.index);
    const out = new Int32Array(length * total);
    rows.slice(-length).forEach((row, r) => {
      const view = VIEWS[row.view] as string;
      const width = widths[row.view] as number;
      const offset = widths.slice(0, row.view).reduce((a, b) => a + b, 0);
      const source = (padded.get(view) as Int32Array).subarray(row.index * width, (row.index + 1) * width);
      out.set(source, r * total + offset);
    });
    return out;
  }
}
