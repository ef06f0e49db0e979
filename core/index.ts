// The sonomics module's public API (decision support, not for diagnosis).
export { createFrame, type Frame } from './frame.js';
export { applyLayout, validateLayout, type Layout, type Pane, type PaneName, type LaidOutFrame } from './layout.js';
export { createLesionMask, maskStats, type LesionMask } from './mask.js';
export { LesionTracker, type TrackResult, type TrackingState, type TrackerOptions } from './tracking.js';
export { computeRings, regionContours, ringName, DEFAULT_RING_RADII_MM, type RingSet, type RegionContours } from './regions.js';
export { frameFeatures, featureKey, regionNames, type FeatureSet, type FrameFeatures } from './features.js';
export {
  extractFeatures, extractRegions, extractRegionsAsync, resolveRadiomicsSettings, RadiomicsError, FEATURE_CLASSES, FEATURE_NAMES,
  ALL_FEATURE_NAMES, DEPRECATED_FEATURES, type RadiomicsSettings, type FeatureVector, type RegionFeatures, type FeatureClass,
} from './radiomics.js';
export { loadParams, parseParams, ParamsError, selectFeatureNames } from './params.js';
export { parseModelCard, scoreFeatures, RiskAggregator, DECISION_SUPPORT_NOTICE, type ModelCard, type RiskScore, type FrameScore } from './risk.js';
export { loadModelCard } from './models.js';
export { Pipeline, STAGES, type PipelineOptions, type DisplayFrame, type ScoreUpdate, type PipelineStats } from './pipeline.js';
export { loadConfig, resolveConfig, ConfigError, type SonomicsConfig } from './config.js';
export { LatestSlot } from './slot.js';
export { LatencyRecorder } from './latency.js';
export { PhantomScanner, lognormalBolus, type PhantomOptions, type PhantomTruth } from '../device/phantom.js';
export { OverlayServer, type OverlayServerOptions } from '../web-overlay/server.js';
