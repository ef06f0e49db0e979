// Enhancement phases of a fitted bolus, as time windows [start, end] in seconds on the curve's own
// time axis (e = fitted enhancement, PE its peak, AT the arrival time):
//   pre    before the contrast arrives: [−Infinity, AT]
//   early  on the rise, while e is between 25 % and 75 % of PE: [e = 0.25 PE, e = 0.75 PE] rising
//   peak   while e >= 90 % of PE: [e = 0.9 PE rising, e = 0.9 PE falling]
//   late   (delayed) after the peak, from e = 50 % of PE falling to e = 10 % of PE falling; the end is
//          Infinity when the curve does not fall below 10 % within maxDurationS (default 3600 s)
// Level crossings are found by bisection on the fitted function (a bolus is unimodal: rising from AT
// to the peak, falling after).
import { checkBolus, enhancementAt, type BolusModelName, type BolusParamsOf } from './models.js';
import type { PerfusionParameters } from './parameters.js';

export const PHASES = ['pre', 'early', 'peak', 'late'] as const;
export type Phase = (typeof PHASES)[number];
export type PhaseWindows = Record<Phase, [number, number]>;

/** Time in [lo, hi] where g (monotone there) crosses 0, by bisection. */
function bisect(g: (t: number) => number, lo: number, hi: number): number {
  const rising = g(hi) > g(lo);
  for (let i = 0; i < 200 && hi - lo > 1e-12 * Math.max(1, Math.abs(lo)); i++) {
    const mid = (lo + hi) / 2;
    if ((g(mid) < 0) === rising) lo = mid; else hi = mid;
  }
  return (lo + hi) / 2;
}

/** The pre, early, peak and late windows of a fitted bolus (definitions in the file header). */
export function phaseWindows<M extends BolusModelName>(model: M, params: BolusParamsOf[M], parameters: PerfusionParameters, opts: { maxDurationS?: number } = {}): PhaseWindows {
  checkBolus(model, params, 'phaseWindows');
  if (parameters === null || typeof parameters !== 'object') throw new TypeError('phaseWindows: parameters must be a bolusParameters result');
  const { AT, PE, peakTime } = parameters;
  if (!Number.isFinite(AT) || !Number.isFinite(peakTime) || !(peakTime > AT)) throw new RangeError(`phaseWindows: parameters need finite AT < peakTime (got AT ${AT}, peakTime ${peakTime})`);
  if (!(PE > 0) || !Number.isFinite(PE)) throw new RangeError(`phaseWindows: parameters.PE must be a finite number > 0 (got ${PE})`);
  if (Math.abs(AT - params.t0) > 1e-9 * Math.max(1, Math.abs(AT))) throw new RangeError(`phaseWindows: parameters.AT (${AT}) is not this bolus's t0 (${params.t0})`);
  const maxDurationS = opts.maxDurationS ?? 3600;
  if (!(maxDurationS > 0) || !Number.isFinite(maxDurationS)) throw new RangeError(`phaseWindows: maxDurationS must be a finite number > 0 (got ${maxDurationS})`);

  const level = (fraction: number) => (t: number) => enhancementAt(model, params, t) - fraction * PE;
  const rise = (fraction: number) => bisect(level(fraction), AT, peakTime);
  const fall = (fraction: number) => {
    const g = level(fraction);
    let h = 1;
    while (g(peakTime + h) >= 0) { // bracket by doubling
      if (h > maxDurationS) return Infinity;
      h *= 2;
    }
    return bisect(g, h > 1 ? peakTime + h / 2 : peakTime, peakTime + h); // g >= 0 at the lower end
  };
  return {
    pre: [-Infinity, AT],
    early: [rise(0.25), rise(0.75)],
    peak: [rise(0.9), fall(0.9)],
    late: [fall(0.5), fall(0.1)],
  };
}
