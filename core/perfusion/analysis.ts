// The analysis of a session's time-intensity curves: for every region, bolus detection, a
// lognormal and a gamma-variate fit with their goodness of fit, the bolus parameters of the
// chosen model, each relative to the reference region, and the phases of the lesion's curve.
// A pure function of the curves: it runs on the calling thread (the `perfusion` command, tests)
// or in the perfusion worker (live), and it never presents a fit it cannot stand behind: a
// region without a clear wash-in, with a saturated pane or a poor fit gets a state and a message,
// not parameters.
import { detectBolus } from './arrival.js';
import { fitBolus, fitQuality } from './fit.js';
import { BOLUS_MODELS, evaluateBolusCurve, type BolusModelName } from './models.js';
import { bolusParameters, relativeParameters, type PerfusionParameters } from './parameters.js';
import { phaseWindows, type PhaseWindows } from './phases.js';

/** Where a region's analysis stands; only 'fitted' carries parameters. */
export type PerfusionState = 'too-few-frames' | 'no-wash-in' | 'rising' | 'saturated' | 'poor-fit' | 'fitted';

export interface CurvesInput {
  /** Sample times (s since the session's origin), non-decreasing. */
  t: Float64Array;
  /** Per region: its values at those times (NaN where the region had no pixel). */
  regions: Array<{ name: string; y: Float64Array }>;
  /** Per sample: the fraction of lesion pixels at the display's maximum. */
  lesionSaturation: Float64Array;
  /** The name of the reference region among `regions` (null: none placed). */
  reference: string | null;
  /** The model whose parameters are reported (both are fitted and their fit quality shown). */
  model: BolusModelName;
  /** A frame is saturated when more than this fraction of its lesion pixels is at the maximum. */
  saturationLimit: number;
  /** Points of each fitted curve returned for drawing (default 120). */
  curvePoints?: number;
}

export interface FitSummary {
  params: Record<string, number>;
  rSquared: number;
  rmse: number;
  nrmse: number;
  quality: 'good' | 'poor';
  iterations: number;
}

export interface RegionAnalysis {
  name: string;
  /** Samples with a value. */
  n: number;
  state: PerfusionState;
  message: string;
  arrivalS: number | null;
  fits: Partial<Record<BolusModelName, FitSummary>>;
  /** The chosen model's parameters (state 'fitted' only). */
  parameters: PerfusionParameters | null;
  /** Each parameter relative to the reference region's (r<Name>; null where undefined). */
  relative: Record<string, number | null> | null;
}

export interface PerfusionAnalysis {
  /** The lesion's state and message: what the sonographer is told. */
  state: PerfusionState;
  message: string;
  model: BolusModelName;
  n: number;
  durationS: number;
  /** Frames over the saturation limit. */
  saturatedFrames: number;
  regions: RegionAnalysis[];
  /** Phases of the lesion's fitted curve (s on the session's time axis). */
  phases: PhaseWindows | null;
  /** The chosen model's fitted curves, sampled for drawing (fitted regions only). */
  curves: { t: number[]; series: Record<string, number[]> } | null;
}

const MESSAGES: Record<Exclude<PerfusionState, 'fitted'>, string> = {
  'too-few-frames': 'too few tracked frames for a time-intensity curve yet',
  'no-wash-in': 'no wash-in detected',
  rising: 'wash-in under way: no peak yet',
  saturated: 'the contrast pane is saturated in the lesion: lower the contrast gain; no fit',
  'poor-fit': 'the bolus models do not fit this curve: no parameters',
};

