// The phantom scanner: a built-in synthetic source that renders what a capture card sees from
// a scanner in CEUS dual-view mode (B-mode and contrast panes side by side, scanner chrome),
// with a hypoechoic irregular lesion moving along a known trajectory and a contrast bolus that
// follows a lognormal time-intensity curve. Seeded and deterministic; exposes ground truth.
import { EventEmitter } from 'node:events';
import { createFrame, type Frame } from '../core/frame.js';
import type { Layout } from '../core/layout.js';
import { native, type NativePhantomRenderer } from '../core/native.js';
import { seededRandom } from '../core/random.js';
import type { FrameSource, SourceStats } from './source.js';

export interface LognormalBolus {
  /** Contrast arrival time (s) from the start of the sequence. */
  arrivalS: number;
  /** Lognormal parameters of the curve in (t - arrival), seconds. */
  mu: number;
  sigma: number;
  /** Peak value of the curve (concentration units, 1 = lesion peak by default). */
  peak: number;
}

export interface PhantomOptions {
  seed?: number;
  width?: number;
  height?: number;
  fps?: number;
  /** Imaging depth shown in the pane (mm); sets the pixel spacing. */
  depthMm?: number;
  /** Stop after this many frames (live mode); default: run until stop(). */
  frames?: number;
  lesion?: { radiusMm?: number; aspect?: number; irregularity?: number; depthFraction?: number };
  motion?: PhantomMotion;
  contrast?: { lesion?: Partial<LognormalBolus>; tissue?: Partial<LognormalBolus> };
}

/**
 * How the probe and the patient move. In-plane: breathing, a slow drift and the hand's sway
 * (mm, [lateral, axial]) and compression (scale). Out of plane: elevation motion decorrelates the
 * speckle (one correlation length = fully new speckle). The sonographer changes the gain.
 * Excursions move the view away from the lesion and back (e.g. to test the lost state).
 */
export interface PhantomMotion {
  breathingAmplitudeMm?: [number, number];
  breathingPeriodS?: number;
  driftAmplitudeMm?: [number, number];
  driftPeriodS?: [number, number];
  swayAmplitudeMm?: [number, number];
  swayPeriodS?: [number, number];
  scaleAmplitude?: number;
  scalePeriodS?: number;
  /** Out-of-plane motion: with breathing (mm), slow drift (mm) over its period (s). */
  elevationBreathingMm?: number;
  elevationDriftMm?: number;
  elevationDriftPeriodS?: number;
  /** Elevation over which the speckle decorrelates (mm). */
  speckleCorrelationMm?: number;
  /** Gain: a slow swing (dB) over its period, and steps [time s, dB] ramped in over 0.5 s. */
  gainAmplitudeDb?: number;
  gainPeriodS?: number;
  gainSteps?: Array<[number, number]>;
  /** Excursions: the view moves by (dxMm, dyMm) and back: out over 20 %, held 60 %, back over 20 %. */
  excursions?: Array<{ startS: number; durationS: number; dxMm: number; dyMm: number }>;
}

export interface PhantomMotionState {
  /** In-plane displacement of the tissue (pane pixels) and scale about the pane centre. */
  dx: number;
  dy: number;
  scale: number;
  /** Out-of-plane position in speckle correlation lengths. */
  elevation: number;
  gainDb: number;
}

export interface PhantomTruth {
  frameIndex: number;
  timeS: number;
  /** Probe motion applied to the tissue: pane-pixel displacement and scale about the pane centre. */
  motion: PhantomMotionState;
  /** Fraction of the lesion's area inside the pane (1 = fully in view, 0 = out of view). */
  inView: number;
  /** Lesion centroid in pane coordinates (same in both panes). */
  center: { x: number; y: number };
  /** Lesion centroid in frame coordinates, per pane. */
  frameCenters: { bmode: { x: number; y: number }; contrast: { x: number; y: number } };
  /** True lesion mask, pane-sized, 0/255 (the same geometry in both panes). */
  lesionMask: Uint8Array;
  /** True time-intensity values (concentration) of the lesion and of the surrounding tissue. */
  tic: { lesion: number; tissue: number };
}

const DEFAULT_LESION_BOLUS: LognormalBolus = { arrivalS: 8, mu: 2.3, sigma: 0.45, peak: 1 };
const DEFAULT_TISSUE_BOLUS: LognormalBolus = { arrivalS: 10, mu: 2.7, sigma: 0.5, peak: 0.4 };

