// Feature naming and the features stage. Names follow PyRadiomics (`firstorder_Mean`, ...) and
// are qualified by pane and region: `bmode.lesion.firstorder_Mean`, `contrast.ring5mm.firstorder_Entropy`.
// Issue #3 adds the texture and shape classes; the naming scheme stays.
import type { LaidOutFrame, PaneName } from './layout.js';
import { native, type FirstOrderSettings } from './native.js';
import { ringName, type RingSet } from './regions.js';

export const FIRST_ORDER_FEATURES: readonly string[] = native.firstOrderFeatureNames;

export type FeatureSet = Record<string, number>;

export function featureKey(pane: PaneName, region: string, feature: string): string {
  return `${pane}.${region}.${feature}`;
}

export function regionNames(radiiMm: readonly number[]): string[] {
  return ['lesion', ...radiiMm.map(ringName)];
}

/** First-order features of the lesion and every ring, in both panes: one native call. */
export async function firstOrderFeatures(lf: LaidOutFrame, rings: RingSet, settings: Pick<FirstOrderSettings, 'binWidth' | 'voxelArrayShift'> = {}): Promise<FeatureSet> {
  const { bmode, contrast } = lf.layout.panes;
  const s: FirstOrderSettings = { binWidth: settings.binWidth ?? 25, voxelArrayShift: settings.voxelArrayShift ?? 0, spacingX: bmode.spacingX, spacingY: bmode.spacingY };
  const panes = [bmode, contrast];
  const values = await native.firstOrderAsync(lf.frame.data, lf.frame.width, lf.frame.height, panes.map((p) => p.rect), rings.codes, rings.radiiMm.length, s);
  const regions = regionNames(rings.radiiMm);
  const names = FIRST_ORDER_FEATURES;
  const out: FeatureSet = {};
  let i = 0;
  for (const p of panes)
    for (const r of regions)
      for (const n of names) out[featureKey(p.name, r, n)] = values[i++];
  return out;
}
