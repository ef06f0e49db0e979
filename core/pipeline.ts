// The frame pipeline: layout -> lesion tracking -> regions -> features -> risk scores -> publish.
// Two paths joined by latest-value slots:
//   display path (every frame it can take): layout, tracking, regions (mask + rings + contours),
//     then 'display' is published - it never waits for scoring;
//   scoring path: features (native, off the main thread) and risk models, then 'scores'.
// A slow stage drops frames at its input slot (counted) instead of queueing them.
import { EventEmitter } from 'node:events';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Frame } from './frame.js';
import { frameFeatures, type FeatureSet } from './features.js';
import { LatencyRecorder, type LatencySummary } from './latency.js';
import { applyLayout, cropRows, paneToPane, validateLayout, type LaidOutFrame, type Layout } from './layout.js';
import { createLesionMask, shrinkAndGrow, type LesionMask } from './mask.js';
import type { Segmenter, SegmentPrompt } from './segment/segmenter.js';
import type { ClinicalVariable } from './modelcard.js';
import { computeRings, DEFAULT_RING_RADII_MM, planRings, regionContours, type RegionContours, type RingPlan, type RingSet } from './regions.js';
import { checkBinWidth, codeClinicalInputs, modelRegions, RiskAggregator, type Box, type ClinicalValue, type FrameScore, type RiskModel, type RiskScore } from './risk.js';
import { PerfusionAnalyzer, sessionMs, type PerfusionOptions, type PerfusionUpdate } from './perfusion/analyzer.js';
import { LatestSlot } from './slot.js';
import { LesionTracker, TrackingError, type TrackerOptions, type TrackResult } from './tracking.js';

export const STAGES = ['layout', 'track', 'regions', 'features', 'risk', 'publish'] as const;

/** Frames shown lately whose lesion a reference can be anchored to (about 2 s at 30 frames/s). */
const RECENT_ANCHORS = 64;

/** The score's mask sensitivity by default: every 4th tracked frame, the mask shrunk and grown by 2 px. */
export const DEFAULT_MASK_SENSITIVITY = { radiusPx: 2, every: 4 } as const;
export type StageName = (typeof STAGES)[number];

export interface PipelineOptions {
  layout: Layout;
  ringsMm?: readonly number[];
  binWidth?: number;
  /**
   * Threads the features stage may use (1 or 2). Default 1: on a two-core box the second core
   * stays with the display path (tracking, regions, JPEG), which must never slow for scoring.
   */
  featureThreads?: number;
  tracker?: TrackerOptions;
  /** Risk models (core/models.ts loadRiskModel): each scores every unique tracked frame. */
  models?: RiskModel[];
  /** Scores aggregated over this many recent tracked frames. */
  scoreWindow?: number;
  /** CEUS perfusion analysis of the contrast pane (default on, default options); false: off. */
  perfusion?: PerfusionOptions | false;
  /** The one-tap segmenter (core/segment): proposeLesion outlines a lesion from a tap or box. */
  segmenter?: Segmenter;
  /**
   * The score's sensitivity to the mask: every `every`-th scored frame is also scored with the
   * lesion mask shrunk and grown by radiusPx (default 2 px, every 4th frame), and the score's band
   * widens to cover both. false: the band is the frame-to-frame spread alone.
   */
  maskSensitivity?: { radiusPx?: number; every?: number } | false;
}

/** A lesion outline proposed from a tap or box on a shown frame's B-mode pane (pane coordinates). */
export type LesionProposal =
  | { found: true; seq: number; mask: LesionMask; area: number; confidence: number; ms: number }
  | { found: false; seq: number; reason: string; confidence: number; ms: number };