/** Lognormal bolus value at time t (s). */
export function lognormalBolus(b: LognormalBolus, t: number): number {
  const x = t - b.arrivalS;
  if (x <= 0) return 0;
  const mode = Math.exp(b.mu - b.sigma * b.sigma);
  const shape = (u: number) => Math.exp(-((Math.log(u) - b.mu) ** 2) / (2 * b.sigma * b.sigma)) / u;
  return (b.peak * shape(x)) / shape(mode);
}

/** The area under a lognormal bolus curve (concentration x s): lognormalBolus = area x the lognormal density in (t - arrival). */
export function lognormalArea(b: LognormalBolus): number {
  const mode = Math.exp(b.mu - b.sigma * b.sigma);
  return b.peak * Math.sqrt(2 * Math.PI) * b.sigma * mode * Math.exp((b.sigma * b.sigma) / 2);
}

function must(cond: boolean, msg: string): void {
  if (!cond) throw new RangeError(`phantom: ${msg}`);
}

export class PhantomScanner extends EventEmitter implements FrameSource {
  readonly id: string;
  readonly layout: Layout;
  readonly fps: number;
  readonly seed: number;
  private counts = { delivered: 0, gaps: 0, dropped: 0 };
  readonly width: number;
  readonly height: number;
  readonly lesionBolus: LognormalBolus;
  readonly tissueBolus: LognormalBolus;
  /** Pixel spacing (mm/pixel), isotropic. */
  readonly mmPerPixel: number;
  private readonly renderer: NativePhantomRenderer;
  private readonly lesionCenter: { x: number; y: number };
  private readonly centroidOffset: { x: number; y: number };
  private readonly motionOpts: Required<PhantomMotion>;
  /** Lesion area (pane pixels) at scale 1. */
  private readonly lesionAreaPx: number;
  private readonly maxFrames: number;
  private timer: NodeJS.Timeout | undefined;
  private startMs = 0;
  private nextIndex = 0;
  private seq = 0;

