// `sonomics track --input SRC --init MASK.png`: the lesion tracker over any input, one CSV row
// per input frame on stdout (frame, x, y, scale, confidence, state); a JSON summary on stderr.
// The benchmarks run it; researchers use it to check tracking on their own recordings.
import { mean, quantileSorted } from 'simple-statistics';
import type { Frame } from '../core/frame.js';
import { frameFeaturesSync } from '../core/features.js';
import { applyLayout, type LaidOutFrame, type Layout } from '../core/layout.js';
import type { LayoutProfile } from '../core/profile.js';
import { computeRings, planRings } from '../core/regions.js';
import { clinicalCell } from '../core/cohort.js';
import { checkBinWidth, ClinicalInputError, codeClinicalInputs, DECISION_SUPPORT_NOTICE, modelRegions, RiskAggregator, type RiskModel } from '../core/risk.js';
import { LesionTracker, type TrackerOptions, type TrackResult } from '../core/tracking.js';
import { layoutFor, openInput } from '../device/open.js';
import { drive, endless, readLesion, type InputOptions } from './capture.js';
import { UsageError } from './errors.js';

export interface TrackCommandOptions extends InputOptions {
  init: string;
  /**
   * Risk models scored on every tracked frame, in order, none dropped (the lossless batch mode for
   * research): one value per frame and the live value the overlay would show.
   */
  models?: RiskModel[];
  /** Clinical inputs for the models as typed (`age=54`, `palpable=yes`), read by each card's definition. */
  clinical?: Record<string, string>;
  /** Engine bin width (must match the cards'). */
  binWidth?: number;
  layout?: { name: string; profile: LayoutProfile };
  tracker?: TrackerOptions;
  max?: number;
}

export interface TrackSummary {
  input: string;
  frames: number;
  duplicates: number;
  /** Frames that could not be tracked (wrong size, ...), each reported on stderr. */
  rejected: number;
  states: Record<string, number>;
  /** Time of the tracker's step per (non-repeated) frame, ms. */
  trackMs: { median: number; p95: number; mean: number; max: number };
  pane: { width: number; height: number };
  template: { width: number; height: number; step: number };
  falseMatch: number;
  resumeAbove: number;
  notice: string;
}

export const CSV_HEADER = 'frame,x,y,scale,confidence,state';

/** Columns a model adds: its frame value, the aggregated live value, and the status. */
export const modelColumns = (id: string) => [`${id}_value`, `${id}_live`, `${id}_status`];

/** A CSV row: frame index, B-mode centre in frame pixels, scale, confidence, state. */
export function csvRow(index: number, r: TrackResult): string {
  const c = r.frameCenters?.bmode ?? { x: NaN, y: NaN };
  return `${index},${c.x.toFixed(3)},${c.y.toFixed(3)},${r.scale.toFixed(5)},${r.confidence.toFixed(4)},${r.state}`;
}

/**
 * The whole frame as the B-mode pane: a bare frame sequence (images, a video) shows one image
 * and knows no calibration (1 pixel per "mm"). Tracking needs no more.
 */
export function wholeFrameLayout(width: number, height: number): Layout {
  const pane = { rect: { x: 0, y: 0, width, height }, spacingX: 1, spacingY: 1 };
  return { width, height, panes: { bmode: { name: 'bmode', ...pane }, contrast: { name: 'contrast', ...pane } } };
}

