// `sonomics perfusion --input SRC [--init MASK.png]`: tracking and the CEUS perfusion analysis
// over a source, every frame in order (nothing dropped), then the fitted parameters per region.
// On the phantom the lesion is locked on its true outline, the reference region goes where the
// phantom suggests, and the JSON carries the phantom's true parameters under `truth` (with the
// relative error of each measured one), so anyone can see the error.
import { writeFileSync } from 'node:fs';
import { FrameStamper } from '../core/arrival.js';
import type { Frame } from '../core/frame.js';
import { applyLayout, type Layout } from '../core/layout.js';
import { createLesionMask, type LesionMask } from '../core/mask.js';
import { DECISION_SUPPORT_NOTICE } from '../core/modelcard.js';
import { analyseCurves, type PerfusionAnalysis } from '../core/perfusion/analysis.js';
import { PerfusionAnalyzer, type PerfusionCounts } from '../core/perfusion/analyzer.js';
import { perfusionCsv } from '../core/perfusion/export.js';
import type { BolusModelName } from '../core/perfusion/models.js';
import { bolusParameters, PARAMETER_NAMES, relativeParameters, type PerfusionParameters } from '../core/perfusion/parameters.js';
import type { Linearisation } from '../core/perfusion/tic.js';
import type { LayoutProfile } from '../core/profile.js';
import { computeRings, DEFAULT_RING_RADII_MM, ringName } from '../core/regions.js';
import { LesionTracker, type TrackerOptions } from '../core/tracking.js';
import { layoutFor, openInput, inputKind } from '../device/open.js';
import { lognormalArea, PhantomScanner, type PhantomMotion } from '../device/phantom.js';
import { drive, readLesion, type InputOptions } from './capture.js';
import { UsageError } from './errors.js';

export interface PerfusionCommandOptions extends InputOptions {
  /** The lesion outline on the first frame (required unless the input is the phantom). */
  init?: string;
  layout?: { name: string; profile: LayoutProfile };
  tracker?: TrackerOptions;
  ringsMm?: number[];
  /** Reference disc: pane x, y (pixels) on the first frame, radius in mm. Phantom default: its suggestion. */
  reference?: { x: number; y: number; radiusMm: number };
  /** Undo the display's log compression (phantom default: the phantom's own; else null = gray levels). */
  linearisation?: Linearisation | null;
  model?: BolusModelName;
  /** Frames to read at most (phantom: default seconds x fps). */
  max?: number;
  /** Phantom only: seconds rendered (default 75). */
  seconds?: number;
  /** Phantom only: frame size and rate. */
  phantom?: { width?: number; height?: number; fps?: number; seed?: number };
  /** Phantom only: every Nth frame is delivered twice, as a capture card faster than the scanner does (0: none). */
  repeatEvery?: number;
  /** Phantom only: the probe leaves the lesion for a while (start s, duration s): tracking is lost there. */
  lose?: { startS: number; durationS: number };
  /** Write the curve (every sample, and the fitted curves) as CSV here. */
  csv?: string;
}

export interface RegionTruth { lesionWeight: number; tissueWeight: number; parameters: PerfusionParameters | null; reason?: string }

export interface PerfusionReport {
  input: string;
  notice: string;
  frames: { read: number; duplicates: number } & PerfusionCounts;
  linearisation: Linearisation | null;
  analysis: PerfusionAnalysis;
  truth?: { regions: Record<string, RegionTruth>; relative: Record<string, Record<string, number | null>>; errors: Record<string, Record<string, number>> };
}

export async function perfusionCommand(o: PerfusionCommandOptions, err: (line: string) => void, signal?: AbortSignal): Promise<PerfusionReport> {
  const phantomInput = inputKind(o.input, o.ffmpeg.format) === 'phantom';
  if (!phantomInput && !o.init) throw new UsageError('perfusion: --init MASK.png is required (the lesion outline on the first frame) unless the input is the phantom');
  for (const [flag, set] of [['--seconds', o.seconds], ['--repeat-every', o.repeatEvery], ['--lose', o.lose]] as const)
    if (!phantomInput && set !== undefined) throw new UsageError(`perfusion: ${flag} applies to the phantom only`);
  const ringsMm = o.ringsMm ?? [...DEFAULT_RING_RADII_MM];
  const tracker = new LesionTracker(o.tracker);
  let layout: Layout;
  let phantom: PhantomScanner | undefined;
  if (phantomInput) {
    const seed = o.input.includes(':') ? Number(o.input.split(':')[1]) : o.phantom?.seed;
    const motion: PhantomMotion | undefined = o.lose ? { excursions: [{ startS: o.lose.startS, durationS: o.lose.durationS, dxMm: 30, dyMm: 0 }] } : undefined;
    phantom = new PhantomScanner({ ...o.phantom, seed, motion });
    layout = phantom.layout;
  } else {
    const source = await openInput(o.input, { ffmpeg: o.ffmpeg, realtime: false, loop: false });
    layout = layoutFor(source, o.layout);
    return runSource(o, source, layout, tracker, ringsMm, err, signal);
  }
  return runPhantom(o, phantom, layout, tracker, ringsMm, err, signal);
}

