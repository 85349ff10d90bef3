/**
 * The encoder, driven by features.json alone: each feature's kind, rule, the raw columns it reads
 * and the events it applies to come from the manifest, so a feature added there needs no code
 * here unless its kind or rule is new (then parseFeatures refuses the manifest by name).
 *
 * StreamEncoder encodes one event at a time, as a phone does (dipn.features.StreamEncoder): its
 * only state is the last timestamp of each view, for the time gap.
 */
import { clipped, direction, hourOfDay, piecewiseBucket, screenSegment, signedLengthSegment, stayBucket, stepBucket } from "./buckets.js";
import { PortError } from "./errors.js";
import type { FeatureEntry, FeaturesJson, PiecewiseRule, StepRule } from "./manifest.js";

export type RawValue = string | number | boolean | null | undefined;
export type RawEvent = Readonly<Record<string, RawValue>>;

/** Timestamps are integer ms; beyond 2^53 they are not milliseconds since the epoch. */
export const MAX_ABS_TS = 2 ** 53;
const EXTENT_COLUMNS: Readonly<Record<string, 0 | 1>> = { screen_w: 0, screen_h: 1 };

/** A raw string field: null for absent (null, undefined, empty), a number written as text. */
export function stringValue(event: RawEvent, column: string): string | null {
  const value = event[column];
  if (value === null || value === undefined || value === "" || (typeof value === "number" && Number.isNaN(value))) {
    return null;
  }
  if (typeof value === "boolean") throw new PortError(`field ${JSON.stringify(column)} is a boolean; expected a string`);
  return String(value);
}

/** A raw number field: NaN for absent; a numeric string is read as its number. */
export function numberValue(event: RawEvent, column: string): number {
  const value = event[column];
  if (value === null || value === undefined) return Number.NaN;
  if (typeof value === "number") return value;
  const parsed = typeof value === "string" && value.trim() !== "" ? Number(value) : Number.NaN;
  if (Number.isNaN(parsed)) throw new PortError(`field ${JSON.stringify(column)} must hold a number, got ${JSON.stringify(value)}`);
  return parsed;
}

/** A timestamp: a finite integer-valued number of ms below 2^53 in magnitude. */
export function checkedTimestamp(value: RawValue, what: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || Math.abs(value) >= MAX_ABS_TS) {
    throw new PortError(`${what}: ts must be integer ms since the epoch, got ${JSON.stringify(value)}`);
  }
  return Math.trunc(value);
}

/** A view's window as a rule of the cut reads it: its encoded rows and their timestamps, oldest first. */
export interface WindowRows {
  readonly rows: readonly Int32Array[];
  readonly ts: readonly number[];
}

/** The manifest read once: each group's features in column order, vocabularies as maps. */
export class EncoderSpec {
  readonly groups = new Map<string, FeatureEntry[]>();
  readonly vocabularies = new Map<string, Map<string, number>>();
  readonly length: number;

  constructor(readonly features: FeaturesJson) {
    this.length = features.sequence.length;
    for (const feature of features.features) {
      const list = this.groups.get(feature.group) ?? [];
      list.push(feature);
      this.groups.set(feature.group, list);
    }
    for (const list of this.groups.values()) list.sort((a, b) => a.column - b.column);
    for (const [key, values] of Object.entries(features.vocabularies)) {
      this.vocabularies.set(key, new Map(values.map((value, index) => [value, index + 2])));
    }
  }

  group(name: string): FeatureEntry[] {
    const list = this.groups.get(name);
    if (list === undefined) throw new PortError(`features.json has no group ${JSON.stringify(name)}`);
    return list;
  }

  width(name: string): number {
    return this.group(name).length;
  }

  stepRule(feature: FeatureEntry): StepRule {
    return this.features.rules[feature.rule] as StepRule;
  }

  /** The id of the feature's category value (1 + its index), refusing anything else. */
  categoryId(feature: FeatureEntry, value: string | null, view: string): number {
    const categories = feature.categories ?? [];
    if (value === null) throw new PortError(`${view} ${feature.reads[0]} is missing; expected one of ${JSON.stringify(categories)}`);
    const index = categories.indexOf(value);
    if (index < 0) throw new PortError(`unknown ${view} ${feature.reads[0]} ${JSON.stringify(value)}; expected one of ${JSON.stringify(categories)}`);
    return index + 1;
  }

