// Feature naming and the features stage. Names follow PyRadiomics (`firstorder_Mean`,
// `glcm_JointEnergy`, ...) and are qualified by pane and region: `bmode.lesion.firstorder_Mean`,
// `contrast.ring5mm.glszm_ZoneEntropy`. All regions of a frame go to the engine in one call.
import type { LaidOutFrame, PaneName } from './layout.js';
import { extractRegions, extractRegionsAsync, FEATURE_NAMES, type RadiomicsSettings, type RegionFeatures } from './radiomics.js';
import type { RingSet } from './regions.js';

export type FeatureSet = Record<string, number>;

export function featureKey(pane: PaneName, region: string, feature: string): string {
  return `${pane}.${region}.${feature}`;
}

/** Region names of a ring set, in the engine's region order (a ring may answer to several names). */
export function regionNames(rings: Pick<RingSet, 'names'>): string[][] {
  return [['lesion'], ...rings.names.map((n) => [...n])];
}

/** Engine settings the pipeline passes through (spacing comes from the pane). */
export type FrameFeatureSettings = Omit<RadiomicsSettings, 'spacingX' | 'spacingY'>;

export interface FrameFeatures {
  features: FeatureSet;
  /** Regions refused by PyRadiomics' mask checks (e.g. a ring clipped to nothing), with the reason; their features are NaN. */
  regionErrors: Record<string, string>;
}

/**
 * The 102 default PyRadiomics features of the lesion and every ring, in both panes: one native
 * call, off the main thread.
 */
export async function frameFeatures(lf: LaidOutFrame, rings: RingSet, settings: FrameFeatureSettings = {}): Promise<FrameFeatures> {
  const { bmode, contrast } = lf.layout.panes;
  const results = await extractRegionsAsync(lf.frame.data, lf.frame.width, lf.frame.height, [bmode.rect, contrast.rect], rings.codes,
    rings.radiiMm.length, { ...settings, spacingX: bmode.spacingX, spacingY: bmode.spacingY });
  return nameFeatures(lf, rings, results);
}

/**
 * As frameFeatures, on the calling thread: for batch work that must see every frame in order
 * (`sonomics track --model`), where blocking is the back-pressure on the source.
 */
export function frameFeaturesSync(lf: LaidOutFrame, rings: RingSet, settings: FrameFeatureSettings = {}): FrameFeatures {
  const { bmode, contrast } = lf.layout.panes;
  const results = extractRegions(lf.frame.data, lf.frame.width, lf.frame.height, [bmode.rect, contrast.rect], rings.codes,
    rings.radiiMm.length, { ...settings, spacingX: bmode.spacingX, spacingY: bmode.spacingY });
  return nameFeatures(lf, rings, results);
}

function nameFeatures(lf: LaidOutFrame, rings: RingSet, results: RegionFeatures[]): FrameFeatures {
  const regions = regionNames(rings);
  const features: FeatureSet = {};
  const regionErrors: Record<string, string> = {};
  let i = 0;
  for (const p of [lf.layout.panes.bmode, lf.layout.panes.contrast])
    for (const names of regions) {
      const res = results[i++];
      for (const r of names) {
        if (res.error) regionErrors[`${p.name}.${r}`] = res.error;
        for (const n of FEATURE_NAMES) if (res.features === null || n in res.features) features[featureKey(p.name, r, n)] = res.features?.[n] ?? NaN;
      }
    }
  return { features, regionErrors };
}