/** A generic source: every frame it delivers, in order. */
async function runSource(o: PerfusionCommandOptions, source: Awaited<ReturnType<typeof openInput>>, layout: Layout, tracker: LesionTracker,
  ringsMm: number[], err: (line: string) => void, signal?: AbortSignal): Promise<PerfusionReport> {
  const lesion = await readLesion(o.init!, layout);
  const run = new Run(o, layout, tracker, ringsMm, o.linearisation ?? null);
  await drive(source, (f) => run.frame(f, lesion, err), { max: o.max, signal });
  return run.finish(o.input);
}

/** The phantom, rendered offline frame by frame (as fast as it renders), with its truth. */
async function runPhantom(o: PerfusionCommandOptions, phantom: PhantomScanner, layout: Layout, tracker: LesionTracker,
  ringsMm: number[], err: (line: string) => void, signal?: AbortSignal): Promise<PerfusionReport> {
  const c = phantom.contrastCompression;
  const linearisation = o.linearisation === undefined ? { dynamicRangeDb: c.dynamicRangeDb, offsetDb: c.dbMin } : o.linearisation;
  const run = new Run(o, layout, tracker, ringsMm, linearisation);
  const frames = o.max ?? Math.round((o.seconds ?? 75) * phantom.fps);
  const stamper = new FrameStamper({ sourceId: phantom.id, width: layout.width, height: layout.height, fps: phantom.fps });
  const truth = new TruthAccumulator(phantom, layout, ringsMm);
  const first = phantom.render(0);
  const lesion = createLesionMask(first.truth.lesionMask.slice(), layout.panes.bmode.rect.width, layout.panes.bmode.rect.height);
  const reference = o.reference ?? phantom.suggestedReference(first.truth.center);
  run.reference = reference;
  const lockCenter = first.truth.center;
  for (let i = 0; i < frames && !signal?.aborted; i++) {
    const { data, truth: tr } = phantom.render(i);
    const ms = (i * 1000) / phantom.fps;
    const deliveries = o.repeatEvery && i % o.repeatEvery === o.repeatEvery - 1 ? 2 : 1;
    for (let d = 0; d < deliveries; d++) {
      // A repeat is the same picture captured again a moment later: the stamper must spot it.
      const f: Frame = stamper.stamp(d ? data.slice() : data, { sourceTimeMs: ms + d * (500 / phantom.fps), arrivalMs: ms + d * (500 / phantom.fps) });
      const tracked = run.frame(f, lesion, err);
      if (tracked && i % 5 === 0) truth.add(tr, reference, lockCenter, first.truth.motion.scale);
    }
    if (i % 64 === 63) await new Promise((r) => setImmediate(r));   // let a SIGINT through
  }
  const report = run.finish(`phantom:${phantom.seed}`);
  report.truth = truth.result(report.analysis);
  return report;
}

/** The lossless loop shared by both inputs: lock on the first frame, track, measure, analyse at the end. */
class Run {
  readonly analyzer: PerfusionAnalyzer;
  readonly model: BolusModelName;
  reference: { x: number; y: number; radiusMm: number } | undefined;
  private locked = false;
  private read = 0;
  private duplicates = 0;

  constructor(private readonly o: PerfusionCommandOptions, private readonly layout: Layout, private readonly tracker: LesionTracker,
    private readonly ringsMm: number[], private readonly linearisation: Linearisation | null) {
    this.model = o.model ?? 'lognormal';
    this.analyzer = new PerfusionAnalyzer({ linearisation, model: this.model, worker: false, refitIntervalS: Infinity });
    this.reference = o.reference;
  }

