// CEUS time-intensity curve (TIC) analysis: bolus models, bolus detection, model fitting, bolus
// parameters and enhancement phases (pure functions), and the live analysis built on them.
export {
  analyticBolus, evaluateBolus, evaluateBolusCurve, lnGamma, BOLUS_MODELS,
  type AnalyticBolus, type BolusModelName, type BolusParams, type BolusParamsOf, type GammaVariateParams, type LognormalParams,
} from './models.js';
export {
  detectBolus, type BolusDetection, type DetectOptions, type NoBolusDetection, type RisingDetection, type TicSamples, type WashInDetection,
} from './arrival.js';
export { binSamples, fitBolus, fitQuality, GOOD_FIT_R2, type BolusFit, type FitOptions } from './fit.js';
export {
  bolusParameters, relativeParameters, PARAMETER_NAMES, PARAMETER_UNITS,
  type ParameterName, type ParameterOptions, type PerfusionParameters, type RelativeParameters,
} from './parameters.js';
export { phaseWindows, PHASES, type Phase, type PhaseWindows } from './phases.js';
// The live side: curves, the session's analysis, the analyzer the pipeline owns, exports.
export { CurveStore, linearisationLut, measureRegions, referenceAt, type Linearisation, type ReferenceRegion, type RegionSample } from './tic.js';
export { analyseCurves, type CurvesInput, type FitSummary, type PerfusionAnalysis, type PerfusionState, type RegionAnalysis } from './analysis.js';
export { PerfusionAnalyzer, sessionMs, type PerfusionCounts, type PerfusionOptions, type PerfusionUpdate } from './analyzer.js';
export { perfusionCsv, perfusionJson } from './export.js';