export interface DisplayFrame {
  readonly frame: Frame;
  readonly layout: Layout;
  readonly track: TrackResult;
  readonly rings?: RingSet;
  readonly contours?: RegionContours;
  /** Source-specific ground truth passed through (the phantom's), for tests and benches. */
  readonly truth?: unknown;
  /** The frame held while the pipeline is frozen (published again when a lock changes its outline). */
  readonly frozen?: boolean;
  /** The perfusion reference region on this frame (pane coordinates, mm radius), when placed. */
  readonly reference?: { x: number; y: number; radiusMm: number } | null;
}

export interface ScoreUpdate {
  readonly seq: number;
  /** The scored frame's capture time (frame.timestampMs); absent on a not-live notice without a frame. */
  readonly captureMs?: number;
  /** True when the frame was tracked with confidence: only then are scores live. */
  readonly live: boolean;
  readonly reason?: string;
  readonly trackingState: TrackResult['state'];
  readonly scores: RiskScore[];
  /** The features scored (absent when no lesion region was placed: tracking lost). */
  readonly features?: FeatureSet;
}

export interface PipelineStats {
  received: number;
  /** Frames that repeated the previous image (frame.duplicate): not tracked or scored again. */
  duplicates: number;
  /** Frames that arrived while frozen: not shown, tracked or scored. */
  frozen: number;
  displayed: number;
  scored: number;
  errors: number;
  dropped: { display: number; features: number; risk: number };
  stages: Record<StageName, LatencySummary>;
  endToEnd: { display: LatencySummary; scores: LatencySummary };
}

interface Job { frame: Frame; arrivalMs: number; truth?: unknown }
interface Held { lf: LaidOutFrame; truth?: unknown; shown?: DisplayFrame }
interface ScoringJob { lf: LaidOutFrame; track: TrackResult; rings: RingSet; arrivalMs: number }
interface MaskVariants { radiusPx: number; shrunk: FeatureSet; grown: FeatureSet }
interface RiskJob extends ScoringJob { features: FeatureSet; variants?: MaskVariants }

/**
 * Events: 'display' (DisplayFrame), 'scores' (ScoreUpdate), 'frameError' (Error, Frame),
 * 'lock' (seq) when tracking (re)starts, 'lockError' (TrackingError, seq) when an outline is refused,
 * 'freeze' (frozen, seq) when the picture is held or released, 'models' (ids) when the scored set changes,
 * 'clinical' (values) when clinical inputs are set, 'perfusion' (PerfusionUpdate) after each
 * perfusion analysis, 'reference' (region or null) when the reference region is placed or removed.
 */
export class Pipeline extends EventEmitter {
  readonly layout: Layout;
  readonly ringsMm: readonly number[];
  readonly models: RiskModel[];
  /** The CEUS perfusion analysis (undefined when switched off). */
  readonly perfusion: PerfusionAnalyzer | undefined;
  private readonly binWidth: number;
  /** Rings computed per frame: the displayed ones plus those the models read. */
  private readonly rings: RingPlan;
  /** Clinical inputs coded for each model (its own card's definition: levels may differ between cards), by name. */
  private clinical: Map<string, number>[] = [];
  /** The clinical inputs as entered (before each card codes them), for display. */
  private clinicalEntered = new Map<string, ClinicalValue>();
  /** Models scored (by index); a deselected model is neither scored nor reported. */
  private readonly enabled: boolean[];
  /** The last frame shown, and while frozen the frame held on screen. */
  private last: Held | undefined;
  private frozenOn: Held | undefined;
  /**
   * The lesion's centre and scale on the frames shown lately (oldest first, at most
   * RECENT_ANCHORS): a reference placed on a frame a viewer still shows is anchored to that frame's
   * lesion, not to the newer one the pipeline has shown since.
   */
  private readonly recentAnchors: { seq: number; center: { x: number; y: number }; scale: number }[] = [];
  private readonly featureThreads: number;
  private readonly tracker: LesionTracker;
  private readonly aggregators: RiskAggregator[];
  private readonly input = new LatestSlot<Job>('display');
  private readonly scoring = new LatestSlot<ScoringJob>('features');
  private readonly riskIn = new LatestSlot<RiskJob>('risk');
  private readonly latency = Object.fromEntries(STAGES.map((s) => [s, new LatencyRecorder()])) as Record<StageName, LatencyRecorder>;
  private readonly e2eDisplay = new LatencyRecorder();
  private readonly e2eScores = new LatencyRecorder();
  private lastNotice = '';
  private pendingLock: { mask: LesionMask; settle: (err: Error | undefined, seq: number) => void } | undefined;
  private loops: Promise<void>[] = [];
  private running = false;
  private readonly segmenter: Segmenter | undefined;
  private readonly sensitivity: { radiusPx: number; every: number } | undefined;
  private sensitivityTurn = 0;
  private counters = { received: 0, duplicates: 0, frozen: 0, displayed: 0, scored: 0, errors: 0 };

