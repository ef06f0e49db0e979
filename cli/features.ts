// `sonomics features`: PyRadiomics' 2D features of one image and mask (and optionally the
// peritumoral rings around the ROI) as one flat JSON object, keyed by PyRadiomics' names so it
// can be diffed against PyRadiomics' output. Options are parsed and checked in main.ts.
import { readGrayImage, type GrayImage } from '../core/imageio.js';
import { native } from '../core/native.js';
import { classesOf, loadParams, selectFeatureNames } from '../core/params.js';
import { extractRegions, RadiomicsError, type FeatureVector, type RadiomicsSettings } from '../core/radiomics.js';
import { ringName } from '../core/regions.js';

export interface FeaturesOptions {
  image: string;
  mask: string;
  /** Fixed bin width (exclusive with binCount and params). */
  binWidth?: number;
  /** Fixed bin count (exclusive with binWidth and params). */
  binCount?: number;
  /** PyRadiomics parameter file: settings and feature selection. */
  params?: string;
  /** Pixel spacing in mm (x = columns, y = rows). */
  spacingX: number;
  spacingY: number;
  /** Ring radii in mm, strictly increasing; empty for none. */
  ringsMm: readonly number[];
  /** Follow IBSI where PyRadiomics deviates. */
  ibsi: boolean;
  /** Add the deprecated features of classes selected as a whole. */
  all: boolean;
}

/** Feature values by PyRadiomics name; NaN and infinities become null in the JSON. */
export type FeatureValues = Record<string, number>;
/** A ring: its features, or why PyRadiomics' mask checks refused it. */
export type RingOutput = FeatureValues | { error: string };
/** The lesion's features at the top level, plus one key per ring ("ring3mm", ...). */
export type FeaturesOutput = Record<string, number | RingOutput>;

/** JSON.stringify replacer: NaN and +-Infinity are written as null. */
export function nonFiniteToNull(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
}

/** The output as the command prints it: one JSON object, two-space indented. */
export function formatFeatures(out: FeaturesOutput): string {
  return JSON.stringify(out, nonFiniteToNull, 2);
}

function pick(features: FeatureVector, names: readonly string[]): FeatureValues {
  const out: FeatureValues = {};
  for (const n of names) {
    const v = features[n];
    if (typeof v !== 'number') throw new RadiomicsError(`the engine returned no value for ${n}`);
    out[n] = v;
  }
  return out;
}

async function readPair(o: FeaturesOptions): Promise<[GrayImage, GrayImage]> {
  const [image, mask] = await Promise.all([readGrayImage(o.image), readGrayImage(o.mask)]);
  if (image.width !== mask.width || image.height !== mask.height) {
    throw new Error(`image ${o.image} is ${image.width}x${image.height} but mask ${o.mask} is ${mask.width}x${mask.height} (width x height); they must match`);
  }
  if (!mask.data.some((v) => v !== 0)) throw new Error(`mask ${o.mask} is empty: no non-zero pixel, so there is no ROI`);
  return [image, mask];
}

/** Computes the command's output. Throws ParamsError for a bad parameter file, Error otherwise. */
export async function computeFeatures(o: FeaturesOptions): Promise<FeaturesOutput> {
  const params = o.params === undefined ? null : loadParams(o.params);
  const names = selectFeatureNames(params?.selection ?? null, { includeDeprecated: o.all });
  const settings: RadiomicsSettings = {
    ...params?.settings,
    ...(o.binWidth !== undefined && { binWidth: o.binWidth }),
    ...(o.binCount !== undefined && { binCount: o.binCount }),
    spacingX: o.spacingX,
    spacingY: o.spacingY,
    ibsi: o.ibsi,
    classes: classesOf(names),
  };
  const [image, mask] = await readPair(o);
  const { width, height } = image;
  const codes = new Uint8Array(width * height);
  native.ringCodes(mask.data, width, height, { spacingX: o.spacingX, spacingY: o.spacingY, radiiMm: [...o.ringsMm] }, codes, null);
  const regions = extractRegions(image.data, width, height, [{ x: 0, y: 0, width, height }], codes, o.ringsMm.length, settings);
  if (regions.length !== 1 + o.ringsMm.length) throw new RadiomicsError(`the engine returned ${regions.length} regions for 1 lesion and ${o.ringsMm.length} rings`);
  const [lesion, ...rings] = regions;
  if (lesion.error !== null) throw new RadiomicsError(`the ROI of mask ${o.mask} fails PyRadiomics' checks: ${lesion.error}`);
  const out: FeaturesOutput = pick(lesion.features!, names);
  o.ringsMm.forEach((mm, k) => {
    const r = rings[k];
    out[ringName(mm)] = r.error !== null ? { error: r.error } : pick(r.features!, names);
  });
  return out;
}
