// The sonomics module's public API (decision support, not for diagnosis).
export { createFrame, type Frame, type FrameExtras } from './frame.js';
export { FrameStamper, DEFAULT_DUPLICATE_THRESHOLD, type ArrivalOptions, type ArrivalStats, type DuplicateOptions } from './arrival.js';
export { resolveProfile, layoutFromRegions, renderProfilePng, renderSector, ProfileError, type LayoutProfile } from './profile.js';
export { regionSpacingMm, type UltrasoundRegion } from './calibration.js';
export { applyLayout, validateLayout, type Layout, type Pane, type PaneName, type LaidOutFrame } from './layout.js';
export { createLesionMask, maskStats, type LesionMask } from './mask.js';
export { LesionTracker, type TrackResult, type TrackingState, type TrackerOptions } from './tracking.js';
export { computeRings, planRings, regionContours, ringName, DEFAULT_RING_RADII_MM, type RingSet, type RingPlan, type RegionContours } from './regions.js';
export { frameFeatures, featureKey, regionNames, type FeatureSet, type FrameFeatures } from './features.js';
export {
  extractFeatures, extractRegions, extractRegionsAsync, resolveRadiomicsSettings, RadiomicsError, FEATURE_CLASSES, FEATURE_NAMES,
  ALL_FEATURE_NAMES, DEPRECATED_FEATURES, type RadiomicsSettings, type FeatureVector, type RegionFeatures, type FeatureClass,
} from './radiomics.js';
export { loadParams, parseParams, ParamsError, selectFeatureNames } from './params.js';
export {
  parseModelCard, sealCard, cardHash, termNames, ModelCardError, CARD_FORMAT, DECISION_SUPPORT_NOTICE,
  type ModelCard, type ClinicalVariable, type DeepSpec,
} from './modelcard.js';
export { RiskModel, RiskAggregator, codeClinical, ClinicalInputError, type RiskScore, type FrameScore, type ClinicalValue, type ClinicalValues, type Driver } from './risk.js';
export { loadModelCard, loadRiskModel, resolveModelPath } from './models.js';
export {
  PerfusionAnalyzer, analyseCurves, detectBolus, fitBolus, fitQuality, bolusParameters, relativeParameters, phaseWindows, linearisationLut,
  perfusionCsv, perfusionJson, PARAMETER_NAMES, PHASES,
  type PerfusionOptions, type PerfusionUpdate, type PerfusionAnalysis, type PerfusionState, type PerfusionParameters, type BolusModelName, type Linearisation,
} from './perfusion/index.js';
export { Pipeline, STAGES, type PipelineOptions, type DisplayFrame, type ScoreUpdate, type PipelineStats } from './pipeline.js';
export { loadConfig, resolveConfig, layoutProfile, ConfigError, type SonomicsConfig } from './config.js';
export { LatestSlot } from './slot.js';
export { LatencyRecorder } from './latency.js';
export { PhantomScanner, lognormalBolus, type PhantomOptions, type PhantomTruth } from '../device/phantom.js';
export type { FrameSource, SourceStats, SignalState } from '../device/source.js';
export { FfmpegSource, FfmpegError, probeMedia, type FfmpegSourceOptions, type MediaInfo } from '../device/ffmpeg.js';
export { DicomSource, DicomFile, DicomError, type DicomInfo, type DicomSourceOptions } from '../device/dicom.js';
export { SessionRecorder, ReplaySource, openRecording, exportRecording, RecordingError, type Recording, type RecordingHeader } from '../device/recording.js';
export { openInput, sourceFromConfig, layoutFor, inputKind } from '../device/open.js';
export { OverlayServer, type OverlayServerOptions } from '../web-overlay/server.js';
