// The live perfusion analysis of a session. The display path hands it every tracked frame (one
// native call measures every region); frames the tracker marks uncertain or lost are counted and
// left out. About once a second the curves go to a worker thread for bolus detection, the two
// model fits and the parameters (analysis.ts), so the display path never waits for a fit; a refit
// that comes due while one is running is skipped (counted), never queued. The scoring path hands
// it the lesion's radiomics features of each scored frame; once the phases are known they become
// phase features (`peak:contrast.lesion.glcm_Contrast`) and delta features
// (`peak-pre:contrast.lesion.firstorder_Mean` = peak minus pre-contrast) for the model cards,
// alongside the parameters (`perfusion.lesion.PE`, relative `perfusion.lesion.rPE`).
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { FeatureSet } from '../features.js';
import type { Frame } from '../frame.js';
import type { LaidOutFrame } from '../layout.js';
import type { RingSet } from '../regions.js';
import type { TrackResult } from '../tracking.js';
import { analyseCurves, type CurvesInput, type PerfusionAnalysis } from './analysis.js';
import type { BolusModelName } from './models.js';
import { PARAMETER_NAMES } from './parameters.js';
import { PHASES, type Phase } from './phases.js';
import { CurveStore, linearisationLut, measureRegions, referenceAt, type Linearisation, type ReferenceRegion } from './tic.js';

export interface PerfusionOptions {
  /** Undo the display's log compression (null: average gray levels as displayed). */
  linearisation?: Linearisation | null;
  /** The model whose parameters are reported and scored (default lognormal). */
  model?: BolusModelName;
  /** Seconds of session time between analyses (default 1). */
  refitIntervalS?: number;
  /** Samples kept before the curve is halved in time resolution (default 36 000: 20 min at 30 fps). */
  capacity?: number;
  /** A frame is saturated when more than this fraction of its lesion pixels is at 255 (default 0.05). */
  saturationLimit?: number;
  /** Run analyses in a worker thread (default true); false analyses on the calling thread. */
  worker?: boolean;
  /** Scored frames whose lesion features are kept for the phases (default 4096; halved when full). */
  featureHistory?: number;
}

/** Why samples were left out. */
export interface PerfusionCounts { samples: number; uncertain: number; lost: number; idle: number; skippedAnalyses: number; analyses: number; decimations: number }

export interface PerfusionUpdate { analysis: PerfusionAnalysis; counts: PerfusionCounts }

/**
 * A frame's time on the session's clock: the source's own clock when it has one (a recording or
 * file played faster than real time keeps its true timing), else the capture time.
 */
export function sessionMs(frame: Frame): number {
  return frame.sourceTimeMs ?? frame.timestampMs;
}

const PHASE_DELTAS: Array<[Phase, Phase]> = [['early', 'pre'], ['peak', 'pre'], ['late', 'pre'], ['peak', 'early'], ['late', 'early'], ['late', 'peak']];

/** Events: 'analysis' (PerfusionUpdate) after every analysis, 'error' (Error) when one failed. */
export class PerfusionAnalyzer extends EventEmitter {
  readonly model: BolusModelName;
  readonly linearisation: Linearisation | null;
  private readonly lut: Float32Array;
  private readonly refitIntervalS: number;
  private readonly saturationLimit: number;
  private readonly capacity: number;
  private readonly useWorker: boolean;
  private store: CurveStore | undefined;
  /** Region names in the store: lesion, one per ring (each ring answers to all its names), reference. */
  private ringNames: string[][] = [];
  private originMs: number | undefined;
  private reference: ReferenceRegion | undefined;
  private lastAnalysisT = -Infinity;
  private busy = false;
  /** Bumped by reset(): an analysis of an older curve that finishes afterwards is dropped. */
  private generation = 0;
  private worker: Worker | undefined;
  private latest: PerfusionAnalysis | undefined;
  private inputs: FeatureSet = {};
  private counts: PerfusionCounts = { samples: 0, uncertain: 0, lost: 0, idle: 0, skippedAnalyses: 0, analyses: 0, decimations: 0 };
  // Lesion features of scored frames: times and rows in `featureNames` order.
  private featureNames: string[] | undefined;
  private featureT: number[] = [];
  private featureRows: Float64Array[] = [];
  private readonly featureHistory: number;

