// Bolus (perfusion) parameters of a fitted CEUS time-intensity curve, computed from the fitted
// function itself (never from the noisy samples), following the bolus parameters of common CEUS
// quantification software (e.g. VueBox). I(t) is the fitted curve, b its baseline, e = I − b the
// enhancement, all times in seconds on the curve's own time axis:
//
//   AT     arrival time = the model's t0 (s)
//   PE     peak enhancement = max(I) − b (a.u.)
//   TTP    time to peak = time of the maximum − AT (s); peakTime = AT + TTP
//   WiR    wash-in rate = maximum slope of I (a.u./s), at the steepest wash-in point ts
//   TI     time where the tangent at ts crosses the baseline: ts − e(ts) / WiR (s)
//   RT     rise time = peakTime − TI (s)
//   WiAUC  wash-in area = ∫ from TI (or t0 if later) to peakTime of e dt (a.u.·s)
//   MTT    mean transit time = ∫ (t − t0) e dt / ∫ e dt over [t0, ∞) (s)
//   WoR    wash-out rate = minimum slope of I (negative, a.u./s), at the steepest wash-out point tw
//   TO     time where the tangent at tw crosses the baseline: tw − e(tw) / WoR (s)
//   FT     fall time = TO − peakTime (s)
//   AUC    area under the enhancement = ∫ from t0 to ∞ of e dt (a.u.·s)
//
// Numerics (generic for any unimodal bolus): a scan on a time grid from t0 (step stepS, default
// 0.01 s, growing as 1e-3 of the elapsed time in long tails) until, past the peak, the enhancement
// is below `cutoff` (default 0.1 %) of its maximum and an exponential tail beyond the scan end T,
// e(T)·exp(−λ(t − T)) with λ = −e'(T)/e(T), would add less than 1e-7 to ∫ e and ∫ (t − t0) e (the
// first moment, MTT, weighs the tail by time: heavy lognormal tails need this); bounded by
// maxDurationS (default 1e5 s, beyond which it throws). The maximum of e and the extreme slopes
// (analytic dI/dt) are located on the grid and refined by golden-section search; the integrals are
// trapezoidal on the grid plus that exponential tail. models.ts's analyticBolus gives the closed
// forms used by the tests to check these numbers.
import { checkBolus, enhancementAt, slopeAt, type BolusModelName, type BolusParamsOf, type GammaVariateParams } from './models.js';

export const PARAMETER_NAMES = ['AT', 'PE', 'TTP', 'RT', 'WiR', 'WiAUC', 'MTT', 'FT', 'WoR', 'AUC'] as const;
export type ParameterName = (typeof PARAMETER_NAMES)[number];
export const PARAMETER_UNITS: Readonly<Record<ParameterName, string>> = {
  AT: 's', PE: 'a.u.', TTP: 's', RT: 's', WiR: 'a.u./s', WiAUC: 'a.u.·s', MTT: 's', FT: 's', WoR: 'a.u./s', AUC: 'a.u.·s',
};

export type PerfusionParameters = Record<ParameterName, number> & {
  /** Baseline crossing of the steepest wash-in tangent (s). */
  TI: number;
  /** Baseline crossing of the steepest wash-out tangent (s). */
  TO: number;
  /** Time of the maximum (s) = AT + TTP. */
  peakTime: number;
};

export type RelativeParameters = { [K in ParameterName as `r${K}`]: number | null };

export interface ParameterOptions {
  /** Grid step (s, default 0.01). */
  stepS?: number;
  /** The scan may end once the enhancement is below this fraction of its peak (default 1e-3). */
  cutoff?: number;
  /** The scan gives up (throws) after this long from t0 (s, default 1e5). */
  maxDurationS?: number;
}

const GOLDEN = (Math.sqrt(5) - 1) / 2;

/** Argmax of f on [a, b] by golden-section search (f unimodal there). */
function goldenMax(f: (t: number) => number, a: number, b: number): number {
  let c = b - GOLDEN * (b - a), d = a + GOLDEN * (b - a), fc = f(c), fd = f(d);
  for (let i = 0; i < 80 && b - a > 1e-12 * Math.max(1, Math.abs(a)); i++) {
    if (fc >= fd) { b = d; d = c; fd = fc; c = b - GOLDEN * (b - a); fc = f(c); }
    else { a = c; c = d; fc = fd; d = a + GOLDEN * (b - a); fd = f(d); }
  }
  return (a + b) / 2;
}

/** ∫ f over [a, b] by Simpson's rule with steps of at most h. */
function simpson(f: (t: number) => number, a: number, b: number, h: number): number {
  if (!(b > a)) return 0;
  const n = 2 * Math.max(1, Math.ceil((b - a) / h / 2)), dt = (b - a) / n;
  let s = f(a) + f(b);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * f(a + i * dt);
  return (s * dt) / 3;
}

function option(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v <= 0) throw new RangeError(`bolusParameters: option ${name} must be a finite number > 0 (got ${v})`);
  return v;
}