  constructor(opts: PipelineOptions) {
    super();
    this.layout = validateLayout(opts.layout);
    this.ringsMm = opts.ringsMm ?? DEFAULT_RING_RADII_MM;
    this.binWidth = opts.binWidth ?? 25;
    this.featureThreads = opts.featureThreads ?? 1;
    this.segmenter = opts.segmenter;
    if (opts.maskSensitivity !== false) {
      const m = { radiusPx: opts.maskSensitivity?.radiusPx ?? DEFAULT_MASK_SENSITIVITY.radiusPx, every: opts.maskSensitivity?.every ?? DEFAULT_MASK_SENSITIVITY.every };
      if (!(m.radiusPx > 0 && m.radiusPx <= 50) || !Number.isInteger(m.every) || m.every < 1)
        throw new RangeError(`maskSensitivity: radiusPx must be in (0, 50] and every a positive integer (got ${m.radiusPx}, ${m.every})`);
      this.sensitivity = m;
    }
    this.tracker = new LesionTracker(opts.tracker);
    this.models = opts.models ?? [];
    checkBinWidth(this.models, this.binWidth);
    this.rings = planRings(this.ringsMm, modelRegions(this.models), this.layout.panes.bmode);
    this.aggregators = this.models.map((m) => new RiskAggregator(m, opts.scoreWindow ?? 15));
    this.clinical = this.models.map(() => new Map());
    this.enabled = this.models.map(() => true);
    if (opts.perfusion !== false) {
      this.perfusion = new PerfusionAnalyzer(opts.perfusion ?? {});
      this.perfusion.on('analysis', (u: PerfusionUpdate) => this.emit('perfusion', u));
      this.perfusion.on('error', (e: Error) => process.emitWarning(`sonomics perfusion: ${e.message}`));
    }
  }

  /**
   * Places the perfusion reference region (a disc in normal tissue; pane coordinates of the frame
   * last shown, or of the recent frame `onSeq` a viewer showed, radius in mm) or removes it (null).
   * It follows the tracked lesion from there: the disc keeps its offset from the lesion's centre on
   * that frame. Returns the frame it was anchored on (null when removed or nothing is tracked).
   * Throws a RangeError naming the problem (nothing changes) when it is off the pane or the
   * perfusion analysis is off.
   */
  setReference(ref: { x: number; y: number; radiusMm: number } | null, onSeq?: number): { anchoredOn: number | null } {
    if (!this.perfusion) throw new RangeError('the perfusion analysis is switched off (pipeline perfusion: false)');
    const r = this.layout.panes.bmode.rect;
    if (ref && !(ref.x >= 0 && ref.y >= 0 && ref.x < r.width && ref.y < r.height))
      throw new RangeError(`reference (${ref.x}, ${ref.y}) lies outside the ${r.width}x${r.height} pane`);
    // The lesion of the frame the disc was placed on when it was shown lately (and not frozen
    // since: a held frame is the one on screen), else of the frame shown last.
    const recent = onSeq !== undefined && !this.frozenOn ? this.recentAnchors.find((a) => a.seq === onSeq) : undefined;
    const track = this.last?.shown?.track;
    const anchor = recent ?? (track && Number.isFinite(track.center.x) ? { seq: this.last!.lf.frame.seq, center: track.center, scale: track.scale } : undefined);
    this.perfusion.setReference(ref, anchor?.center ?? { x: NaN, y: NaN }, anchor?.scale ?? 1);
    this.emit('reference', ref);
    // While frozen no new frame comes: show the held one again with the disc where it now is.
    const held = this.frozenOn?.shown;
    if (held) {
      const reference = held.track.state !== 'idle' ? this.perfusion.referenceOn(held.track.center, held.track.scale) : null;
      this.emit('display', { ...held, reference, frozen: true } satisfies DisplayFrame);
    }
    return { anchoredOn: ref && anchor ? anchor.seq : null };
  }