  constructor(opts: PerfusionOptions = {}) {
    super();
    this.model = opts.model ?? 'lognormal';
    if (this.model !== 'lognormal' && this.model !== 'gammaVariate') throw new RangeError(`perfusion.model must be lognormal or gammaVariate (got ${String(this.model)})`);
    this.linearisation = opts.linearisation ?? null;
    this.lut = linearisationLut(this.linearisation);
    this.refitIntervalS = opts.refitIntervalS ?? 1;
    if (!(this.refitIntervalS > 0)) throw new RangeError(`perfusion.refitIntervalS must be > 0 (got ${this.refitIntervalS})`);
    this.saturationLimit = opts.saturationLimit ?? 0.05;
    if (!(this.saturationLimit > 0 && this.saturationLimit < 1)) throw new RangeError(`perfusion.saturationLimit must be in (0, 1) (got ${this.saturationLimit})`);
    this.capacity = opts.capacity ?? 36_000;
    this.useWorker = opts.worker ?? true;
    this.featureHistory = opts.featureHistory ?? 4096;
    if (!(Number.isInteger(this.featureHistory) && this.featureHistory >= 16)) throw new RangeError('perfusion.featureHistory must be an integer >= 16');
  }

  /** Region names of the curves (lesion, rings by their first name, reference), once the first frame was measured. */
  get regions(): string[] { return this.store ? [...this.store.regions] : []; }

  /** The last analysis (undefined before the first). */
  get analysis(): PerfusionAnalysis | undefined { return this.latest; }

  get stats(): PerfusionCounts { return { ...this.counts, decimations: this.store?.decimations ?? 0 }; }

  /** The session's time origin (capture ms of its first frame), undefined before it. */
  get origin(): number | undefined { return this.originMs; }

  /**
   * Places (or with null removes) the reference region: a disc of radiusMm at (x, y) in pane
   * coordinates of the frame whose lesion centre is `lesionAt` (tracked scale `scaleAt`); it then
   * follows the tissue as tracked.
   */
  setReference(ref: { x: number; y: number; radiusMm: number } | null, lesionAt: { x: number; y: number }, scaleAt = 1): void {
    // A moved (or removed) reference starts its curve afresh: one series, one place.
    this.store?.clearRegion('reference');
    if (ref === null) { this.reference = undefined; return; }
    if (!Number.isFinite(ref.x) || !Number.isFinite(ref.y)) throw new RangeError('reference: x and y must be finite pane coordinates');
    if (!(ref.radiusMm >= 0.5 && ref.radiusMm <= 20)) throw new RangeError(`reference: radiusMm must be in [0.5, 20] (got ${ref.radiusMm})`);
    this.reference = { x: ref.x, y: ref.y, radiusMm: ref.radiusMm, lesionAt: { ...lesionAt }, scaleAt };
  }

  /** The reference disc on a frame whose lesion centre is `center` and tracked scale `scale` (pane coordinates), or null. */
  referenceOn(center: { x: number; y: number }, scale?: number): { x: number; y: number; radiusMm: number } | null {
    return this.reference ? { ...referenceAt(this.reference, center, scale), radiusMm: this.reference.radiusMm } : null;
  }

  /** Starts a new curve (a new injection): samples, features, analysis and origin are forgotten; the reference stays. */
  reset(): void {
    this.generation++;
    this.store?.clear();
    this.originMs = undefined;
    this.lastAnalysisT = -Infinity;
    this.latest = undefined;
    this.inputs = {};
    this.featureT = [];
    this.featureRows = [];
    this.counts = { samples: 0, uncertain: 0, lost: 0, idle: 0, skippedAnalyses: 0, analyses: 0, decimations: 0 };
  }

