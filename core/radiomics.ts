// The radiomics engine's typed face. All seven PyRadiomics 2D feature classes are computed in
// C++ (native/src/radiomics/*.cc, one file per class as in PyRadiomics) for every region of a
// frame in one call; this module validates settings (errors name the key), names the features
// and shapes the results. Feature names are PyRadiomics' own: `firstorder_Kurtosis`,
// `glcm_JointEnergy`, `shape2D_Perimeter`, ...
import { native, type PixelRect } from './native.js';

export const FEATURE_CLASSES = ['firstorder', 'shape2D', 'glcm', 'glrlm', 'glszm', 'gldm', 'ngtdm'] as const;
export type FeatureClass = (typeof FEATURE_CLASSES)[number];

/** Settings, with PyRadiomics' names and defaults. */
export interface RadiomicsSettings {
  /** Fixed bin width, PyRadiomics' edge convention (edges at multiples of binWidth). Default 25. */
  binWidth?: number;
  /** Fixed bin count (numpy.histogram edges over the ROI range). Overrides binWidth when set. */
  binCount?: number | null;
  /** GLCM/GLDM/NGTDM neighbour distances (infinity norm). Default [1]. */
  distances?: number[];
  /** Count co-occurrences in both directions per angle. Default true. */
  symmetricalGLCM?: boolean;
  /** GLDM dependence cutoff: |i - j| <= gldm_a. Default 0. */
  gldm_a?: number;
  /** Added to intensities for Energy, TotalEnergy and RootMeanSquared. Default 0. */
  voxelArrayShift?: number;
  /** Minimum number of ROI bounding-box dimensions with size > 1 (1 or 2). Default 2. */
  minimumROIDimensions?: number;
  /** Minimum number of ROI pixels; null/undefined for no minimum (PyRadiomics' default). */
  minimumROISize?: number | null;
  /** Pixel spacing in mm (x = columns, y = rows). Default 1. */
  spacingX?: number;
  spacingY?: number;
  /** Follow IBSI where PyRadiomics deviates (docs/radiomics.md lists the differences). Default false. */
  ibsi?: boolean;
  /** Classes to compute. Default all seven. */
  classes?: readonly FeatureClass[];
  /** Threads one call may use for its regions (1 or 2; a single region always uses one). Default 2. */
  threads?: number;
}

export interface ResolvedRadiomicsSettings {
  binWidth: number;
  binCount: number;
  distances: number[];
  symmetricalGLCM: boolean;
  gldm_a: number;
  voxelArrayShift: number;
  minimumROIDimensions: number;
  minimumROISize: number;
  spacingX: number;
  spacingY: number;
  ibsi: boolean;
  classes: FeatureClass[];
  threads: number;
}

export class RadiomicsError extends Error {
  constructor(message: string, readonly key?: string) {
    super(message);
    this.name = 'RadiomicsError';
  }
}

/** Every feature the engine computes, in output order (PyRadiomics' default set plus deprecated ones). */
export const ALL_FEATURE_NAMES: readonly string[] = native.radiomicsFeatureNames;
/** Features PyRadiomics marks deprecated (not computed by default): firstorder_StandardDeviation, shape2D_SphericalDisproportion. */
export const DEPRECATED_FEATURES: ReadonlySet<string> = new Set(native.radiomicsDeprecatedFeatures);
/** The 102 features PyRadiomics computes by default in 2D, in output order. */
export const FEATURE_NAMES: readonly string[] = ALL_FEATURE_NAMES.filter((n) => !DEPRECATED_FEATURES.has(n));

export function featureClassOf(name: string): FeatureClass {
  const c = name.slice(0, name.indexOf('_')) as FeatureClass;
  if (!FEATURE_CLASSES.includes(c)) throw new RadiomicsError(`unknown feature "${name}"`);
  return c;
}

const KNOWN_KEYS = new Set(['binWidth', 'binCount', 'distances', 'symmetricalGLCM', 'gldm_a', 'voxelArrayShift', 'minimumROIDimensions',
  'minimumROISize', 'spacingX', 'spacingY', 'ibsi', 'classes', 'threads']);

function finite(key: string, v: unknown, test: (n: number) => boolean, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !test(v)) throw new RadiomicsError(`setting ${key} must be ${what} (got ${JSON.stringify(v)})`, key);
  return v;
}