  /** Starts a new time-intensity curve (a new injection). */
  resetPerfusion(): void {
    if (!this.perfusion) throw new RangeError('the perfusion analysis is switched off (pipeline perfusion: false)');
    this.perfusion.reset();
  }

  /** Ids of the models being scored, in card order. */
  get enabledModels(): string[] {
    return this.models.filter((_, k) => this.enabled[k]).map((m) => m.card.id);
  }

  /**
   * Scores only these models (by card id; [] scores none). An unknown id throws a RangeError naming
   * it and nothing changes. A model switched back on starts a fresh live window.
   */
  selectModels(ids: readonly string[]): void {
    const known = this.models.map((m) => m.card.id);
    const unknown = ids.filter((id) => !known.includes(id));
    if (unknown.length) throw new RangeError(`no loaded model ${unknown.map((u) => `"${u}"`).join(', ')} (loaded: ${known.join(', ') || 'none'})`);
    this.models.forEach((m, k) => {
      const on = ids.includes(m.card.id);
      if (on && !this.enabled[k]) this.aggregators[k].reset();
      this.enabled[k] = on;
    });
    this.emit('models', this.enabledModels);
  }

  /** The clinical inputs as entered, by name. */
  get clinicalValues(): Record<string, ClinicalValue> {
    return Object.fromEntries(this.clinicalEntered);
  }

  get frozen(): boolean { return this.frozenOn !== undefined; }

  /** The seq of the frame last shown (the held one while frozen); null before any. */
  get lastShownSeq(): number | null { return this.last?.lf.frame.seq ?? null; }

  /** The frame held on screen while frozen. */
  get frozenSeq(): number | null { return this.frozenOn?.lf.frame.seq ?? null; }

  /**
   * Freeze holds the last frame shown, as a scanner's freeze does: frames that arrive meanwhile
   * are counted and skipped (not shown, tracked or scored). A lock while frozen is taken on the
   * held frame at once, which is shown and scored again with the new outline; tracking carries on
   * from it when unfrozen. Returns the seq of the frame held (or just released); null when there
   * is none (freezing before any frame was shown, or unfreezing when not frozen).
   */
  freeze(on: boolean): number | null {
    if (on && !this.frozenOn && this.last) {
      const held = this.frozenOn = this.last;
      this.emit('freeze', true, held.lf.frame.seq);
      // A lock still waiting for its frame is taken on the held one: that is the picture the
      // user outlined on, and no new frame will come while frozen.
      const pending = this.pendingLock;
      this.pendingLock = undefined;
      if (pending && this.applyLock(held.lf, pending.mask, pending.settle)) this.trackAndPublish(held, performance.now());
      // Otherwise show the held frame again, marked frozen, so every page knows it is held.
      else if (held.shown) this.emit('display', { ...held.shown, frozen: true } satisfies DisplayFrame);
    } else if (!on && this.frozenOn) {
      const seq = this.frozenOn.lf.frame.seq;
      this.frozenOn = undefined;
      this.emit('freeze', false, seq);
      return seq;
    }
    return this.frozenSeq;
  }