  /** The id of a rule of elapsed time (step_age, action_age) at x = cut_ts - ts. */
  elapsedId(feature: FeatureEntry, elapsedMs: number): number {
    return piecewiseBucket(elapsedMs, this.features.rules[feature.rule] as PiecewiseRule) + 1;
  }

  /** The columns of a view filled at the cut (at_cut: the step age), with their features. */
  atCutColumns(view: string): FeatureEntry[] {
    return this.group(view).filter((feature) => feature.at_cut === true);
  }

  /** The hour of day id of a timestamp. */
  hourId(ts: number): number {
    return hourOfDay(ts, this.features.rules.hour.utc_offset_minutes) + 1;
  }

  /** The stay id of a stay in ms. */
  stayId(stayMs: number): number {
    const rules = this.features.rules;
    return stayBucket(stayMs, rules.stay_time_pieces, rules.stay_time_last) + 1;
  }

  /** One user's history counts or profile levels (raw contract fields; a missing one 0) -> ids. */
  staticIds(group: string, values: Readonly<Record<string, number | null | undefined>>): Int32Array {
    const features = this.group(group);
    const out = new Int32Array(features.length);
    features.forEach((feature, i) => {
      const column = feature.reads[0] ?? feature.source;
      const value = values[column];
      out[i] = clipped(value === null || value === undefined ? 0 : value, feature.vocab_size, `${group} ${column}`) + 1;
    });
    return out;
  }

  /** The context ids at a cut, column by column: each view's recency (from its window's last row,
   * if any), the cut hour, and each action age (from the last row of its view's window whose event
   * had the action, if any). */
  contextIds(cutTs: number, windows: ReadonlyMap<string, WindowRows | undefined>): Int32Array {
    const features = this.group("context");
    const out = new Int32Array(features.length);
    const rules = this.features.rules;
    features.forEach((feature, i) => {
      if (feature.kind === "recency") {
        const last = windows.get(feature.view ?? "")?.ts.at(-1);
        out[i] = (last === undefined ? rules.recency_none_value : stepBucket(cutTs - last, this.stepRule(feature))) + 1;
      } else if (feature.kind === "hour" && feature.reads[0] === "cut_ts") {
        out[i] = this.hourId(cutTs);
      } else if (feature.kind === "since") {
        const last = this.lastEventTs(feature, windows.get(feature.view ?? ""));
        const rule = rules[feature.rule] as PiecewiseRule;
        out[i] = last === undefined ? (rule.none_value as number) + 1 : this.elapsedId(feature, cutTs - last);
      } else {
        throw new PortError(`context feature ${feature.name}: kind ${feature.kind} reading ${feature.reads.join(", ")} is not a rule of the cut this port knows`);
      }
    });
    return out;
  }

  /** The ts of the newest row of a window (in the window's order) whose event matches the feature's
   * last_event_when, read on the row from the view's category feature of that column. */
  private lastEventTs(feature: FeatureEntry, window: WindowRows | undefined): number | undefined {
    const when = feature.last_event_when;
    const view = feature.view ?? "";
    const column = this.group(view).find((f) => f.kind === "category" && f.reads[0] === when?.column);
    if (when === undefined || column === undefined) {
      throw new PortError(`context feature ${feature.name}: ${view} has no category feature reading ${JSON.stringify(when?.column)}`);
    }
    if (window === undefined) return undefined;
    const ids = when.in.map((value) => this.categoryId(column, value, view));
    for (let r = window.rows.length - 1; r >= 0; r -= 1) {
      if (ids.includes(window.rows[r]?.[column.column] ?? 0)) return window.ts[r];
    }
    return undefined;
  }
}

export class StreamEncoder {
  private readonly lastTs = new Map<string, number>();

  constructor(readonly spec: EncoderSpec, readonly screen: readonly [number, number]) {}