  /**
   * One displayed frame. Only frames tracked with confidence are measured; the others are
   * counted by state. May start an analysis (in the worker) when one is due.
   */
  sample(lf: LaidOutFrame, rings: RingSet | undefined, track: TrackResult): void {
    const ms = sessionMs(lf.frame);
    this.originMs ??= ms;
    if (track.state !== 'tracking') {
      this.counts[track.state]++;
      return;
    }
    if (!rings) return;   // a tracked frame always has its regions; nothing to measure without
    if (!this.store || this.ringNames.length !== rings.names.length || this.ringNames.some((n, k) => n[0] !== rings.names[k][0])) this.newStore(rings);
    const ref = this.referenceOn(track.center, track.scale);
    const m = measureRegions(lf, rings, this.lut, ref, this.linearisation !== null);
    const t = (ms - this.originMs) / 1000;
    const values = Array.from(m.means);
    if (!ref) values[values.length - 1] = NaN;
    this.store!.add(t, values, m.saturated[0]);
    this.counts.samples++;
    if (t - this.lastAnalysisT >= this.refitIntervalS) {
      // Due while one still runs: skipped (counted once per interval), never queued.
      if (this.busy) { this.counts.skippedAnalyses++; this.lastAnalysisT = t; } else void this.analyseNow(t);
    }
  }

  /**
   * Analyses the curves now (on the calling thread, or in the worker when configured, skipping
   * when one is running). Resolves with the analysis, or undefined when skipped or nothing to analyse.
   */
  async analyseNow(at?: number): Promise<PerfusionAnalysis | undefined> {
    if (!this.store || this.store.length === 0) return undefined;
    if (this.busy) { this.counts.skippedAnalyses++; return undefined; }
    this.busy = true;
    this.lastAnalysisT = at ?? this.store.times(this.store.length - 1)[0];
    const input = this.curvesInput();
    const generation = this.generation;
    try {
      const analysis = this.useWorker ? await this.inWorker(input) : analyseCurves(input);
      // A new injection started while this one ran: its parameters belong to the old curve.
      if (generation !== this.generation) return undefined;
      this.take(analysis);
      this.emit('analysis', { analysis, counts: this.stats } satisfies PerfusionUpdate);
      return analysis;
    } catch (e) {
      if (this.listenerCount('error')) this.emit('error', e);
      return undefined;
    } finally {
      this.busy = false;
    }
  }

  /** Analyses on the calling thread whatever the worker setting (the command line's final pass). */
  analyseSync(): PerfusionAnalysis | undefined {
    if (!this.store || this.store.length === 0) return undefined;
    const analysis = analyseCurves(this.curvesInput());
    this.take(analysis);
    return analysis;
  }

  /** An analysis becomes the current one: counted, and what the cards read is derived from it. */
  private take(analysis: PerfusionAnalysis): void {
    this.latest = analysis;
    this.counts.analyses++;
    this.inputs = this.scoreInputsOf(analysis);
  }

  /** Keeps the lesion's features of a scored frame (sessionMs of the frame) for the phase features. */
  addFeatures(captureMs: number, features: FeatureSet): void {
    if (this.originMs === undefined) return;
    if (!this.featureNames) this.featureNames = Object.keys(features).filter((k) => k.split('.')[1] === 'lesion').sort();
    const row = new Float64Array(this.featureNames.length);
    this.featureNames.forEach((k, i) => { row[i] = features[k] ?? NaN; });
    if (this.featureRows.length >= this.featureHistory) {
      this.featureRows = this.featureRows.filter((_, i) => i % 2 === 0);
      this.featureT = this.featureT.filter((_, i) => i % 2 === 0);
    }
    this.featureT.push((captureMs - this.originMs) / 1000);
    this.featureRows.push(row);
  }

  /**
   * What the model cards may read from the perfusion analysis: parameters per region
   * (`perfusion.<region>.<P>`, relative `perfusion.<region>.r<P>`), phase features and deltas.
   * Empty until a fit stands; keys of a phase with no scored frame are absent.
   */
  scoreInputs(): FeatureSet { return this.inputs; }