  /** The clinical variables the loaded models read (by name; the first card's definition where several share one). */
  get clinicalVariables(): ClinicalVariable[] {
    const seen = new Map<string, ClinicalVariable>();
    for (const m of this.models) for (const v of m.clinical) if (!seen.has(v.name)) seen.set(v.name, v);
    return [...seen.values()];
  }

  /**
   * Sets clinical inputs (null clears one). Every value is checked against every card that reads
   * it; a bad or unknown one throws a ClinicalInputError naming it and nothing is changed. Models
   * reading a changed input restart their live window. Emits 'clinical' with the values set.
   */
  setClinical(values: Readonly<Record<string, ClinicalValue | null>>): void {
    // Coded in full first (a refusal throws): nothing changes unless every value is good.
    codeClinicalInputs(this.models, values).forEach((entries, k) => {
      for (const [name, v] of entries) {
        if (v === null) this.clinical[k].delete(name);
        else this.clinical[k].set(name, v);
      }
      if (entries.length) this.aggregators[k].reset();
    });
    for (const [name, v] of Object.entries(values)) {
      if (v === null) this.clinicalEntered.delete(name);
      else this.clinicalEntered.set(name, v);
    }
    this.emit('clinical', values);
  }

  get trackingState(): TrackResult['state'] { return this.tracker.state; }

  /**
   * Offer a frame. Never blocks: if the display path is busy the previous pending frame is dropped.
   * A repeated frame (the scanner had not refreshed its image) is counted and skipped: tracking
   * and scoring see each image once.
   */
  push(frame: Frame, truth?: unknown): void {
    this.counters.received++;
    if (frame.duplicate) {
      this.counters.duplicates++;
      return;
    }
    this.input.put({ frame, arrivalMs: performance.now(), truth });
  }

  /** True when a segmenter is loaded (proposeLesion works). */
  get canSegment(): boolean { return this.segmenter !== undefined; }

  /** The loaded segmenter's id and version (null: none loaded, a tap is refused). */
  get segmenterInfo(): { id: string; version: string } | null {
    return this.segmenter ? { id: this.segmenter.manifest.id, version: this.segmenter.manifest.version } : null;
  }

  /**
   * Proposes the lesion's outline from a tap inside it or a rough box around it (B-mode pane
   * coordinates) on the frame shown last (the held one while frozen), without locking it: the
   * caller shows it and locks it (lockLesion) once accepted. Rejects with a RangeError naming the
   * problem (no segmenter, no frame yet, a tap off the pane); "no lesion found" is an answer.
   */
  async proposeLesion(prompt: SegmentPrompt): Promise<LesionProposal> {
    if (!this.segmenter) throw new RangeError('no segmenter is loaded: outline the lesion instead');
    const held = this.frozenOn ?? this.last;
    if (!held) throw new RangeError('no frame has been shown yet');
    const { frame } = held.lf;
    const r = this.layout.panes.bmode.rect;
    const pane = cropRows(frame.data, frame.width, r);
    let res;
    try {
      res = await this.segmenter.segment({ data: pane, width: r.width, height: r.height }, prompt);
    } catch (e) {
      throw new RangeError((e as Error).message.replace(/image/g, 'pane'));
    }
    if (!res.found) return { found: false, seq: frame.seq, reason: res.reason, confidence: res.confidence, ms: res.ms };
    return { found: true, seq: frame.seq, mask: createLesionMask(res.mask, r.width, r.height), area: res.area, confidence: res.confidence, ms: res.ms };
  }