  /** One frame; true when it was tracked with confidence (a TIC sample). */
  frame(f: Frame, lesion: LesionMask, err: (line: string) => void): boolean {
    this.read++;
    if (f.duplicate) { this.duplicates++; return false; }
    let lf;
    try {
      lf = applyLayout(f, this.layout);
    } catch (e) {
      err(`perfusion: frame ${this.read - 1}: ${(e as Error).message}; skipped`);
      return false;
    }
    if (!this.locked) {
      this.tracker.lock(lf, lesion);   // a bad outline ends the command: nothing can be measured
      this.locked = true;
    }
    const r = this.tracker.track(lf);
    if (this.reference && this.analyzer.regions.length === 0 && r.state === 'tracking') this.analyzer.setReference(this.reference, r.center, r.scale);
    const rings = r.mask ? computeRings(r.mask, this.layout.panes.bmode, this.ringsMm, this.layout.sector) : undefined;
    this.analyzer.sample(lf, rings, r);
    return r.state === 'tracking';
  }

  finish(input: string): PerfusionReport {
    if (!this.locked) throw new Error(`perfusion: ${input} delivered no frame that fits the layout`);
    const analysis = this.analyzer.analyseSync() ?? analyseCurves({ t: new Float64Array(0), regions: [], lesionSaturation: new Float64Array(0), reference: null, model: this.model, saturationLimit: 0.05 });
    if (this.o.csv) writeFileSync(this.o.csv, perfusionCsv(this.analyzer, analysis));
    return {
      input, notice: DECISION_SUPPORT_NOTICE, frames: { read: this.read, duplicates: this.duplicates, ...this.analyzer.stats },
      linearisation: this.linearisation, analysis,
    };
  }
}

/**
 * The phantom's truth for each measured region, averaged over tracked frames: the mean lesion and
 * tissue perfusion weights of the region's true pixels (true outline, rings around it, the
 * reference disc where the tracked one is). A region fed by one bolus follows that bolus' lognormal
 * scaled by its weight; its true parameters are the same bolusParameters of that curve.
 */
class TruthAccumulator {
  private sums = new Map<string, { lesion: number; tissue: number; n: number }>();

  constructor(private readonly phantom: PhantomScanner, private readonly layout: Layout, private readonly ringsMm: number[]) {}

  add(tr: ReturnType<PhantomScanner['render']>['truth'], reference: { x: number; y: number; radiusMm: number }, lockCenter: { x: number; y: number }, lockScale: number): void {
    const pane = this.layout.panes.bmode;
    const mask = createLesionMask(tr.lesionMask, pane.rect.width, pane.rect.height);
    const rings = computeRings(mask, pane, this.ringsMm, this.layout.sector);
    const w = this.phantom.perfusionWeights(tr.motion, rings.codes, this.ringsMm.length + 1);
    // Cumulative rings, as measured.
    let l = 0, ti = 0, n = 0;
    w.forEach((c, k) => {
      if (k === 0) { this.put('lesion', c.lesion, c.tissue); return; }
      l += c.lesion * c.pixels; ti += c.tissue * c.pixels; n += c.pixels;
      this.put(ringName(this.ringsMm[k - 1]), n ? l / n : 0, n ? ti / n : 0);
    });
    // The reference disc where it truly is: it moved with the tissue around the lesion since the lock.
    const cx = tr.center.x + (reference.x - lockCenter.x) * (tr.motion.scale / lockScale), cy = tr.center.y + (reference.y - lockCenter.y) * (tr.motion.scale / lockScale);
    const rx = reference.radiusMm / pane.spacingX, ry = reference.radiusMm / pane.spacingY;
    const disc = new Uint8Array(pane.rect.width * pane.rect.height);
    for (let y = Math.max(0, Math.floor(cy - ry)); y <= Math.min(pane.rect.height - 1, Math.ceil(cy + ry)); y++)
      for (let x = Math.max(0, Math.floor(cx - rx)); x <= Math.min(pane.rect.width - 1, Math.ceil(cx + rx)); x++)
        if (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1) disc[y * pane.rect.width + x] = 1;
    const r = this.phantom.perfusionWeights(tr.motion, disc, 1)[0];
    this.put('reference', r.lesion, r.tissue);
  }