  /** The session's curves for display or export, at most maxPoints samples (time bins averaged). */
  curves(maxPoints = Infinity): { t: number[]; series: Record<string, Array<number | null>> } {
    if (!this.store || !this.store.length) return { t: [], series: {} };
    const t = this.store.times();
    const bins = Math.min(t.length, Math.max(2, Math.floor(maxPoints)));
    const per = t.length / bins;
    const avg = (a: Float64Array) => {
      const out: Array<number | null> = [];
      for (let b = 0; b < bins; b++) {
        let s = 0, n = 0;
        for (let i = Math.floor(b * per); i < Math.floor((b + 1) * per); i++) if (Number.isFinite(a[i])) { s += a[i]; n++; }
        out.push(n ? s / n : null);
      }
      return out;
    };
    return { t: avg(t) as number[], series: Object.fromEntries(this.store.regions.map((r) => [r, avg(this.store!.values(r))])) };
  }

  /** Stops the worker (if any). */
  close(): void {
    void this.worker?.terminate();
    this.worker = undefined;
  }

  private newStore(rings: RingSet): void {
    this.ringNames = rings.names.map((n) => [...n]);
    this.store = new CurveStore(['lesion', ...this.ringNames.map((n) => n[0]), 'reference'], this.capacity);
  }

  private curvesInput(): CurvesInput {
    const s = this.store!;
    return {
      t: s.times(), regions: s.regions.map((name) => ({ name, y: s.values(name) })), lesionSaturation: s.saturation(),
      reference: this.reference ? 'reference' : null, model: this.model, saturationLimit: this.saturationLimit,
    };
  }

  private inWorker(input: CurvesInput): Promise<PerfusionAnalysis> {
    if (!this.worker) {
      this.worker = new Worker(new URL('./worker.js', import.meta.url));
      this.worker.unref();
    }
    const w = this.worker;
    return new Promise((resolve, reject) => {
      const done = (m: { analysis?: PerfusionAnalysis; error?: string }) => {
        w.off('error', fail);
        if (m.error) reject(new Error(`perfusion analysis failed: ${m.error}`));
        else resolve(m.analysis!);
      };
      const fail = (e: Error) => { w.off('message', done); this.worker = undefined; reject(e); };
      w.once('message', done);
      w.once('error', fail);
      w.postMessage(input);
    });
  }

  private scoreInputsOf(a: PerfusionAnalysis): FeatureSet {
    const out: FeatureSet = {};
    for (const r of a.regions) {
      if (!r.parameters) continue;
      const names = r.name === 'lesion' || r.name === 'reference' ? [r.name] : this.ringNames.find((n) => n[0] === r.name) ?? [r.name];
      for (const name of names) {
        for (const p of PARAMETER_NAMES) out[`perfusion.${name}.${p}`] = r.parameters[p];
        if (r.relative) for (const [k, v] of Object.entries(r.relative)) if (v !== null) out[`perfusion.${name}.${k}`] = v;
      }
    }
    if (a.phases && this.featureNames) {
      const means = new Map<Phase, Float64Array>();
      for (const phase of PHASES) {
        const [lo, hi] = a.phases[phase];
        const sum = new Float64Array(this.featureNames.length);
        let n = 0;
        this.featureT.forEach((ft, i) => {
          if (ft < lo || ft > hi) return;
          n++;
          const row = this.featureRows[i];
          for (let k = 0; k < sum.length; k++) sum[k] += row[k];
        });
        if (!n) continue;
        for (let k = 0; k < sum.length; k++) sum[k] /= n;
        means.set(phase, sum);
        this.featureNames.forEach((f, k) => { out[`${phase}:${f}`] = sum[k]; });
      }
      for (const [p, q] of PHASE_DELTAS) {
        const a1 = means.get(p), b1 = means.get(q);
        if (a1 && b1) this.featureNames.forEach((f, k) => { out[`${p}-${q}:${f}`] = a1[k] - b1[k]; });
      }
    }
    return out;
  }
}