/** Fills defaults and checks every setting; a bad one throws a RadiomicsError naming the key. */
export function resolveRadiomicsSettings(s: RadiomicsSettings = {}): ResolvedRadiomicsSettings {
  if (s === null || typeof s !== 'object') throw new RadiomicsError('radiomics settings must be an object');
  for (const k of Object.keys(s)) if (!KNOWN_KEYS.has(k)) throw new RadiomicsError(`unknown radiomics setting "${k}"`, k);
  const binWidth = s.binWidth === undefined ? 25 : finite('binWidth', s.binWidth, (n) => n > 0, 'a finite number > 0');
  const binCount = s.binCount === undefined || s.binCount === null ? 0
    : finite('binCount', s.binCount, (n) => Number.isInteger(n) && n >= 1 && n <= 65536, 'an integer in [1, 65536]');
  let distances = [1];
  if (s.distances !== undefined) {
    if (!Array.isArray(s.distances) || s.distances.length === 0 || s.distances.length > 16)
      throw new RadiomicsError(`setting distances must be a non-empty array of up to 16 integers >= 1 (got ${JSON.stringify(s.distances)})`, 'distances');
    distances = s.distances.map((d, i) => finite(`distances[${i}]`, d, (n) => Number.isInteger(n) && n >= 1 && n <= 64, 'an integer in [1, 64]'));
  }
  const bool = (key: keyof RadiomicsSettings, dflt: boolean): boolean => {
    const v = s[key];
    if (v === undefined) return dflt;
    if (typeof v !== 'boolean') throw new RadiomicsError(`setting ${key} must be true or false (got ${JSON.stringify(v)})`, key);
    return v;
  };
  if (s.classes !== undefined && (!Array.isArray(s.classes) || s.classes.length === 0))
    throw new RadiomicsError(`setting classes must be a non-empty array of feature classes (got ${JSON.stringify(s.classes)})`, 'classes');
  const classes = s.classes === undefined ? [...FEATURE_CLASSES] : [...new Set(s.classes)];
  for (const c of classes) if (!FEATURE_CLASSES.includes(c)) throw new RadiomicsError(`setting classes: unknown feature class "${String(c)}" (known: ${FEATURE_CLASSES.join(', ')})`, 'classes');
  return {
    binWidth,
    binCount,
    distances,
    symmetricalGLCM: bool('symmetricalGLCM', true),
    gldm_a: s.gldm_a === undefined ? 0 : finite('gldm_a', s.gldm_a, (n) => n >= 0, 'a finite number >= 0'),
    voxelArrayShift: s.voxelArrayShift === undefined ? 0 : finite('voxelArrayShift', s.voxelArrayShift, () => true, 'a finite number'),
    minimumROIDimensions: s.minimumROIDimensions === undefined ? 2
      : finite('minimumROIDimensions', s.minimumROIDimensions, (n) => n === 1 || n === 2, '1 or 2 (a 2D engine)'),
    minimumROISize: s.minimumROISize === undefined || s.minimumROISize === null ? 0
      : finite('minimumROISize', s.minimumROISize, (n) => Number.isInteger(n) && n >= 1, 'an integer >= 1'),
    spacingX: s.spacingX === undefined ? 1 : finite('spacingX', s.spacingX, (n) => n > 0, 'a finite number > 0 (mm)'),
    spacingY: s.spacingY === undefined ? 1 : finite('spacingY', s.spacingY, (n) => n > 0, 'a finite number > 0 (mm)'),
    ibsi: bool('ibsi', false),
    classes,
    threads: s.threads === undefined ? 2 : finite('threads', s.threads, (n) => n === 1 || n === 2, '1 or 2'),
  };
}

function nativeSettings(r: ResolvedRadiomicsSettings) {
  return { ...r, classes: r.classes.map((c) => FEATURE_CLASSES.indexOf(c)) };
}

export type FeatureVector = Record<string, number>;

/** One region's result: features (NaN where PyRadiomics gives NaN), or why the region was refused. */
export interface RegionFeatures {
  features: FeatureVector | null;
  /** Why the region has no features (e.g. "mask only contains 1 segmented pixel"), else null. */
  error: string | null;
}

function toVector(values: Float64Array, offset: number, classes: readonly FeatureClass[]): FeatureVector {
  const out: FeatureVector = {};
  const all = classes.length === FEATURE_CLASSES.length;
  for (let i = 0; i < ALL_FEATURE_NAMES.length; i++) {
    const n = ALL_FEATURE_NAMES[i];
    if (all || classes.includes(featureClassOf(n))) out[n] = values[offset + i];
  }
  return out;
}

function shape(raw: { values: Float64Array; errors: Array<string | null> }, classes: readonly FeatureClass[]): RegionFeatures[] {
  const n = ALL_FEATURE_NAMES.length;
  return raw.errors.map((error, r) => ({ error, features: error ? null : toVector(raw.values, r * n, classes) }));
}

/**
 * Features of every region of a frame in one native call. `codes` is pane-sized (the first
 * pane's size; all panes share it): 0 none, 1 lesion, k+2 ring k. Region order: for each pane,
 * the lesion then ring 0..nRings-1 (ring k = codes 2..k+2, i.e. the band from the lesion border
 * out to radius k, lesion excluded).
 */
export function extractRegions(image: Uint8Array, width: number, height: number, panes: PixelRect[], codes: Uint8Array, nRings: number,
  settings: RadiomicsSettings = {}): RegionFeatures[] {
  const r = resolveRadiomicsSettings(settings);
  return shape(native.radiomics(image, width, height, panes, codes, nRings, nativeSettings(r)), r.classes);
}

/** As extractRegions, off the main thread. */
export async function extractRegionsAsync(image: Uint8Array, width: number, height: number, panes: PixelRect[], codes: Uint8Array,
  nRings: number, settings: RadiomicsSettings = {}): Promise<RegionFeatures[]> {
  const r = resolveRadiomicsSettings(settings);
  return shape(await native.radiomicsAsync(image, width, height, panes, codes, nRings, nativeSettings(r)), r.classes);
}

/**
 * Features of one ROI: every non-zero mask pixel is ROI (as PyRadiomics with label 1 on a
 * binary mask). Throws a RadiomicsError when the mask fails PyRadiomics' checks.
 */
export function extractFeatures(image: Uint8Array, width: number, height: number, mask: Uint8Array, settings: RadiomicsSettings = {}): FeatureVector {
  if (!(mask instanceof Uint8Array) || mask.length !== width * height)
    throw new RadiomicsError(`mask must be a Uint8Array of width*height = ${width * height} bytes (got ${mask instanceof Uint8Array ? mask.length : typeof mask})`);
  // Region codes in native code (no per-pixel JS): with no ring radii, every non-zero pixel is 1.
  const codes = new Uint8Array(mask.length);
  native.ringCodes(mask, width, height, { spacingX: 1, spacingY: 1, radiiMm: [] }, codes, null);
  const [res] = extractRegions(image, width, height, [{ x: 0, y: 0, width, height }], codes, 0, settings);
  if (res.error) throw new RadiomicsError(res.error);
  return res.features!;
}