  /**
   * (Re)start tracking from this outline (B-mode pane coordinates) on the next frame processed.
   * Resolves with that frame's seq; rejects with a TrackingError naming what is wrong with the
   * outline (the previous lock, if any, then stays). A newer lock supersedes a pending one.
   * While frozen the lock is taken on the held frame at once.
   */
  lockLesion(mask: LesionMask): Promise<number> {
    const r = this.layout.panes.bmode.rect;
    if (mask.width !== r.width || mask.height !== r.height)
      return Promise.reject(new TrackingError(`the mask is ${mask.width}x${mask.height}, the B-mode pane is ${r.width}x${r.height}`));
    this.pendingLock?.settle(new TrackingError('superseded by a newer lock'), -1);
    this.pendingLock = undefined;
    return new Promise<number>((resolve, reject) => {
      const settle = (err: Error | undefined, seq: number) => (err ? reject(err) : resolve(seq));
      if (this.frozenOn) {
        const held = this.frozenOn;
        if (this.applyLock(held.lf, mask, settle)) this.trackAndPublish(held, performance.now());
      } else {
        this.pendingLock = { mask, settle };
      }
    });
  }

  start(): this {
    if (this.running) return this;
    this.running = true;
    this.loops = [this.displayLoop(), this.featuresLoop(), this.riskLoop()];
    return this;
  }

  /** Stops taking frames; resolves when every stage has finished its current frame. */
  async stop(): Promise<void> {
    this.running = false;
    this.input.close();
    this.scoring.close();
    this.riskIn.close();
    await Promise.all(this.loops);
    this.perfusion?.close();
  }

  stats(): PipelineStats {
    return {
      ...this.counters,
      dropped: { display: this.input.dropped, features: this.scoring.dropped, risk: this.riskIn.dropped },
      stages: Object.fromEntries(STAGES.map((s) => [s, this.latency[s].summary()])) as Record<StageName, LatencySummary>,
      endToEnd: { display: this.e2eDisplay.summary(), scores: this.e2eScores.summary() },
    };
  }

  private fail(err: unknown, frame: Frame): void {
    this.counters.errors++;
    const e = err instanceof Error ? err : new Error(String(err));
    if (this.listenerCount('frameError') > 0) this.emit('frameError', e, frame);
    else process.emitWarning(`sonomics pipeline: frame ${frame.seq}: ${e.message}`);
  }

  /** One stage's loop: take the newest job from its slot, work on it, report failures, repeat. */
  private async serve<T>(slot: LatestSlot<T>, frameOf: (job: T) => Frame, work: (job: T) => Promise<void> | void,
    yieldBetween = false): Promise<void> {
    for (;;) {
      const job = await slot.take();
      if (!job) return;
      try {
        await work(job);
      } catch (err) {
        this.fail(err, frameOf(job));
      }
      // Let I/O (sockets, timers, the source) run between frames.
      if (yieldBetween) await yieldToLoop();
    }
  }

  private displayLoop(): Promise<void> {
    return this.serve(this.input, (j) => j.frame, (j) => this.displayStep(j), true);
  }

  private featuresLoop(): Promise<void> {
    return this.serve(this.scoring, (j) => j.lf.frame, async (job) => {
      const t = performance.now();
      const { features } = await frameFeatures(job.lf, job.rings, { binWidth: this.binWidth, threads: this.featureThreads });
      const variants = await this.maskVariants(job);
      this.mark('features', t);
      this.riskIn.put({ ...job, features, ...(variants && { variants }) });
    });
  }

  /** Every `every`-th tracked frame: its features with the lesion mask shrunk and grown by radiusPx. */
  private async maskVariants(job: ScoringJob): Promise<MaskVariants | undefined> {
    const m = this.sensitivity;
    if (!m || job.track.state !== 'tracking' || !job.track.mask || this.models.length === 0) return undefined;
    if (this.sensitivityTurn++ % m.every !== 0) return undefined;
    // A lesion too small to shrink has no sensitivity measured on this frame.
    const masks = shrinkAndGrow(job.track.mask, m.radiusPx);
    if (!masks) return undefined;
    const sets: FeatureSet[] = [];
    for (const mask of [masks.shrunk, masks.grown]) {
      const rings = computeRings(mask, this.layout.panes.bmode, this.rings.radiiMm, this.layout.sector, this.rings.names);
      sets.push((await frameFeatures(job.lf, rings, { binWidth: this.binWidth, threads: this.featureThreads })).features);
    }
    return { radiusPx: m.radiusPx, shrunk: sets[0], grown: sets[1] };
  }