  constructor(opts: PhantomOptions = {}) {
    super();
    const seed = opts.seed ?? 42;
    const width = opts.width ?? 1280, height = opts.height ?? 720, fps = opts.fps ?? 30;
    must(Number.isInteger(seed) && seed >= 0, `seed must be a non-negative integer (got ${seed})`);
    must(Number.isInteger(width) && width >= 320 && width <= 4096, `width must be an integer in [320, 4096] (got ${width})`);
    must(Number.isInteger(height) && height >= 240 && height <= 2160, `height must be an integer in [240, 2160] (got ${height})`);
    must(fps > 0 && fps <= 240, `fps must be in (0, 240] (got ${fps})`);
    this.seed = seed;
    this.fps = fps;
    this.width = width;
    this.height = height;
    this.id = `phantom:${seed}`;
    this.maxFrames = opts.frames ?? Infinity;
    const depthMm = opts.depthMm ?? 40;
    must(depthMm >= 10 && depthMm <= 200, `depthMm must be in [10, 200] (got ${depthMm})`);
    const pw = Math.floor(width * 0.45), ph = Math.floor(height * 0.78);
    const bmode = { x: Math.floor(width * 0.03), y: Math.floor(height * 0.11), width: pw, height: ph };
    const contrast = { x: Math.floor(width * 0.52), y: bmode.y, width: pw, height: ph };
    this.mmPerPixel = depthMm / ph;
    const mm = this.mmPerPixel;
    this.layout = {
      width, height,
      panes: {
        bmode: { name: 'bmode', rect: bmode, spacingX: mm, spacingY: mm },
        contrast: { name: 'contrast', rect: contrast, spacingX: mm, spacingY: mm },
      },
    };
    const m = opts.motion ?? {};
    this.motionOpts = {
      breathingAmplitudeMm: m.breathingAmplitudeMm ?? [1.5, 2.5],
      breathingPeriodS: m.breathingPeriodS ?? 4.2,
      driftAmplitudeMm: m.driftAmplitudeMm ?? [4.0, 2.0],
      driftPeriodS: m.driftPeriodS ?? [95, 130],
      swayAmplitudeMm: m.swayAmplitudeMm ?? [1.2, 0.8],
      swayPeriodS: m.swayPeriodS ?? [9.7, 7.3],
      scaleAmplitude: m.scaleAmplitude ?? 0.05,
      scalePeriodS: m.scalePeriodS ?? 17,
      elevationBreathingMm: m.elevationBreathingMm ?? 0.5,
      elevationDriftMm: m.elevationDriftMm ?? 3,
      elevationDriftPeriodS: m.elevationDriftPeriodS ?? 150,
      speckleCorrelationMm: m.speckleCorrelationMm ?? 0.6,
      gainAmplitudeDb: m.gainAmplitudeDb ?? 1.5,
      gainPeriodS: m.gainPeriodS ?? 23,
      gainSteps: m.gainSteps ?? [[50, 4], [110, -3]],
      excursions: m.excursions ?? [],
    };
    const mo = this.motionOpts;
    must([mo.breathingPeriodS, mo.scalePeriodS, mo.elevationDriftPeriodS, mo.gainPeriodS, ...mo.driftPeriodS, ...mo.swayPeriodS].every((p) => p > 0),
      'motion periods must be > 0');
    must(Math.abs(mo.scaleAmplitude) < 0.3, 'motion.scaleAmplitude must be below 0.3');
    must(mo.speckleCorrelationMm > 0, 'motion.speckleCorrelationMm must be > 0');
    must(mo.gainSteps.every(([t, db]) => Number.isFinite(t) && Math.abs(db) <= 20), 'motion.gainSteps: [time s, dB] with |dB| <= 20');
    must(mo.excursions.every((e) => e.durationS > 0 && Number.isFinite(e.startS) && Math.abs(e.dxMm) <= 200 && Math.abs(e.dyMm) <= 200),
      'motion.excursions: durationS > 0, finite startS, |dxMm| and |dyMm| <= 200');
    this.lesionBolus = { ...DEFAULT_LESION_BOLUS, ...opts.contrast?.lesion };
    this.tissueBolus = { ...DEFAULT_TISSUE_BOLUS, ...opts.contrast?.tissue };
    for (const [k, b] of [['lesion', this.lesionBolus], ['tissue', this.tissueBolus]] as const)
      must(b.sigma > 0 && b.peak >= 0 && Number.isFinite(b.mu) && Number.isFinite(b.arrivalS), `contrast.${k}: sigma > 0, peak >= 0, finite mu and arrivalS`);

    // Lesion outline: an ellipse (wider than tall) with seeded lobulation.
    const L = opts.lesion ?? {};
    const radiusMm = L.radiusMm ?? 7, aspect = L.aspect ?? 1.35, irr = L.irregularity ?? 1;
    must(radiusMm > 1 && radiusMm < depthMm / 3, `lesion.radiusMm must be in (1, depthMm/3) (got ${radiusMm})`);
    must(aspect >= 0.5 && aspect <= 3, 'lesion.aspect must be in [0.5, 3]');
    must(irr >= 0 && irr <= 3, 'lesion.irregularity must be in [0, 3]');
    const rnd = seededRandom(seed * 7919 + 13);
    const harmonics = [3, 4, 5, 7, 9, 11, 13].map((k) => ({ k, a: (k <= 5 ? 0.055 : 0.022) * irr * (0.5 + rnd()), phi: rnd() * 2 * Math.PI }));
    const n = 360, radii = new Float64Array(n);
    const a = (radiusMm / mm) * Math.sqrt(aspect), b = radiusMm / mm / Math.sqrt(aspect);
    for (let i = 0; i < n; i++) {
      const th = (2 * Math.PI * i) / n;
      const ell = (a * b) / Math.hypot(b * Math.cos(th), a * Math.sin(th));
      let f = 1;
      for (const h of harmonics) f += h.a * Math.cos(h.k * th + h.phi);
      radii[i] = ell * f;
    }
    const depthFraction = L.depthFraction ?? 0.45;
    this.lesionCenter = { x: pw * 0.5, y: ph * depthFraction };
    const shape = polarShape(radii);
    this.centroidOffset = shape.centroid;
    this.lesionAreaPx = shape.area;
    // World margins: room for the motion, and for excursions beyond the pane.
    const margin = Math.ceil(Math.max(pw, ph) * 0.25);
    const extra = (k: 'dxMm' | 'dyMm') => Math.ceil(Math.max(0, ...mo.excursions.map((e) => Math.abs(e[k]))) / mm);
    this.renderer = new native.PhantomRenderer({
      seed, width, height, bmode, contrast, mmPerPixel: mm, margin: margin + extra('dyMm'), marginX: margin + extra('dxMm'),
      lesion: { cx: this.lesionCenter.x, cy: this.lesionCenter.y, radii },
    });
  }

  /** Every rendered frame is a new image: the phantom has no repeats. */
  get stats(): SourceStats {
    return { ...this.counts, unique: this.counts.delivered, duplicates: 0 };
  }

  /** Dynamic range (dB) and floor of the contrast pane's log compression, for linearisation. */
  get contrastCompression(): { dynamicRangeDb: number; dbMin: number; dbPerDecade: number } {
    return { dynamicRangeDb: this.renderer.contrastDynamicRangeDb, dbMin: this.renderer.contrastDbMin, dbPerDecade: 10 };
  }

