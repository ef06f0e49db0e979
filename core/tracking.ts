// Lesion tracking: the lesion outline is given once (lock), then followed frame to frame on the
// B-mode pane by the native template tracker (translation and scale, sub-pixel; the previous
// frame's template for the motion, the initial template against drift), and mapped to the
// contrast pane through the layout geometry. A state machine says how far to trust it:
//   tracking   the initial template still matches well: scores are live;
//   uncertain  the match is weak (a few frames, or a weak but present match): no live score;
//   lost       the lesion left the pane, or no match for `lostAfterFrames` frames: the initial
//              template is searched for around the last good position each frame, and tracking
//              resumes after `resumeFrames` consecutive consistent finds.
import type { LaidOutFrame, Pane } from './layout.js';
import { paneToPane } from './layout.js';
import { createLesionMask, maskStats, type LesionMask } from './mask.js';
import { native, type NativeTemplateTracker, type PixelRect, type TemplatePose } from './native.js';

export type TrackingState = 'idle' | 'tracking' | 'uncertain' | 'lost';

export interface TrackerOptions {
  /** Context around the lesion in the template, as a fraction of its bounding box. */
  marginFraction?: number;
  /** Search radius per frame around the predicted position (frame pixels). */
  searchRadiusPx?: number;
  /** Initial-template NCC below which the state is 'uncertain'. */
  uncertainBelow?: number;
  /**
   * After a loss, a find must score at least max(uncertainBelow, falseMatch + resumeMargin),
   * where falseMatch is the best score of the locked template away from the lesion on the lock
   * frame: how well background can pass for the lesion in this image.
   */
  resumeMargin?: number;
  /** A frame is a miss when the initial template scores below lostBelow and the frame-to-frame
   * match (previous frame's template) below followBelow. */
  lostBelow?: number;
  followBelow?: number;
  /** Consecutive misses before 'lost'. */
  lostAfterFrames?: number;
  /** Consecutive consistent finds before tracking resumes after a loss. */
  resumeFrames?: number;
  /** Fraction of the lesion that must lie inside the pane; below it the lesion has left the view. */
  minInView?: number;
  /** Lost-lesion search radius (frame pixels); default: the pane's larger side. */
  lostSearchRadiusPx?: number;
  /** Longest template side in samples: bounds the cost per frame whatever the lesion size. */
  maxTemplateSide?: number;
  /**
   * A frame this long after the last one tracked (ms; the first live frame after a lock on a held
   * frame, or a starved pipeline) is first searched for the locked lesion over the lost-lesion
   * radius: the lesion may have moved further than the per-frame search reaches.
   */
  refindAfterMs?: number;
}

export interface TrackResult {
  readonly seq: number;
  readonly state: TrackingState;
  /** Why the state is not 'tracking' (shown to the sonographer). */
  readonly reason?: string;
  /** Normalised cross-correlation of the initial template at the result, 0..1. */
  readonly confidence: number;
  /** Peak-to-sidelobe ratio of the correlation map. */
  readonly psr: number;
  /** Lesion centroid in B-mode pane coordinates (pixel indices). While lost: the last good one. */
  readonly center: { x: number; y: number };
  /** The centroid in frame coordinates on each pane (the contrast pane through the layout geometry). */
  readonly frameCenters?: { bmode: { x: number; y: number }; contrast: { x: number; y: number } };
  /** Scale relative to the locked outline. */
  readonly scale: number;
  /** Fraction of the lesion inside the pane. */
  readonly inView: number;
  /** The lesion mask moved to this frame (pane coordinates, both panes); undefined while idle or lost. */
  readonly mask?: LesionMask;
  /** The moved mask's bounding box (pane coordinates, pixel edges), with the mask. */
  readonly box?: { x: number; y: number; width: number; height: number };
}

/** How far ahead (ms) the last velocity predicts a frame; a longer gap is searched for instead (refindAfterMs). */
const VELOCITY_HORIZON_MS = 500;

export const TRACKER_DEFAULTS: Required<Omit<TrackerOptions, 'lostSearchRadiusPx'>> = {
  marginFraction: 0.25, searchRadiusPx: 16, uncertainBelow: 0.45, resumeMargin: 0.15, lostBelow: 0.25, followBelow: 0.6, lostAfterFrames: 4, resumeFrames: 3, minInView: 0.5,
  maxTemplateSide: 64, refindAfterMs: VELOCITY_HORIZON_MS,
};

/** Raised when a lock cannot start: names what is wrong with the outline. */
export class TrackingError extends Error {
  override name = 'TrackingError';
}