/** The ten bolus parameters (plus TI, TO, peakTime) of a fitted bolus; definitions in the file header. */
export function bolusParameters<M extends BolusModelName>(model: M, params: BolusParamsOf[M], opts: ParameterOptions = {}): PerfusionParameters {
  checkBolus(model, params, 'bolusParameters');
  if (model === 'gammaVariate' && (params as GammaVariateParams).alpha < 1) {
    throw new RangeError(`bolusParameters: gammaVariate alpha must be >= 1, the wash-in slope is infinite at t0 for alpha < 1 (got ${(params as GammaVariateParams).alpha})`);
  }
  const dt = option(opts.stepS, 0.01, 'stepS'), cutoff = option(opts.cutoff, 1e-3, 'cutoff'), maxDurationS = option(opts.maxDurationS, 1e5, 'maxDurationS');
  const t0 = params.t0;
  const amplitude = model === 'lognormal' ? (params as BolusParamsOf['lognormal']).area : (params as GammaVariateParams).k;
  if (!(amplitude > 0)) throw new RangeError(`bolusParameters: the ${model} bolus has no enhancement (${model === 'lognormal' ? 'area' : 'k'} = ${amplitude})`);
  const e = (t: number) => enhancementAt(model, params, t), slope = (t: number) => slopeAt(model, params, t);

  // Scan from t0: maximum of e, extreme slopes, ∫ e and ∫ (t − t0) e (trapezoid). Steps are stepS,
  // growing as 1e-3 of the elapsed time in long tails.
  const xs = [0];
  let iPeak = 0, ePeak = 0, iUp = 0, sUp = slope(t0), iDown = 0, sDown = Infinity, area = 0, moment = 0, tailArea = 0, tailMoment = 0;
  let prev = 0;
  for (let i = 1; ; i++) {
    const xPrev = xs[i - 1], x = xPrev + Math.max(dt, 1e-3 * xPrev);
    if (x > maxDurationS) throw new RangeError(`bolusParameters: the ${model} enhancement does not decay within ${maxDurationS} s of t0`);
    xs.push(x);
    const v = e(t0 + x), s = slope(t0 + x), h = x - xPrev;
    area += 0.5 * h * (prev + v);
    moment += 0.5 * h * (xPrev * prev + x * v);
    prev = v;
    if (v > ePeak) { ePeak = v; iPeak = i; }
    if (s > sUp) { sUp = s; iUp = i; }
    if (s < sDown) { sDown = s; iDown = i; }
    if (i === iPeak || v >= cutoff * ePeak) continue;
    // Past the peak and below the cutoff: stop once an exponential tail e(T)·exp(−λ(t − T)),
    // λ = −e'(T)/e(T), would add less than 1e-7 to both integrals.
    const lambda = -s / v;
    if (v === 0) { tailArea = tailMoment = 0; break; } // underflow: nothing left
    if (!(lambda > 0)) continue;
    tailArea = v / lambda;
    tailMoment = (v * x) / lambda + v / (lambda * lambda);
    if (tailArea < 1e-7 * area && tailMoment < 1e-7 * moment) break;
  }
  area += tailArea;
  moment += tailMoment;

  const near = (j: number) => [t0 + xs[Math.max(0, j - 1)], t0 + xs[Math.min(xs.length - 1, j + 1)]] as const;
  const peakTime = goldenMax(e, ...near(iPeak));
  const tUp = iUp === 0 ? t0 : goldenMax(slope, ...near(iUp)); // iUp 0: a gamma variate with α = 1 is steepest at t0
  const tDown = goldenMax((t) => -slope(t), ...near(iDown));
  const PE = e(peakTime), WiR = slope(tUp), WoR = slope(tDown);
  const TI = tUp - e(tUp) / WiR, TO = tDown - e(tDown) / WoR;
  return {
    AT: t0, PE, TTP: peakTime - t0, RT: peakTime - TI, WiR,
    WiAUC: simpson(e, Math.max(TI, t0), peakTime, dt),
    MTT: moment / area, FT: TO - peakTime, WoR, AUC: area,
    TI, TO, peakTime,
  };
}

/** Throws unless every one of the ten parameters is a number. */
function checkParameters(p: PerfusionParameters, what: string): void {
  if (p === null || typeof p !== 'object') throw new TypeError(`relativeParameters: ${what} must be a parameters object`);
  for (const name of PARAMETER_NAMES) {
    if (typeof p[name] !== 'number') throw new RangeError(`relativeParameters: ${what}.${name} must be a number (got ${String(p[name])})`);
  }
}

/** Region / reference for every parameter (rAT, rPE, ...); null where the ratio is undefined (zero or non-finite). */
export function relativeParameters(region: PerfusionParameters, reference: PerfusionParameters): RelativeParameters {
  checkParameters(region, 'region');
  checkParameters(reference, 'reference');
  const out = {} as Record<string, number | null>;
  for (const name of PARAMETER_NAMES) {
    const num = region[name], den = reference[name], r = num / den;
    out[`r${name}`] = den !== 0 && Number.isFinite(den) && Number.isFinite(num) && Number.isFinite(r) ? r : null;
  }
  return out as RelativeParameters;
}