  private riskLoop(): Promise<void> {
    return this.serve(this.riskIn, (j) => j.lf.frame, (j) => this.riskStep(j));
  }

  private displayStep(job: Job): void {
    if (this.frozenOn) {
      this.counters.frozen++;
      return;
    }
    const t = performance.now();
    const lf = applyLayout(job.frame, this.layout);
    this.mark('layout', t);
    if (this.pendingLock) {
      const { mask, settle } = this.pendingLock;
      this.pendingLock = undefined;
      this.applyLock(lf, mask, settle);
    }
    this.trackAndPublish({ lf, truth: job.truth }, job.arrivalMs);
  }

  /** Hands an outline to the tracker on this frame; false (and settled with the error) when refused. */
  private applyLock(lf: LaidOutFrame, mask: LesionMask, settle: (err: Error | undefined, seq: number) => void): boolean {
    try {
      this.tracker.lock(lf, mask);
    } catch (e) {
      // A bad outline costs neither the frame nor the current lock.
      settle(e as Error, lf.frame.seq);
      this.emit('lockError', e, lf.frame.seq);
      return false;
    }
    for (const a of this.aggregators) a.reset();
    // Frames before the lock showed another outline's centre: no reference is anchored to them.
    this.recentAnchors.length = 0;
    this.emit('lock', lf.frame.seq);
    settle(undefined, lf.frame.seq);
    return true;
  }

  /** Tracking, regions and 'display' for one frame, then hands it to the scoring path. */
  private trackAndPublish(held: Held, arrivalMs: number): void {
    const { lf } = held;
    let t = performance.now();
    const track = this.tracker.track(lf);
    t = this.mark('track', t);
    let rings: RingSet | undefined, contours: RegionContours | undefined;
    if (track.mask) {
      rings = computeRings(track.mask, this.layout.panes.bmode, this.rings.radiiMm, this.layout.sector, this.rings.names);
      contours = regionContours(rings, this.ringsMm);
    }
    // The time-intensity sample of this frame (a held frame shown again is not a new sample).
    if (this.perfusion && track.state !== 'idle' && !this.frozenOn) this.perfusion.sample(lf, rings, track);
    t = this.mark('regions', t);
    this.counters.displayed++;
    const reference = this.perfusion && track.state !== 'idle' ? this.perfusion.referenceOn(track.center, track.scale) : null;
    const shown: DisplayFrame = { frame: lf.frame, layout: this.layout, track, rings, contours, truth: held.truth, frozen: this.frozenOn !== undefined, reference };
    held.shown = shown;
    this.last = held;
    if (track.state !== 'idle' && !this.frozenOn && Number.isFinite(track.center.x)) {
      this.recentAnchors.push({ seq: lf.frame.seq, center: track.center, scale: track.scale });
      if (this.recentAnchors.length > RECENT_ANCHORS) this.recentAnchors.shift();
    }
    this.emit('display', shown);
    this.mark('publish', t);
    this.e2eDisplay.record(performance.now() - arrivalMs);
    if (rings && track.state !== 'idle') this.scoring.put({ lf, track, rings, arrivalMs });
    else if (track.state === 'lost') this.noticeNotLive(track);
  }

