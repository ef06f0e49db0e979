// Lesion tracking state: the lesion outline given once (lock), then followed frame to frame on
// the B-mode pane by the native template tracker, mapped to the contrast pane by the layout
// geometry (same pane-relative position). Compares every frame against the initial template,
// so errors do not accumulate. Issue #5 deepens this (lost-lesion search, drift control).
import type { LaidOutFrame } from './layout.js';
import { createLesionMask, maskStats, type LesionMask } from './mask.js';
import { native, type NativeTemplateTracker } from './native.js';

export type TrackingState = 'idle' | 'tracking' | 'uncertain' | 'lost';

export interface TrackerOptions {
  /** Context around the lesion in the template, as a fraction of its bounding box. */
  marginFraction?: number;
  /** Search radius per frame (pixels at the template scale). */
  searchRadiusPx?: number;
  /** NCC below which the state is 'uncertain' / 'lost'. */
  uncertainBelow?: number;
  lostBelow?: number;
}

export interface TrackResult {
  readonly seq: number;
  readonly state: TrackingState;
  /** Normalised cross-correlation with the initial template, 0..1. */
  readonly confidence: number;
  /** Peak-to-sidelobe ratio of the correlation map. */
  readonly psr: number;
  /** Lesion centroid in pane coordinates (both panes). */
  readonly center: { x: number; y: number };
  /** Scale relative to the locked outline. */
  readonly scale: number;
  /** The lesion mask moved to this frame (pane coordinates); undefined while idle. */
  readonly mask?: LesionMask;
}

export class LesionTracker {
  private readonly opts: Required<TrackerOptions>;
  private kernel: NativeTemplateTracker | undefined;
  private initMask: LesionMask | undefined;
  private templateCenter = { x: 0, y: 0 };   // pane coords, at lock
  private centroidOffset = { x: 0, y: 0 };   // centroid - template centre, at lock
  private pose = { x: 0, y: 0, scale: 1 };   // template centre (frame coords) and scale
  state: TrackingState = 'idle';

  constructor(opts: TrackerOptions = {}) {
    this.opts = {
      marginFraction: opts.marginFraction ?? 0.25,
      searchRadiusPx: opts.searchRadiusPx ?? 12,
      uncertainBelow: opts.uncertainBelow ?? 0.5,
      lostBelow: opts.lostBelow ?? 0.3,
    };
    if (!(this.opts.lostBelow <= this.opts.uncertainBelow)) throw new RangeError('tracker: lostBelow must be <= uncertainBelow');
  }

  /** Start (or restart) tracking from a lesion outline drawn on `lf` (pane coordinates). */
  lock(lf: LaidOutFrame, mask: LesionMask): void {
    const pane = lf.layout.panes.bmode;
    if (mask.width !== pane.rect.width || mask.height !== pane.rect.height)
      throw new RangeError(`tracker: the lesion mask is ${mask.width}x${mask.height}, the B-mode pane is ${pane.rect.width}x${pane.rect.height}`);
    const s = maskStats(mask);
    const bw = s.x1 - s.x0 + 1, bh = s.y1 - s.y0 + 1;
    const mx = Math.round(bw * this.opts.marginFraction), my = Math.round(bh * this.opts.marginFraction);
    const x0 = Math.max(0, s.x0 - mx), y0 = Math.max(0, s.y0 - my);
    const x1 = Math.min(pane.rect.width, s.x1 + 1 + mx), y1 = Math.min(pane.rect.height, s.y1 + 1 + my);
    const rect = { x: pane.rect.x + x0, y: pane.rect.y + y0, width: x1 - x0, height: y1 - y0 };
    this.kernel = new native.TemplateTracker(lf.frame.data, lf.frame.width, lf.frame.height, rect);
    this.initMask = createLesionMask(mask.data.slice(), mask.width, mask.height);
    this.pose = { x: this.kernel.centerX, y: this.kernel.centerY, scale: 1 };
    this.templateCenter = { x: this.pose.x - pane.rect.x, y: this.pose.y - pane.rect.y };
    this.centroidOffset = { x: s.cx - this.templateCenter.x, y: s.cy - this.templateCenter.y };
    this.state = 'tracking';
  }

  reset(): void {
    this.kernel = undefined;
    this.initMask = undefined;
    this.state = 'idle';
  }

  track(lf: LaidOutFrame): TrackResult {
    const seq = lf.frame.seq;
    if (!this.kernel || !this.initMask) return { seq, state: 'idle', confidence: 0, psr: 0, center: { x: NaN, y: NaN }, scale: 1 };
    const pane = lf.layout.panes.bmode;
    const f = lf.frame;
    const r = this.kernel.track(f.data, f.width, f.height, pane.rect, this.pose, this.opts.searchRadiusPx);
    const confidence = Math.max(0, r.score);
    this.state = confidence < this.opts.lostBelow ? 'lost' : confidence < this.opts.uncertainBelow ? 'uncertain' : 'tracking';
    // Keep the last good pose when lost, so the next frames search around it.
    if (this.state !== 'lost') this.pose = { x: r.x, y: r.y, scale: Math.min(2, Math.max(0.5, r.scale)) };
    const tc = { x: this.pose.x - pane.rect.x, y: this.pose.y - pane.rect.y };
    const mask = new Uint8Array(this.initMask.data.length);
    native.warpMask(this.initMask.data, this.initMask.width, this.initMask.height,
      { fromX: this.templateCenter.x, fromY: this.templateCenter.y, toX: tc.x, toY: tc.y, scale: this.pose.scale }, mask);
    return {
      seq, state: this.state, confidence, psr: r.psr, scale: this.pose.scale,
      center: { x: tc.x + this.centroidOffset.x * this.pose.scale, y: tc.y + this.centroidOffset.y * this.pose.scale },
      mask: createLesionMask(mask, this.initMask.width, this.initMask.height),
    };
  }
}
