// Time-intensity curves (TIC): one sample per unique tracked frame of the contrast pane's mean
// intensity in each region (lesion, each peritumoral ring, the reference region), measured in one
// native call per frame. Optionally linearised: a scanner's display log-compresses the echo
// power, so a gray level g is mapped back to power 10^((offsetDb + dynamicRangeDb * g / 255) / 10)
// before averaging (the mean of display gray levels is not proportional to bubble concentration).
import type { LaidOutFrame } from '../layout.js';
import { native } from '../native.js';
import type { RingSet } from '../regions.js';

/**
 * The display's log compression: gray 0..255 spans dynamicRangeDb decibels of echo power, gray 0
 * sitting at offsetDb (default 0: results in arbitrary units relative to the display floor).
 */
export interface Linearisation { dynamicRangeDb: number; offsetDb?: number }

/** The lookup table a frame's gray levels go through: linearised power, or the gray level itself. */
export function linearisationLut(lin: Linearisation | null | undefined): Float32Array {
  const lut = new Float32Array(256);
  if (!lin) {
    for (let g = 0; g < 256; g++) lut[g] = g;
    return lut;
  }
  if (!(lin.dynamicRangeDb > 0 && lin.dynamicRangeDb <= 120)) throw new RangeError(`linearisation.dynamicRangeDb must be in (0, 120] dB (got ${lin.dynamicRangeDb})`);
  const off = lin.offsetDb ?? 0;
  if (!Number.isFinite(off) || Math.abs(off) > 200) throw new RangeError(`linearisation.offsetDb must be a finite number of dB within ±200 (got ${off})`);
  for (let g = 0; g < 256; g++) lut[g] = 10 ** ((off + (lin.dynamicRangeDb * g) / 255) / 10);
  return lut;
}

/**
 * The reference region: a disc in normal tissue, placed in pane coordinates (pixels; the same
 * geometry in both panes) while the lesion was at `lesionAt` with tracked scale `scaleAt`. It
 * follows the tissue as the tracker sees it move: the lesion's translation, and its scale
 * (compression) applied to the disc's offset from the lesion.
 */
export interface ReferenceRegion { x: number; y: number; radiusMm: number; lesionAt: { x: number; y: number }; scaleAt: number }

/** Where the reference disc is on a frame whose lesion centre is `center` and tracked scale `scale` (pane coordinates). */
export function referenceAt(ref: ReferenceRegion, center: { x: number; y: number }, scale = ref.scaleAt): { x: number; y: number } {
  const ok = Number.isFinite(center.x) && Number.isFinite(center.y) && Number.isFinite(ref.lesionAt.x) && Number.isFinite(ref.lesionAt.y);
  if (!ok) return { x: ref.x, y: ref.y };
  const k = scale > 0 && ref.scaleAt > 0 ? scale / ref.scaleAt : 1;
  return { x: center.x + (ref.x - ref.lesionAt.x) * k, y: center.y + (ref.y - ref.lesionAt.y) * k };
}

/** One frame's sample: mean intensity per region (NaN when the region has no pixel) and saturation. */
export interface RegionSample { means: Float64Array; counts: Float64Array; saturated: Float64Array }

/**
 * Measures one frame: regions are the lesion, the rings of `rings` (cumulative: ring k holds codes
 * 2..k+2) and, when given, the reference disc (centre in pane pixels, radius in mm).
 */