export async function trackCommand(o: TrackCommandOptions, out: (line: string) => void, err: (line: string) => void,
  signal?: AbortSignal): Promise<TrackSummary> {
  if (o.max === undefined && endless(o)) throw new UsageError(`track: ${o.input} never ends: give --max N`);
  const source = await openInput(o.input, { ffmpeg: o.ffmpeg, realtime: false, loop: false });
  let layout: Layout;
  try {
    layout = layoutFor(source, o.layout);
  } catch (e) {
    if (o.layout) throw e;
    layout = wholeFrameLayout(source.width, source.height);
  }
  const lesion = await readLesion(o.init, layout);
  const tracker = new LesionTracker(o.tracker);
  const scorer = o.models?.length ? batchScorer(o.models, layout, o.binWidth ?? 25, o.clinical ?? {}) : undefined;
  const states: Record<string, number> = {};
  const times: number[] = [];
  let index = 0, duplicates = 0, rejected = 0, locked = false;
  out([CSV_HEADER, ...(o.models ?? []).flatMap((m) => modelColumns(m.id))].join(','));
  const onFrame = (f: Frame) => {
    const i = index++;
    if (f.duplicate) duplicates++;
    let lf;
    try {
      lf = applyLayout(f, layout);
    } catch (e) {
      rejected++;
      err(`track: frame ${i}: ${(e as Error).message}; skipped`);
      return;
    }
    if (!locked) {
      tracker.lock(lf, lesion);   // a bad outline ends the command: nothing can be tracked
      locked = true;
    }
    const t = performance.now();
    const r = tracker.track(lf);
    if (!f.duplicate) times.push(performance.now() - t);
    states[r.state] = (states[r.state] ?? 0) + 1;
    out(scorer ? `${csvRow(i, r)},${scorer(lf, r)}` : csvRow(i, r));
  };
  await drive(source, onFrame, { max: o.max, signal });
  if (!locked) throw new Error(`track: ${o.input} delivered no frame that fits the layout`);
  const sorted = [...times].sort((a, b) => a - b);
  const pick = (q: number) => (sorted.length ? quantileSorted(sorted, q) : NaN);
  const r = layout.panes.bmode.rect;
  const k = tracker.kernelInfo!;
  return {
    input: o.input, frames: index, duplicates, rejected, states,
    trackMs: { median: pick(0.5), p95: pick(0.95), mean: sorted.length ? mean(sorted) : NaN, max: sorted.at(-1) ?? NaN },
    pane: { width: r.width, height: r.height }, template: k, falseMatch: tracker.falseMatch, resumeAbove: tracker.resumeAbove,
    notice: DECISION_SUPPORT_NOTICE,
  };
}

/**
 * Scores every tracked frame synchronously (features on the calling thread: the blocked event
 * loop holds the source back, so nothing queues and nothing is dropped). Frames that are not
 * tracking get the status and no value, and restart the live window, as in the pipeline.
 */
function batchScorer(models: RiskModel[], layout: Layout, binWidth: number, clinical: Record<string, string>): (lf: LaidOutFrame, r: TrackResult) => string {
  for (const m of models)
    if (m.deep) throw new UsageError(`track: model ${m.id} has deep features, which run asynchronously: score it live (sonomics run/replay)`);
  checkBinWidth(models, binWidth);
  // Each card reads the text by its own definition, as in a cohort CSV; an empty value is refused.
  const coded = codeClinicalInputs(models, clinical, (v, text) => {
    const x = clinicalCell(v, text);
    if (x === undefined) throw new ClinicalInputError(`clinical ${v.name} is empty`, v.name);
    return x;
  }).map((entries) => new Map(entries as Array<[string, number]>));
  const plan = planRings([], modelRegions(models), layout.panes.bmode);
  const aggregators = models.map((m) => new RiskAggregator(m, 15));
  const num = (v: number) => (Number.isFinite(v) ? v.toPrecision(6) : '');
  return (lf, r) => {
    if (r.state !== 'tracking' || !r.mask) {
      for (const a of aggregators) a.reset();
      return models.map(() => `,,${r.state}`).join(',');
    }
    const rings = computeRings(r.mask, layout.panes.bmode, plan.radiiMm, layout.sector, plan.names);
    const { features } = frameFeaturesSync(lf, rings, { binWidth, threads: 2 });
    return aggregators.map((a, k) => {
      const fs = models[k].score(features, coded[k], undefined, r.seq);
      const live = a.add(fs);
      return `${num(fs.value)},${live.status === 'ok' ? num(live.value) : ''},${live.status}`;
    }).join(',');
  };
}
