// Data-driven bolus detection on a CEUS time-intensity curve (TIC) that may have gaps (missing
// stretches, e.g. frames dropped while the probe moved) and noise. No model is fitted here.
//
// Method:
//  1. Baseline window: the samples of the first `baselineS` seconds (default 3 s), but no more than
//     `baselineFraction` of all samples (default 10 %, so a short recording keeps its wash-in out of
//     the baseline), and at least `minBaselineSamples` (default 5).
//     baseline = median of the window; noise = robust SD = 1.4826 · MAD of the window.
//  2. Smoothed curve: at every sample, the median of the samples within ±windowS/2 (default 1 s
//     windows, on time, so gaps shrink the window instead of bridging it). A running median is
//     unbiased in time on a monotone rise and ignores isolated spikes.
//  3. Wash-in: threshold = baseline + max(k · noise, f · (peak − baseline)), defaults k = 5,
//     f = 0.1, peak = maximum of the smoothed curve. The rise is the first sample from which the
//     smoothed curve stays above the threshold for at least `sustainS` (default 1 s). A rise that
//     reaches the end of the curve before `sustainS` still counts (at least 3 samples), as a rise
//     under way.
//  4. Arrival: from the rise, step back while the smoothed curve is still above the noise band of
//     the smoothed baseline, baseline + bandK · noise · 1.2533 / sqrt(m) (default bandK = 3;
//     1.2533/sqrt(m) is the SD of a median of m samples, m = the median number of samples per
//     window); the arrival is the first sample above the band.
//  5. Peak: the time and value of the smoothed maximum. It is confirmed once the smoothed curve
//     later falls below peak − max(k · noise, f · (peak − baseline)); otherwise the wash-in is still
//     under way ('rising').
// States: 'too-few-frames' (fewer than minSamples samples, default 20, or a curve shorter than
// minDurationS, default 5 s), 'no-wash-in' (flat, pure noise, only decreasing), 'rising' (a rise but
// no peak yet), 'wash-in' (arrival and peak).

/** A sampled TIC: strictly increasing times (s) and finite intensities of the same length. */
export interface TicSamples { t: Float64Array; y: Float64Array }

/** Throws unless `samples` is a TIC: Float64Arrays of equal length, finite, times strictly increasing. */
export function checkSamples(samples: TicSamples, who: string): void {
  if (samples === null || typeof samples !== 'object') throw new TypeError(`${who}: samples must be an object { t, y }`);
  const { t, y } = samples;
  if (!(t instanceof Float64Array) || !(y instanceof Float64Array)) throw new TypeError(`${who}: samples.t and samples.y must be Float64Arrays`);
  if (t.length !== y.length) throw new RangeError(`${who}: samples.t and samples.y differ in length (${t.length} times, ${y.length} intensities)`);
  for (let i = 0; i < t.length; i++) {
    if (!Number.isFinite(t[i])) throw new RangeError(`${who}: time t[${i}] is not finite (${t[i]})`);
    if (!Number.isFinite(y[i])) throw new RangeError(`${who}: intensity y[${i}] is not finite (${y[i]})`);
    if (i > 0 && !(t[i] > t[i - 1])) throw new RangeError(`${who}: times must be strictly increasing, t[${i}] = ${t[i]} follows t[${i - 1}] = ${t[i - 1]}`);
  }
}

/** Median of the values (copied, not reordered in place); NaN when empty. */
export function median(values: Float64Array): number {
  const n = values.length;
  if (n === 0) return NaN;
  const s = Float64Array.from(values).sort();
  return n % 2 ? s[(n - 1) >> 1] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

export interface DetectOptions {
  /** Fewer samples than this is 'too-few-frames' (default 20). */
  minSamples?: number;
  /** A curve spanning less than this is 'too-few-frames' (s, default 5). */
  minDurationS?: number;
  /** Baseline window length (s, default 3). */
  baselineS?: number;
  /** Baseline window at most this fraction of the samples (default 0.1). */
  baselineFraction?: number;
  /** Baseline window at least this many samples (default 5). */
  minBaselineSamples?: number;
  /** Smoothing window (s, default 1). */
  windowS?: number;
  /** Rise threshold in noise SDs (default 5). */
  k?: number;
  /** Rise threshold as a fraction of the peak enhancement (default 0.1). */
  f?: number;
  /** The rise must last this long above the threshold (s, default 1). */
  sustainS?: number;
  /** Half-width of the smoothed baseline's noise band, in SDs of the smoothed curve (default 3). */
  bandK?: number;
}

export interface WashInDetection {
  state: 'wash-in';
  /** Arrival time (s, on the curve's time axis). */
  arrivalS: number;
  /** Baseline intensity (median of the baseline window). */
  baseline: number;
  /** Robust SD of the baseline window (1.4826 · MAD). */
  noise: number;
  /** Time of the smoothed maximum (s). */
  peakS: number;
  /** Smoothed maximum intensity (same units as y, baseline included). */
  peakY: number;
}
export interface RisingDetection { state: 'rising'; arrivalS: number; baseline: number; noise: number; message: string }
export interface NoBolusDetection { state: 'too-few-frames' | 'no-wash-in'; message: string }
export type BolusDetection = WashInDetection | RisingDetection | NoBolusDetection;

function option(value: number | undefined, fallback: number, name: string, min: number): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v < min) throw new RangeError(`detectBolus: option ${name} must be a finite number >= ${min} (got ${v})`);
  return v;
}