export class LesionTracker {
  private readonly opts: Required<Omit<TrackerOptions, 'lostSearchRadiusPx'>> & { lostSearchRadiusPx?: number };
  private kernel: NativeTemplateTracker | undefined;
  private initMask: LesionMask | undefined;
  private initArea = 0;
  private initBox = { x0: 0, y0: 0, x1: 0, y1: 0 };
  private templateCenter = { x: 0, y: 0 };   // pane coords at lock (pixel indices)
  private centroidOffset = { x: 0, y: 0 };   // centroid - template centre, at lock
  private pose: TemplatePose = { x: 0, y: 0, scale: 1 };   // template centre (frame coords) and scale
  // Pixels per ms from the last two tracked frames (known: false until there were two).
  private velocity = { x: 0, y: 0, atMs: NaN, known: false };
  private misses = 0;
  private finds = 0;
  private lastFind: TemplatePose | undefined;
  /** Best initial-template score away from the lesion on the lock frame (see resumeMargin). */
  falseMatch = NaN;
  private last: TrackResult | undefined;
  state: TrackingState = 'idle';

  constructor(opts: TrackerOptions = {}) {
    const o = { ...TRACKER_DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as LesionTracker['opts'];
    if (!(o.lostBelow <= o.uncertainBelow)) throw new RangeError('tracker: lostBelow must be <= uncertainBelow');
    if (!(o.minInView > 0 && o.minInView <= 1)) throw new RangeError('tracker: minInView must be in (0, 1]');
    for (const k of ['lostAfterFrames', 'resumeFrames'] as const)
      if (!Number.isInteger(o[k]) || o[k] < 1) throw new RangeError(`tracker: ${k} must be a positive integer`);
    this.opts = o;
  }

  /**
   * Start (or restart) tracking from a lesion outline drawn on `lf` (B-mode pane coordinates).
   * Throws a TrackingError naming the problem (wrong size, empty, too small, no texture).
   */
  lock(lf: LaidOutFrame, mask: LesionMask): void {
    const pane = lf.layout.panes.bmode;
    if (mask.width !== pane.rect.width || mask.height !== pane.rect.height)
      throw new TrackingError(`the lesion mask is ${mask.width}x${mask.height}, the B-mode pane is ${pane.rect.width}x${pane.rect.height}`);
    let s;
    try {
      s = maskStats(mask);
    } catch (e) {
      throw new TrackingError((e as Error).message);
    }
    const bw = s.x1 - s.x0 + 1, bh = s.y1 - s.y0 + 1;
    const mx = Math.round(bw * this.opts.marginFraction), my = Math.round(bh * this.opts.marginFraction);
    const x0 = Math.max(0, s.x0 - mx), y0 = Math.max(0, s.y0 - my);
    const x1 = Math.min(pane.rect.width, s.x1 + 1 + mx), y1 = Math.min(pane.rect.height, s.y1 + 1 + my);
    if (x1 - x0 < 16 || y1 - y0 < 16)
      throw new TrackingError(`the lesion outline is too small to track: ${bw}x${bh} pixels (with its margin ${x1 - x0}x${y1 - y0}; at least 16x16 needed)`);
    const rect: PixelRect = { x: pane.rect.x + x0, y: pane.rect.y + y0, width: x1 - x0, height: y1 - y0 };
    try {
      this.kernel = new native.TemplateTracker(lf.frame.data, lf.frame.width, lf.frame.height, rect, { maxSide: this.opts.maxTemplateSide });
    } catch (e) {
      throw new TrackingError(`cannot track this outline: ${(e as Error).message.replace(/^TemplateTracker: /, '')}`);
    }
    this.initMask = createLesionMask(mask.data.slice(), mask.width, mask.height);
    this.initArea = s.area;
    this.initBox = { x0: s.x0, y0: s.y0, x1: s.x1 + 1, y1: s.y1 + 1 };
    this.pose = { x: this.kernel.centerX, y: this.kernel.centerY, scale: 1 };
    this.templateCenter = { x: this.pose.x - pane.rect.x, y: this.pose.y - pane.rect.y };
    this.centroidOffset = { x: s.cx - this.templateCenter.x, y: s.cy - this.templateCenter.y };
    this.velocity = { x: 0, y: 0, atMs: frameTimeMs(lf), known: false };
    const size = Math.max(this.kernel.templateWidth, this.kernel.templateHeight) * this.kernel.step;
    const away = this.kernel.search(lf.frame.data, lf.frame.width, lf.frame.height, pane.rect, this.pose, {
      radius: this.searchRadiusFor(pane), excludeRadius: 0.75 * size,
    });
    this.falseMatch = Math.max(0, away.score);
    this.misses = 0;
    this.finds = 0;
    this.last = undefined;
    this.state = 'tracking';
  }

  reset(): void {
    this.kernel = undefined;
    this.initMask = undefined;
    this.last = undefined;
    this.state = 'idle';
  }

  track(lf: LaidOutFrame): TrackResult {
    const seq = lf.frame.seq;
    if (!this.kernel || !this.initMask) return { seq, state: 'idle', confidence: 0, psr: 0, center: { x: NaN, y: NaN }, scale: 1, inView: 0 };
    // A frame the card repeated shows the same image: same answer, and no motion learned from it.
    if (lf.frame.duplicate && this.last) return { ...this.last, seq };
    const result = this.state === 'lost' ? this.search(lf) : this.follow(lf);
    this.last = result;
    return result;
  }

  private follow(lf: LaidOutFrame): TrackResult {
    const pane = lf.layout.panes.bmode, f = lf.frame;
    const o = this.opts;
    const now = frameTimeMs(lf);
    const prediction = now - this.velocity.atMs >= o.refindAfterMs ? this.refind(lf) : this.predict(now, pane.rect);
    const step = this.kernel!.track(f.data, f.width, f.height, pane.rect, prediction, {
      searchRadius: o.searchRadiusPx, update: true, updateMinScore: o.lostBelow, updateMinPrevious: o.followBelow,
    });
    const prev = this.pose;
    this.pose = { x: step.x, y: step.y, scale: Math.min(2, Math.max(0.5, step.scale)) };
    const dt = now - this.velocity.atMs;
    if (dt > 0) this.velocity = { x: (this.pose.x - prev.x) / dt, y: (this.pose.y - prev.y) / dt, atMs: now, known: true };
    const confidence = Math.max(0, step.score);
    const { mask, inView, box } = this.placeMask(pane, this.pose);
    // The frame-to-frame match carries the lesion through changes of its look (out-of-plane
    // motion, wash-in) while the initial template scores low; both failing is a miss.
    const miss = confidence < o.lostBelow && step.scorePrevious < o.followBelow;
    this.misses = miss ? this.misses + 1 : 0;
    let reason: string | undefined;
    if (inView < o.minInView) {
      this.state = 'lost';
      reason = `the lesion left the view (${Math.round(inView * 100)} % inside the pane)`;
    } else if (this.misses >= o.lostAfterFrames) {
      this.state = 'lost';
      reason = `the lesion was not found for ${this.misses} frames (match ${confidence.toFixed(2)} < ${o.lostBelow}, frame to frame ${step.scorePrevious.toFixed(2)} < ${o.followBelow})`;
    } else if (confidence < o.uncertainBelow) {
      this.state = 'uncertain';
      reason = `weak match with the locked lesion (${confidence.toFixed(2)} < ${o.uncertainBelow})`;
    } else {
      this.state = 'tracking';
    }
    if (this.state === 'lost') this.enterLost();
    return this.result(lf, confidence, step.psr, reason, inView, this.state === 'lost' ? undefined : mask, box);
  }

  private search(lf: LaidOutFrame): TrackResult {
    const pane = lf.layout.panes.bmode, f = lf.frame;
    const o = this.opts;
    const radius = this.searchRadiusFor(pane);
    const around = { x: this.pose.x, y: this.pose.y, scale: this.pose.scale };
    const found = this.kernel!.search(f.data, f.width, f.height, pane.rect, around, { radius });
    const confidence = Math.max(0, found.score);
    const candidate = { x: found.x, y: found.y, scale: this.pose.scale };
    const { mask, inView, box } = this.placeMask(pane, candidate);
    // A find counts when it matches well, lies in view, and agrees with the previous find.
    const good = confidence >= this.resumeAbove && inView >= o.minInView;
    const tol = 4 * this.kernel!.step * candidate.scale;
    const consistent = this.lastFind === undefined || Math.hypot(found.x - this.lastFind.x, found.y - this.lastFind.y) <= tol;
    this.finds = good ? (consistent ? this.finds + 1 : 1) : 0;
    this.lastFind = good ? candidate : undefined;
    if (this.finds >= o.resumeFrames) {
      this.pose = candidate;
      this.state = 'uncertain';   // confirmed on the next frame by the frame-to-frame tracker
      this.misses = 0;
      this.finds = 0;
      this.lastFind = undefined;
      this.kernel!.resetPrevious();
      this.velocity = { x: 0, y: 0, atMs: frameTimeMs(lf), known: false };
      return this.result(lf, confidence, found.psr, 'lesion found again: confirming', inView, mask, box);
    }
    // Not yet: keep searching around the last good position (this.pose).
    const reason = good ? `lesion found again (${this.finds}/${o.resumeFrames} frames)` : 'searching for the lesion';
    return this.result(lf, confidence, found.psr, `lost: ${reason}`, inView, undefined);
  }

  /**
   * Where to follow from after a gap: the best find of the locked template over the lost-lesion
   * radius when it scores as a find after a loss must, else the last pose (the state machine then
   * judges the weak match as on any frame).
   */
  private refind(lf: LaidOutFrame): TemplatePose {
    const pane = lf.layout.panes.bmode, f = lf.frame;
    const found = this.kernel!.search(f.data, f.width, f.height, pane.rect, this.pose, { radius: this.searchRadiusFor(pane) });
    return found.score >= this.resumeAbove ? { x: found.x, y: found.y, scale: this.pose.scale } : this.pose;
  }

  /** The template the kernel matches: samples and frame pixels per sample (after a lock). */
  get kernelInfo(): { width: number; height: number; step: number } | undefined {
    return this.kernel && { width: this.kernel.templateWidth, height: this.kernel.templateHeight, step: this.kernel.step };
  }

  /** What a find must score to count after a loss. */
  get resumeAbove(): number {
    return Math.min(0.95, Math.max(this.opts.uncertainBelow, this.falseMatch + this.opts.resumeMargin));
  }

  private searchRadiusFor(pane: Pane): number {
    return this.opts.lostSearchRadiusPx ?? Math.max(pane.rect.width, pane.rect.height);
  }

  private enterLost(): void {
    this.kernel!.resetPrevious();
    this.velocity = { ...this.velocity, x: 0, y: 0, known: false };
    this.finds = 0;
    this.lastFind = undefined;
  }

  /** Constant-velocity prediction over the time since the last tracked frame (damped). */
  private predict(now: number, bounds: PixelRect): TemplatePose {
    const v = this.velocity;
    const dt = now - v.atMs;
    const k = v.known && dt > 0 && dt < VELOCITY_HORIZON_MS ? 0.8 * dt : 0;
    const clamp = (a: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, a));
    return {
      x: clamp(this.pose.x + v.x * k, bounds.x, bounds.x + bounds.width - 1),
      y: clamp(this.pose.y + v.y * k, bounds.y, bounds.y + bounds.height - 1),
      scale: this.pose.scale,
    };
  }