  /**
   * Where a sonographer would put the perfusion reference region: a disc of normal glandular
   * tissue lateral to the lesion and above its level (pane coordinates, given the lesion centre).
   */
  suggestedReference(center: { x: number; y: number }): { x: number; y: number; radiusMm: number } {
    const mm = this.mmPerPixel;
    return { x: center.x + 12 / mm, y: center.y - 6 / mm, radiusMm: 5 };
  }

  /**
   * The truth behind a measured TIC: per code 1..nCodes of a pane-sized code map, the mean
   * perfusion weights of the lesion and tissue boluses over the code's pixels under a motion. A
   * region's expected linear contrast intensity is lesion x lognormalBolus(lesionBolus, t) +
   * tissue x lognormalBolus(tissueBolus, t), in the contrast pane's concentration units.
   */
  perfusionWeights(motion: { dx: number; dy: number; scale: number }, codes: Uint8Array, nCodes: number): Array<{ lesion: number; tissue: number; pixels: number }> {
    const raw = this.renderer.perfusionWeights(motion, codes, nCodes);
    return Array.from({ length: nCodes }, (_, k) => {
      const n = raw[3 * k + 2];
      return { lesion: n ? raw[3 * k] / n : 0, tissue: n ? raw[3 * k + 1] / n : 0, pixels: n };
    });
  }

  motionAt(t: number): PhantomMotionState {
    const m = this.motionOpts, mm = this.mmPerPixel, w = 2 * Math.PI;
    const breath = Math.sin((w * t) / m.breathingPeriodS);
    let dxMm = m.breathingAmplitudeMm[0] * breath + m.driftAmplitudeMm[0] * Math.sin((w * t) / m.driftPeriodS[0]) + m.swayAmplitudeMm[0] * Math.sin((w * t) / m.swayPeriodS[0] + 1.1);
    let dyMm = m.breathingAmplitudeMm[1] * Math.sin((w * t) / m.breathingPeriodS + 0.6) + m.driftAmplitudeMm[1] * Math.sin((w * t) / m.driftPeriodS[1]) +
      m.swayAmplitudeMm[1] * Math.sin((w * t) / m.swayPeriodS[1] + 2.3);
    for (const e of m.excursions) {
      const f = excursionProfile((t - e.startS) / e.durationS);
      dxMm += f * e.dxMm;
      dyMm += f * e.dyMm;
    }
    const scale = 1 + m.scaleAmplitude * Math.sin((w * t) / m.scalePeriodS);
    const elevationMm = m.elevationBreathingMm * breath + m.elevationDriftMm * Math.sin((w * t) / m.elevationDriftPeriodS);
    let gainDb = m.gainAmplitudeDb * Math.sin((w * t) / m.gainPeriodS);
    for (const [at, db] of m.gainSteps) gainDb += db * Math.min(1, Math.max(0, (t - at) / 0.5));
    return { dx: dxMm / mm, dy: dyMm / mm, scale, elevation: elevationMm / m.speckleCorrelationMm, gainDb };
  }

  /** Lesion centroid (pane coordinates) under a motion. */
  centerFor(motion: { dx: number; dy: number; scale: number }): { x: number; y: number } {
    const r = this.layout.panes.bmode.rect;
    const cx = r.width * 0.5, cy = r.height * 0.5;
    const lx = this.lesionCenter.x + this.centroidOffset.x, ly = this.lesionCenter.y + this.centroidOffset.y;
    return { x: (lx - cx + motion.dx) * motion.scale + cx, y: (ly - cy + motion.dy) * motion.scale + cy };
  }

  ticAt(t: number): { lesion: number; tissue: number } {
    return { lesion: lognormalBolus(this.lesionBolus, t), tissue: lognormalBolus(this.tissueBolus, t) };
  }

  /** Renders frame `index` deterministically; `out` (width*height) may be reused by the caller. */
  render(index: number, out?: Uint8Array, maskOut?: Uint8Array): { data: Uint8Array; truth: PhantomTruth } {
    must(Number.isInteger(index) && index >= 0, `frame index must be a non-negative integer (got ${index})`);
    const { width, height, panes } = this.layout;
    const data = out ?? new Uint8Array(width * height);
    const mask = maskOut ?? new Uint8Array(panes.bmode.rect.width * panes.bmode.rect.height);
    const t = index / this.fps;
    const motion = this.motionAt(t);
    const tic = this.ticAt(t);
    const inside = this.renderer.render(index, motion, tic, this.chromeText(index, t), data, mask);
    const inView = Math.min(1, inside / (this.lesionAreaPx * motion.scale * motion.scale));
    const center = this.centerFor(motion);
    const b = panes.bmode.rect, c = panes.contrast.rect;
    return {
      data,
      truth: {
        frameIndex: index, timeS: t, motion, center,
        frameCenters: { bmode: { x: b.x + center.x, y: b.y + center.y }, contrast: { x: c.x + center.x, y: c.y + center.y } },
        lesionMask: mask, tic, inView,
      },
    };
  }