  private async riskStep(job: RiskJob): Promise<void> {
    let t = performance.now();
    const seq = job.lf.frame.seq;
    const live = job.track.state === 'tracking';
    const scores: RiskScore[] = [];
    if (live) {
      this.perfusion?.addFeatures(sessionMs(job.lf.frame), job.features);
      for (const [k, a] of this.aggregators.entries()) {
        if (!this.enabled[k]) continue;
        // The CNN's features (if any) depend on the lesion box, not on the mask's edge: once per frame.
        const deep = await this.deepFeatures(k, job);
        const score = (features: FeatureSet) => (Array.isArray(deep) || deep === undefined ? this.scoreWith(k, job, features, deep) : deep);
        const v = job.variants;
        scores.push(a.add(score(job.features), v && { radiusPx: v.radiusPx, shrunk: score(v.shrunk), grown: score(v.grown) }));
      }
    } else {
      // Frames from before a loss must not linger in the live median.
      for (const a of this.aggregators) a.reset();
    }
    t = this.mark('risk', t);
    this.counters.scored++;
    this.lastNotice = '';
    const update: ScoreUpdate = {
      seq, captureMs: job.lf.frame.timestampMs, live, trackingState: job.track.state, scores, features: job.features,
      reason: live ? undefined : notLiveReason(job.track),
    };
    this.emit('scores', update);
    this.mark('publish', t);
    this.e2eScores.record(performance.now() - job.arrivalMs);
  }

  /** The card's CNN features for this frame (undefined without a CNN), or the invalid score when they cannot be had. */
  private async deepFeatures(k: number, job: RiskJob): Promise<number[] | FrameScore | undefined> {
    const model = this.models[k];
    if (!model.deep) return undefined;
    const seq = job.lf.frame.seq;
    const spec = model.card.inputs.deep!;
    const box = job.track.box && this.frameBox(job.track.box, spec.input.pane);
    if (!box) return { seq, status: 'invalid', linearPredictor: NaN, value: NaN, contributions: new Float64Array(0), problem: 'no lesion box for the deep features' };
    try {
      const f = await model.deep.features(job.lf.frame, box, this.layout.panes[spec.input.pane].rect);
      return model.deep.names.map((n) => f[n]);
    } catch (e) {
      return { seq, status: 'invalid', linearPredictor: NaN, value: NaN, contributions: new Float64Array(0), problem: `deep features failed: ${(e as Error).message}` };
    }
  }

  private scoreWith(k: number, job: RiskJob, features: FeatureSet, deep: number[] | undefined): FrameScore {
    return this.models[k].score(features, this.clinical[k], deep, job.lf.frame.seq, this.perfusion?.scoreInputs());
  }

  /** A B-mode pane box in frame pixels on the given pane (the contrast pane through the layout geometry). */
  private frameBox(b: Box, pane: 'bmode' | 'contrast'): Box {
    const { bmode } = this.layout.panes;
    const to = this.layout.panes[pane];
    const p0 = paneToPane({ x: b.x, y: b.y }, bmode, to);
    const p1 = paneToPane({ x: b.x + b.width, y: b.y + b.height }, bmode, to);
    return { x: to.rect.x + p0.x, y: to.rect.y + p0.y, width: p1.x - p0.x, height: p1.y - p0.y };
  }

  /**
   * Lost frames carry no lesion region to score: say so on the scores channel (when the reason
   * changes, not every frame), and forget the live window.
   */
  private noticeNotLive(track: TrackResult): void {
    const key = `${track.state}:${track.reason ?? ''}`;
    if (key === this.lastNotice) return;
    this.lastNotice = key;
    for (const a of this.aggregators) a.reset();
    this.emit('scores', {
      seq: track.seq, live: false, trackingState: track.state, scores: [],
      reason: notLiveReason(track),
    } satisfies ScoreUpdate);
  }

  private mark(stage: StageName, since: number): number {
    const now = performance.now();
    this.latency[stage].record(now - since);
    return now;
  }
}

/** Why a score update is not live, from the tracking result. */
function notLiveReason(track: TrackResult): string {
  return `tracking is ${track.state}${track.reason ? ` (${track.reason})` : ''}: no live score`;
}