  /** The initial outline moved to `pose`, and the fraction of it inside the pane. */
  private placeMask(pane: Pane, pose: TemplatePose): { mask: LesionMask; inView: number; box: NonNullable<TrackResult['box']> } {
    const m = this.initMask!;
    const out = new Uint8Array(m.data.length);   // handed out with the result: a new buffer each frame
    const to = { x: pose.x - pane.rect.x, y: pose.y - pane.rect.y };
    const n = native.warpMask(m.data, m.width, m.height,
      { fromX: this.templateCenter.x, fromY: this.templateCenter.y, toX: to.x, toY: to.y, scale: pose.scale }, out);
    const inView = Math.min(1, n / (this.initArea * pose.scale * pose.scale));
    const b = this.initBox, tc = this.templateCenter, k = pose.scale;
    const box = { x: to.x + (b.x0 - tc.x) * k, y: to.y + (b.y0 - tc.y) * k, width: (b.x1 - b.x0) * k, height: (b.y1 - b.y0) * k };
    return { mask: createLesionMask(out, m.width, m.height), inView, box };
  }

  private result(lf: LaidOutFrame, confidence: number, psr: number, reason: string | undefined, inView: number, mask: LesionMask | undefined,
    box?: TrackResult['box']): TrackResult {
    const { bmode, contrast } = lf.layout.panes;
    const center = {
      x: this.pose.x - bmode.rect.x + this.centroidOffset.x * this.pose.scale,
      y: this.pose.y - bmode.rect.y + this.centroidOffset.y * this.pose.scale,
    };
    const c = paneToPane(center, bmode, contrast);
    return {
      seq: lf.frame.seq, state: this.state, ...(reason !== undefined && { reason }), confidence, psr, center, scale: this.pose.scale, inView, mask,
      ...(mask && box && { box }),
      frameCenters: { bmode: { x: bmode.rect.x + center.x, y: bmode.rect.y + center.y }, contrast: { x: contrast.rect.x + c.x, y: contrast.rect.y + c.y } },
    };
  }
}

/** The frame's time on the source's clock when known (DICOM, recordings), else its arrival. */
function frameTimeMs(lf: LaidOutFrame): number {
  return lf.frame.sourceTimeMs ?? lf.frame.timestampMs;
}