  /** A Frame for index `index` with a synthetic timestamp (index / fps), plus its truth. */
  frameAt(index: number, seq = index): { frame: Frame; truth: PhantomTruth } {
    const { data, truth } = this.render(index);
    return { frame: createFrame(data, this.layout.width, this.layout.height, seq, this.id, (index * 1000) / this.fps), truth };
  }

  private chromeText(index: number, t: number) {
    const { width, height, panes } = this.layout;
    const sc = width >= 960 ? 2 : 1;
    const mmss = `${String(Math.floor(t / 60)).padStart(2, '0')}:${(t % 60).toFixed(1).padStart(4, '0')}`;
    return [
      { x: panes.bmode.rect.x, y: 8, text: 'SONOMICS PHANTOM  L12-5  BREAST  CEUS DUAL', scale: sc, gray: 220 },
      { x: panes.contrast.rect.x, y: 8, text: `FR ${Math.round(this.fps)}HZ  MI 0.08  D ${(panes.bmode.rect.height * this.mmPerPixel / 10).toFixed(1)}CM`, scale: sc, gray: 200 },
      { x: panes.bmode.rect.x, y: panes.bmode.rect.y - 9 * sc + 2 - 4, text: 'B-MODE', scale: 1, gray: 230 },
      { x: panes.contrast.rect.x, y: panes.contrast.rect.y - 9 * sc + 2 - 4, text: 'CONTRAST', scale: 1, gray: 230 },
      { x: panes.bmode.rect.x, y: height - 9 * sc - 4, text: `T ${mmss}  F ${index}`, scale: sc, gray: 200 },
    ];
  }

  /** Live mode: emit 'frame' at the frame rate; frames the process was too busy to take are counted as dropped. */
  start(): void {
    if (this.timer) return;
    this.startMs = performance.now();
    this.nextIndex = 0;
    const interval = 1000 / this.fps;
    const tick = () => {
      if (!this.timer) return;
      const now = performance.now();
      const due = Math.floor((now - this.startMs) / interval);
      if (due >= this.nextIndex) {
        // Frames that came and went while we were busy: the card overwrote them.
        const target = Math.min(due, this.maxFrames);
        if (target > this.nextIndex) { this.counts.dropped += target - this.nextIndex; this.counts.gaps++; this.nextIndex = target; }
        if (this.nextIndex >= this.maxFrames) { this.stop(); this.emit('end'); return; }
        const index = this.nextIndex++;
        const { data, truth } = this.render(index);
        const frame = createFrame(data, this.layout.width, this.layout.height, this.seq++, this.id, now);
        this.counts.delivered++;
        this.emit('frame', frame, truth);
        if (this.nextIndex >= this.maxFrames) { this.stop(); this.emit('end'); return; }
      }
      const wait = Math.max(0, this.startMs + this.nextIndex * interval - performance.now());
      this.timer = setTimeout(tick, wait);
    };
    this.timer = setTimeout(tick, 0);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** Raised-cosine out (first 20 %), hold, back (last 20 %); 0 outside [0, 1]. */
function excursionProfile(u: number): number {
  if (u <= 0 || u >= 1) return 0;
  const ramp = (v: number) => 0.5 - 0.5 * Math.cos(Math.PI * Math.min(1, v / 0.2));
  return u < 0.5 ? ramp(u) : ramp(1 - u);
}

/** Area and area centroid of a star-shaped outline given by radii sampled uniformly in angle. */
function polarShape(radii: Float64Array): { area: number; centroid: { x: number; y: number } } {
  const n = radii.length, steps = n * 10;
  let area = 0, mx = 0, my = 0;
  for (let s = 0; s < steps; s++) {
    const u = (s + 0.5) / 10, i = Math.floor(u) % n, f = u - Math.floor(u);
    const r = radii[i] + f * (radii[(i + 1) % n] - radii[i]);
    const th = (2 * Math.PI * (s + 0.5)) / steps, dth = (2 * Math.PI) / steps;
    area += 0.5 * r * r * dth;
    mx += (r ** 3 / 3) * Math.cos(th) * dth;
    my += (r ** 3 / 3) * Math.sin(th) * dth;
  }
  return { area, centroid: { x: mx / area, y: my / area } };
}