  result(a: PerfusionAnalysis): NonNullable<PerfusionReport['truth']> {
    const regions: Record<string, RegionTruth> = {};
    for (const [name, s] of this.sums) {
      const lesionWeight = s.lesion / s.n, tissueWeight = s.tissue / s.n;
      // What each bolus brings to the region's peak: a region fed by one (the other under 1 %)
      // follows a single lognormal, whose parameters are the truth.
      const fromLesion = lesionWeight * this.phantom.lesionBolus.peak, fromTissue = tissueWeight * this.phantom.tissueBolus.peak;
      const big = Math.max(fromLesion, fromTissue), small = Math.min(fromLesion, fromTissue);
      if (!(big > 0) || small > 0.01 * big) {
        regions[name] = { lesionWeight, tissueWeight, parameters: null, reason: `fed by both boluses (${(100 * small / big).toFixed(1)} % from the other): not a single lognormal` };
        continue;
      }
      const fromL = fromLesion >= fromTissue;
      const b = fromL ? this.phantom.lesionBolus : this.phantom.tissueBolus;
      const weight = fromL ? lesionWeight : tissueWeight;
      const params = { baseline: 0, area: weight * lognormalArea(b), t0: b.arrivalS, mu: b.mu, sigma: b.sigma };
      regions[name] = { lesionWeight, tissueWeight, parameters: bolusParameters('lognormal', params) };
    }
    const relative: Record<string, Record<string, number | null>> = {};
    const ref = regions.reference?.parameters;
    if (ref) for (const [name, r] of Object.entries(regions)) if (name !== 'reference' && r.parameters) relative[name] = relativeParameters(r.parameters, ref);
    // Relative error of every measured parameter (and relative parameter) against the truth.
    const errors: Record<string, Record<string, number>> = {};
    for (const r of a.regions) {
      const tr = regions[r.name];
      if (!r.parameters || !tr?.parameters) continue;
      const e: Record<string, number> = {};
      for (const p of PARAMETER_NAMES) e[p] = (r.parameters[p] - tr.parameters[p]) / Math.abs(tr.parameters[p]);
      const rel = relative[r.name];
      if (r.relative && rel) for (const [k, v] of Object.entries(r.relative)) if (v !== null && rel[k] !== null && rel[k] !== undefined) e[k] = (v - rel[k]!) / Math.abs(rel[k]!);
      errors[r.name] = e;
    }
    return { regions, relative, errors };
  }

  private put(name: string, lesion: number, tissue: number): void {
    const s = this.sums.get(name) ?? { lesion: 0, tissue: 0, n: 0 };
    s.lesion += lesion; s.tissue += tissue; s.n++;
    this.sums.set(name, s);
  }
}

/** The report as a table for people: parameters per region, truth and error when known. */
export function formatPerfusion(r: PerfusionReport): string {
  const a = r.analysis;
  const lines = [`perfusion of ${r.input}: ${a.state} (${a.message}); model ${a.model}; ${r.frames.samples} samples over ${a.durationS.toFixed(1)} s; excluded uncertain ${r.frames.uncertain}, lost ${r.frames.lost}; duplicates ${r.frames.duplicates}`];
  const cols = ['region', 'state', 'R2 lognormal', 'R2 gamma', ...PARAMETER_NAMES];
  lines.push(cols.join('\t'));
  const f = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '-' : Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4));
  for (const g of a.regions) {
    lines.push([g.name, g.state, f(g.fits.lognormal?.rSquared), f(g.fits.gammaVariate?.rSquared), ...PARAMETER_NAMES.map((p) => f(g.parameters?.[p]))].join('\t'));
    const t = r.truth?.regions[g.name]?.parameters;
    if (t) lines.push([`  truth`, '', '', '', ...PARAMETER_NAMES.map((p) => f(t[p]))].join('\t'));
    const e = r.truth?.errors[g.name];
    if (e) lines.push([`  error %`, '', '', '', ...PARAMETER_NAMES.map((p) => (e[p] === undefined ? '-' : (100 * e[p]).toFixed(2)))].join('\t'));
  }
  if (a.phases) lines.push(`phases (s): ${Object.entries(a.phases).map(([k, [lo, hi]]) => `${k} ${lo.toFixed(1)}–${Number.isFinite(hi) ? hi.toFixed(1) : '…'}`).join(', ')}`);
  lines.push(r.notice);
  return lines.join('\n');
}