  /** One raw event of a view (a dict in the view's raw contract) -> its row of ids. */
  encode(view: string, event: RawEvent): Int32Array {
    if (event["ts"] === null || event["ts"] === undefined) throw new PortError(`${view} event has no ts`);
    const ts = checkedTimestamp(event["ts"], `${view} event`);
    const features = this.spec.group(view);
    const extents = this.extents(view, features, event);
    const row = new Int32Array(features.length);
    features.forEach((feature, i) => {
      row[i] = this.featureId(view, feature, event, ts, extents);
    });
    this.lastTs.set(view, ts);
    return row;
  }

  /** The screen size an event is read against: its own, else the device's; checked when read. */
  private extents(view: string, features: FeatureEntry[], event: RawEvent): [number, number] {
    const out: [number, number] = [this.screen[0], this.screen[1]];
    const read = new Set(features.flatMap((f) => f.reads).filter((c) => c in EXTENT_COLUMNS));
    for (const column of read) {
      const index = EXTENT_COLUMNS[column] as 0 | 1;
      const own = numberValue(event, column);
      out[index] = Number.isNaN(own) ? this.screen[index] : own;
      if (!(Number.isFinite(out[index]) && out[index] > 0)) {
        throw new PortError(`${view}: screen_w and screen_h must be positive finite numbers`);
      }
    }
    return out;
  }

  private featureId(view: string, feature: FeatureEntry, event: RawEvent, ts: number, extents: [number, number]): number {
    if (feature.at_cut === true) return this.spec.features.ids.padding; // the cut fills it (assemble.ts)
    const applies = feature.applies_when;
    if (applies !== undefined) {
      const kind = stringValue(event, applies.column);
      if (kind === null || !applies.in.includes(kind)) return 0;
    }
    const spec = this.spec;
    const numbers = (): number[] => feature.reads.map((column) => {
      if (column in EXTENT_COLUMNS) return extents[EXTENT_COLUMNS[column] as 0 | 1];
      const value = numberValue(event, column);
      if (applies !== undefined && !Number.isFinite(value)) {
        throw new PortError(`${column} is missing or not a finite number on a ${view} event that needs it`);
      }
      return value;
    });
    const segments = (kind: string): number =>
      kind.endsWith("_x") ? spec.features.rules.screen.segments_x : spec.features.rules.screen.segments_y;
    switch (feature.kind) {
      case "vocabulary": {
        const value = stringValue(event, feature.reads[0] ?? "");
        if (value === null) {
          if (applies !== undefined) throw new PortError(`${feature.reads[0]} is missing on a ${view} event that needs it`);
          return spec.features.ids.padding;
        }
        return spec.vocabularies.get(`${feature.group}.${feature.name}`)?.get(value) ?? spec.features.ids.oov;
      }
      case "category":
        return spec.categoryId(feature, stringValue(event, feature.reads[0] ?? ""), view);
      case "step": {
        const x = spec.features.rules.step_x[feature.rule];
        if (x === "gap") {
          const previous = this.lastTs.get(view);
          return stepBucket(previous === undefined ? Infinity : ts - previous, spec.stepRule(feature)) + 1;
        }
        if (x === "value") return stepBucket(numbers()[0] ?? Number.NaN, spec.stepRule(feature)) + 1;
        throw new PortError(`${view} feature ${feature.name}: step input ${JSON.stringify(x)} is not one this port knows`);
      }
      case "screen_x":
      case "screen_y": {
        const [coord, extent] = numbers() as [number, number];
        return screenSegment(coord, extent, segments(feature.kind)) + 1;
      }
      case "swipe_length_x":
      case "swipe_length_y": {
        const [end, start, extent] = numbers() as [number, number, number];
        return signedLengthSegment(end - start, extent, segments(feature.kind)) + 1;
      }
      case "direction": {
        const [end, start] = numbers() as [number, number];
        return direction(end - start) + 1;
      }
      case "stay_time": {
        const stay = numberValue(event, feature.reads[0] ?? "");
        return spec.stayId(Number.isNaN(stay) ? 0 : stay);
      }
      case "hour":
        return spec.hourId(ts);
      default:
        throw new PortError(`${view} feature ${feature.name}: kind ${feature.kind} is not a kind of an event feature`);
    }
  }
}