/** Analyses every region of a session's curves (see the file header). */
export function analyseCurves(input: CurvesInput): PerfusionAnalysis {
  const { t } = input;
  for (const r of input.regions)
    if (r.y.length !== t.length) throw new RangeError(`perfusion: region ${r.name} has ${r.y.length} values for ${t.length} times`);
  if (input.lesionSaturation.length !== t.length) throw new RangeError('perfusion: lesionSaturation must have one value per time');
  let saturatedFrames = 0;
  for (const s of input.lesionSaturation) if (s > input.saturationLimit) saturatedFrames++;
  // A few saturated frames (a flash) are tolerated; a saturated peak is not measurable.
  const saturated = saturatedFrames >= Math.max(5, 0.02 * t.length);
  const regions = input.regions.map((r) => analyseRegion(r.name, t, r.y, input.model, saturated && r.name === 'lesion'));
  const ref = input.reference ? regions.find((r) => r.name === input.reference) : undefined;
  if (ref?.parameters)
    for (const r of regions) if (r !== ref && r.parameters) r.relative = relativeParameters(r.parameters, ref.parameters);
  const lesion = regions.find((r) => r.name === 'lesion');
  const fitOf = (r: RegionAnalysis) => r.fits[input.model];
  let phases: PhaseWindows | null = null;
  if (lesion?.parameters) phases = phaseWindows(input.model, fitOf(lesion)!.params as never, lesion.parameters);
  const fitted = regions.filter((r) => r.parameters);
  let curves: PerfusionAnalysis['curves'] = null;
  if (fitted.length && t.length) {
    const m = input.curvePoints ?? 120;
    const t0 = t[0], t1 = t[t.length - 1];
    const ct = Float64Array.from({ length: m }, (_, i) => t0 + ((t1 - t0) * i) / (m - 1));
    curves = { t: Array.from(ct), series: Object.fromEntries(fitted.map((r) => [r.name, Array.from(evaluateBolusCurve(input.model, fitOf(r)!.params as never, ct))])) };
  }
  return {
    state: lesion?.state ?? 'too-few-frames', message: lesion?.message ?? MESSAGES['too-few-frames'], model: input.model,
    n: t.length, durationS: t.length ? t[t.length - 1] - t[0] : 0, saturatedFrames, regions, phases, curves,
  };
}

function analyseRegion(name: string, tAll: Float64Array, yAll: Float64Array, model: BolusModelName, saturated: boolean): RegionAnalysis {
  // Only samples where the region had pixels.
  let n = 0;
  for (const v of yAll) if (Number.isFinite(v)) n++;
  const t = new Float64Array(n), y = new Float64Array(n);
  for (let i = 0, j = 0; i < yAll.length; i++) if (Number.isFinite(yAll[i])) { t[j] = tAll[i]; y[j++] = yAll[i]; }
  const base = { name, n, arrivalS: null, fits: {}, parameters: null, relative: null };
  if (saturated) return { ...base, state: 'saturated', message: MESSAGES.saturated };
  const bolus = detectBolus({ t, y });
  if (bolus.state !== 'wash-in') {
    const arrivalS = bolus.state === 'rising' ? bolus.arrivalS : null;
    return { ...base, arrivalS, state: bolus.state, message: bolus.message };
  }
  const fits: Partial<Record<BolusModelName, FitSummary>> = {};
  for (const m of BOLUS_MODELS) {
    try {
      const f = fitBolus({ t, y }, m, { arrival: bolus });
      fits[m] = { params: { ...f.params } as Record<string, number>, rSquared: f.rSquared, rmse: f.rmse, nrmse: f.nrmse, quality: fitQuality(f), iterations: f.iterations };
    } catch {
      // A model that cannot be fitted to this curve is simply absent: the other may still stand.
    }
  }
  const chosen = fits[model];
  if (!chosen || chosen.quality !== 'good') {
    const why = chosen ? ` (${model} R² ${chosen.rSquared.toFixed(3)})` : '';
    return { ...base, arrivalS: bolus.arrivalS, fits, state: 'poor-fit', message: MESSAGES['poor-fit'] + why };
  }
  let parameters: PerfusionParameters;
  try {
    parameters = bolusParameters(model, chosen.params as never);
  } catch (e) {
    // A fitted curve whose parameters are undefined (e.g. it never decays) is no usable fit.
    return { ...base, arrivalS: bolus.arrivalS, fits, state: 'poor-fit', message: `${MESSAGES['poor-fit']} (${(e as Error).message})` };
  }
  return { ...base, arrivalS: bolus.arrivalS, fits, parameters, state: 'fitted', message: `${model} fit, R² ${chosen.rSquared.toFixed(3)}` };
}