export function measureRegions(lf: LaidOutFrame, rings: RingSet, lut: Float32Array,
  reference?: { x: number; y: number; radiusMm: number } | null, correct = false): RegionSample {
  const pane = lf.layout.panes.contrast;
  const nCodes = rings.radiiMm.length + 1;
  const ref = reference ? { cx: reference.x, cy: reference.y, rx: reference.radiusMm / pane.spacingX, ry: reference.radiusMm / pane.spacingY } : null;
  const raw = native.regionIntensity(lf.frame.data, lf.frame.width, lf.frame.height, pane.rect, rings.codes, nCodes, lut, ref);
  const n = nCodes + 1;
  const means = new Float64Array(n), counts = new Float64Array(n), saturated = new Float64Array(n);
  // A pixel at the display's maximum says only "at least this": under fully developed speckle the
  // linear intensity is exponential, whose excess over any level has the region's mean (it is
  // memoryless), so sum + saturated x mean = count x mean: mean = sum / (count - saturated).
  // Without linearisation (gray levels) the plain mean is kept.
  const mean = (sum: number, cnt: number, sat: number) => (!cnt ? NaN : correct && cnt > sat ? sum / (cnt - sat) : sum / cnt);
  // Cumulative rings: code 1 is the lesion; ring k adds codes 2..k+2.
  let s = 0, c = 0, sat = 0;
  for (let k = 0; k < nCodes; k++) {
    const sum = raw[3 * k], cnt = raw[3 * k + 1], st = raw[3 * k + 2];
    if (k === 0) { means[0] = mean(sum, cnt, st); counts[0] = cnt; saturated[0] = cnt ? st / cnt : 0; continue; }
    s += sum; c += cnt; sat += st;
    means[k] = mean(s, c, sat); counts[k] = c; saturated[k] = c ? sat / c : 0;
  }
  const rs = raw[3 * nCodes], rc = raw[3 * nCodes + 1], rsat = raw[3 * nCodes + 2];
  means[nCodes] = ref && rc ? mean(rs, rc, rsat) : NaN;
  counts[nCodes] = rc;
  saturated[nCodes] = rc ? rsat / rc : 0;
  return { means, counts, saturated };
}

/**
 * The session's curves: times (s since the session's origin) and per region values, in growable
 * typed arrays. Bounded: when `capacity` samples are held, every second sample is dropped (the
 * whole session is kept at half the time resolution) so memory stays fixed however long it runs.
 */
export class CurveStore {
  readonly regions: readonly string[];
  private t: Float64Array;
  private v: Float64Array[];
  private sat: Float64Array;
  private n = 0;
  /** Times the store was halved to stay within capacity. */
  decimations = 0;

  constructor(regions: readonly string[], readonly capacity = 36_000) {
    if (!(Number.isInteger(capacity) && capacity >= 64)) throw new RangeError(`perfusion capacity must be an integer >= 64 (got ${capacity})`);
    this.regions = [...regions];
    const first = Math.min(capacity, 1024);
    this.t = new Float64Array(first);
    this.v = this.regions.map(() => new Float64Array(first));
    this.sat = new Float64Array(first);
  }

  get length(): number { return this.n; }

  /** Adds a sample (values in region order; saturation = fraction of lesion pixels at 255). Times must not go back. */
  add(t: number, values: ArrayLike<number>, lesionSaturation: number): void {
    if (this.n && t < this.t[this.n - 1]) throw new RangeError(`TIC sample at ${t} s is older than the last one (${this.t[this.n - 1]} s)`);
    if (this.n === this.capacity) this.decimate();
    if (this.n === this.t.length) this.grow(Math.min(this.capacity, this.t.length * 2));
    this.t[this.n] = t;
    for (let r = 0; r < this.v.length; r++) this.v[r][this.n] = values[r];
    this.sat[this.n] = lesionSaturation;
    this.n++;
  }

  /** Copies of the times, and of one region's values (NaN where it had no pixel), from sample `from`. */
  times(from = 0): Float64Array { return this.t.slice(from, this.n); }
  values(region: string, from = 0): Float64Array {
    const r = this.regions.indexOf(region);
    if (r < 0) throw new RangeError(`no region ${region} in this curve (has ${this.regions.join(', ')})`);
    return this.v[r].slice(from, this.n);
  }
  saturation(from = 0): Float64Array { return this.sat.slice(from, this.n); }

  clear(): void { this.n = 0; }

  /** Forgets one region's values so far (NaN: no value), e.g. when the reference region moves. */
  clearRegion(region: string): void {
    const r = this.regions.indexOf(region);
    if (r >= 0) this.v[r].fill(NaN, 0, this.n);
  }

  private grow(size: number): void {
    const g = (a: Float64Array) => { const b = new Float64Array(size); b.set(a.subarray(0, this.n)); return b; };
    this.t = g(this.t);
    this.v = this.v.map(g);
    this.sat = g(this.sat);
  }

  private decimate(): void {
    const keep = (a: Float64Array) => { for (let i = 0, j = 0; i < this.n; i += 2, j++) a[j] = a[i]; };
    keep(this.t);
    this.v.forEach(keep);
    keep(this.sat);
    this.n = Math.ceil(this.n / 2);
    this.decimations++;
  }
}