/** Running median over ±halfS seconds around each sample (two pointers over sorted times). */
export function runningMedian(t: Float64Array, y: Float64Array, halfS: number): { smooth: Float64Array; counts: Float64Array } {
  const n = t.length, smooth = new Float64Array(n), counts = new Float64Array(n);
  let lo = 0, hi = 0;
  for (let i = 0; i < n; i++) {
    while (t[lo] < t[i] - halfS) lo++;
    while (hi < n && t[hi] <= t[i] + halfS) hi++;
    smooth[i] = median(y.subarray(lo, hi));
    counts[i] = hi - lo;
  }
  return { smooth, counts };
}

/** Detects the contrast bolus of a TIC: arrival, baseline, noise and peak, or why there is none. */
export function detectBolus(samples: TicSamples, opts: DetectOptions = {}): BolusDetection {
  const { t, y } = samples;
  checkSamples(samples, 'detectBolus');
  const minSamples = option(opts.minSamples, 20, 'minSamples', 3);
  const minDurationS = option(opts.minDurationS, 5, 'minDurationS', 0);
  const baselineS = option(opts.baselineS, 3, 'baselineS', 0);
  const baselineFraction = option(opts.baselineFraction, 0.1, 'baselineFraction', 0);
  const minBaselineSamples = option(opts.minBaselineSamples, 5, 'minBaselineSamples', 2);
  const windowS = option(opts.windowS, 1, 'windowS', 0);
  const k = option(opts.k, 5, 'k', 0);
  const f = option(opts.f, 0.1, 'f', 0);
  const sustainS = option(opts.sustainS, 1, 'sustainS', 0);
  const bandK = option(opts.bandK, 3, 'bandK', 0);

  const n = t.length;
  if (n < minSamples) return { state: 'too-few-frames', message: `too few frames: ${n} samples, at least ${minSamples} needed` };
  const span = t[n - 1] - t[0];
  if (span < minDurationS) return { state: 'too-few-frames', message: `too few frames: the curve spans ${span.toFixed(2)} s, at least ${minDurationS} s needed` };

  // 1. baseline and noise
  let nb = 0;
  while (nb < n && t[nb] < t[0] + baselineS) nb++;
  nb = Math.max(Math.min(nb, Math.floor(baselineFraction * n)), minBaselineSamples);
  const window = y.subarray(0, nb);
  const baseline = median(window);
  const noise = 1.4826 * median(window.map((v) => Math.abs(v - baseline)));

  // 2. smoothed curve and its maximum
  const { smooth, counts } = runningMedian(t, y, windowS / 2);
  let peakIdx = 0;
  for (let i = 1; i < n; i++) if (smooth[i] > smooth[peakIdx]) peakIdx = i;
  const peakY = smooth[peakIdx], rise = peakY - baseline;
  const margin = Math.max(k * noise, f * rise);
  const threshold = baseline + margin;

  // 3. the first sustained rise above the threshold
  let start = -1, atEnd = false;
  for (let i = 0; i < n && start < 0; i++) {
    if (!(smooth[i] > threshold)) continue;
    let j = i;
    while (j + 1 < n && smooth[j + 1] > threshold && t[j + 1] - t[i] < sustainS) j++;
    if (j + 1 < n && smooth[j + 1] > threshold) start = i; // still above after sustainS
    else if (j === n - 1 && n - i >= 3) { start = i; atEnd = true; } // rise runs into the end of the curve
  }
  if (start < 0) {
    const message = rise <= k * noise
      ? `no wash-in detected: the curve never rises ${k} noise SDs above its baseline`
      : `no wash-in detected: the curve never stays ${(f * 100).toFixed(0)} % of its range above its baseline for ${sustainS} s`;
    return { state: 'no-wash-in', message };
  }

  // 4. step back to where the smoothed curve leaves the baseline noise band
  const m = median(counts.subarray(0, nb));
  const band = baseline + (bandK * noise * 1.2533) / Math.sqrt(m);
  let a = start;
  while (a > 0 && smooth[a - 1] > band) a--;
  const arrivalS = t[a];

  // 5. a peak needs the curve to come down from it
  let confirmed = false;
  for (let i = peakIdx + 1; i < n && !atEnd && !confirmed; i++) confirmed = smooth[i] < peakY - margin;
  if (!confirmed) return { state: 'rising', arrivalS, baseline, noise, message: 'wash-in under way: no peak yet' };
  return { state: 'wash-in', arrivalS, baseline, noise, peakS: t[peakIdx], peakY };
}
