// PyRadiomics parameter files (YAML or JSON, sections `setting`, `imageType`, `featureClass`,
// `voxelSetting`) read into the engine's RadiomicsSettings plus a per-class feature selection.
// Only what the engine does the same way as PyRadiomics is accepted; every other setting, image
// type or section is refused by name with the reason, so a file never silently means something
// else here than in PyRadiomics. Errors are ParamsErrors naming the file and the key.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import {
  ALL_FEATURE_NAMES, DEPRECATED_FEATURES, FEATURE_CLASSES, RadiomicsError, resolveRadiomicsSettings,
  type FeatureClass, type RadiomicsSettings,
} from './radiomics.js';

export class ParamsError extends RadiomicsError {
  /** `key` is the offending path in the file, e.g. "setting.binWidth" or "featureClass.glcm[2]". */
  constructor(readonly file: string, key: string | undefined, problem: string) {
    super(`${file}: ${problem}`, key);
    this.name = 'ParamsError';
  }
}

/**
 * Features enabled per class, as in the file's `featureClass` section: null means the class's
 * default (non-deprecated) features; a list holds full names (`glcm_Contrast`, ...).
 */
export type FeatureSelection = Partial<Record<FeatureClass, readonly string[] | null>>;

export interface RadiomicsParams {
  /** Engine settings from the `setting` section (never `classes`, `spacingX/Y` or `ibsi`). */
  settings: RadiomicsSettings;
  /** The `featureClass` section; null when it is missing or empty (PyRadiomics: every class). */
  selection: FeatureSelection | null;
  /** The file the params came from (or the label given to parseParams). */
  source: string;
}

export interface ParseParamsOptions {
  /** Names the file in error messages. */
  source: string;
  /** Valid feature names (`<class>_<Name>`); default: the engine's ALL_FEATURE_NAMES. */
  featureNames?: readonly string[];
}

type Problem = string | null;
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const show = (v: unknown) => JSON.stringify(v) ?? String(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

function mustBe(key: string, v: unknown, ok: boolean, what: string): Problem {
  return ok ? null : `setting ${key} must be ${what} (got ${show(v)})`;
}

/** Settings the engine shares with PyRadiomics, checked against PyRadiomics' schema types. */
const SHARED: Record<string, (v: unknown) => Problem> = {
  binWidth: (v) => mustBe('binWidth', v, typeof v === 'number' && Number.isFinite(v) && v > 0, 'a number > 0'),
  binCount: (v) => mustBe('binCount', v, v === null || (isInt(v) && v >= 1), 'an integer >= 1'),
  distances: (v) => {
    if (!Array.isArray(v) || v.length === 0) return mustBe('distances', v, false, 'a non-empty list of integers >= 1');
    const i = v.findIndex((d) => !isInt(d) || d < 1);
    return i < 0 ? null : mustBe(`distances[${i}]`, v[i], false, 'an integer >= 1');
  },
  symmetricalGLCM: (v) => mustBe('symmetricalGLCM', v, typeof v === 'boolean', 'true or false'),
  gldm_a: (v) => mustBe('gldm_a', v, isInt(v) && v >= 0, 'an integer >= 0'),
  voxelArrayShift: (v) => mustBe('voxelArrayShift', v, isInt(v), 'an integer'),
  minimumROIDimensions: (v) => mustBe('minimumROIDimensions', v, isInt(v) && v >= 1 && v <= 3, 'an integer in [1, 3]'),
  minimumROISize: (v) => mustBe('minimumROISize', v, v === null || (isInt(v) && v >= 1), 'an integer >= 1'),
};

/** Settings accepted without effect: they cannot change a 2D result on a binary mask. */
const NO_OP: Record<string, (v: unknown) => Problem> = {
  force2D: (v) => typeof v !== 'boolean' ? mustBe('force2D', v, false, 'true or false')
    : v ? null : 'setting force2D: false is not supported by sonomics (a 2D engine: features are always computed in 2D; use force2D: true or leave it out)',
  force2Ddimension: (v) => !isInt(v) ? mustBe('force2Ddimension', v, false, 'an integer')
    : v === 0 ? null : `setting force2Ddimension: ${v} is not supported by sonomics (frames are 2D images; only 0, the image plane, is accepted)`,
  label: (v) => !isInt(v) ? mustBe('label', v, false, 'an integer')
    : v === 1 ? null : `setting label: ${v} is not supported by sonomics (every non-zero mask pixel is the ROI, as label 1 on a binary mask; only 1 is accepted)`,
  additionalInfo: (v) => mustBe('additionalInfo', v, typeof v === 'boolean', 'true or false'),
  preCrop: (v) => mustBe('preCrop', v, typeof v === 'boolean', 'true or false'),
  correctMask: (v) => mustBe('correctMask', v, typeof v === 'boolean', 'true or false'),
  geometryTolerance: (v) => mustBe('geometryTolerance', v, typeof v === 'number' && Number.isFinite(v) && v > 0, 'a number > 0'),
};

const NO_NORMALIZE = 'no intensity normalization: features are computed on the frame\'s 8-bit gray values';
const NO_RESAMPLE = 'no resampling on live frames';
const NO_VOXEL = 'no voxel-based extraction';
const NO_RESEGMENT = 'no re-segmentation: the ROI is the mask as given';
const ORIGINAL_ONLY = (filter: string) => `no ${filter} filter: only the Original image type is computed`;

/** PyRadiomics settings sonomics does not implement, with the reason. */
const REFUSED: Record<string, string> = {
  normalize: NO_NORMALIZE,
  normalizeScale: NO_NORMALIZE,
  removeOutliers: NO_NORMALIZE,
  resampledPixelSpacing: NO_RESAMPLE,
  interpolator: NO_RESAMPLE,
  padDistance: `${NO_RESAMPLE} and no filters, the only users of padding`,
  weightingNorm: 'no distance weighting of angles: texture features are the mean over angles, PyRadiomics\' default',
  resegmentRange: NO_RESEGMENT,
  resegmentMode: NO_RESEGMENT,
  resegmentShape: NO_RESEGMENT,
  kernelRadius: NO_VOXEL,
  maskedKernel: NO_VOXEL,
  initValue: NO_VOXEL,
  voxelBatch: NO_VOXEL,
  sigma: ORIGINAL_ONLY('LoG'),
  start_level: ORIGINAL_ONLY('wavelet'),
  level: ORIGINAL_ONLY('wavelet'),
  wavelet: ORIGINAL_ONLY('wavelet'),
  gradientUseSpacing: ORIGINAL_ONLY('gradient'),
  label_channel: 'masks are single-channel images',
};

/** PyRadiomics image types (filters) other than Original. */
const FILTERS: Record<string, string> = {
  LoG: 'Laplacian of Gaussian', Wavelet: 'wavelet', Square: 'square', SquareRoot: 'square root', Logarithm: 'logarithm',
  Exponential: 'exponential', Gradient: 'gradient', LBP2D: 'local binary pattern (2D)', LBP3D: 'local binary pattern (3D)',
};

const SECTIONS = ['setting', 'imageType', 'featureClass', 'voxelSetting'];

function refusedReason(key: string): string | undefined {
  if (Object.hasOwn(REFUSED, key)) return REFUSED[key];
  if (key.startsWith('lbp')) return ORIGINAL_ONLY('local binary pattern');
  return undefined;
}

function readSettings(section: unknown, fail: (key: string, problem: string) => never): RadiomicsSettings {
  if (section === null || section === undefined) return {};
  if (!isObject(section)) fail('setting', `setting must be a mapping of setting names to values (got ${show(section)})`);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(section)) {
    const path = `setting.${key}`;
    const check = Object.hasOwn(SHARED, key) ? SHARED[key] : Object.hasOwn(NO_OP, key) ? NO_OP[key] : undefined;
    if (!check) {
      const reason = refusedReason(key);
      if (reason) fail(path, `setting ${key} is not supported by sonomics (${reason})`);
      fail(path, `setting ${key} is not a PyRadiomics setting sonomics knows (supported: ${Object.keys(SHARED).join(', ')}; `
        + `accepted without effect: ${Object.keys(NO_OP).join(', ')})`);
    }
    const problem = check(value);
    if (problem) fail(path, problem);
    if (Object.hasOwn(SHARED, key)) out[key] = value;
  }
  return out as RadiomicsSettings;
}

function checkImageType(section: unknown, fail: (key: string, problem: string) => never): void {
  if (section === null || section === undefined) return;
  if (!isObject(section)) fail('imageType', `imageType must be a mapping of image types to settings (got ${show(section)})`);
  for (const [type, value] of Object.entries(section)) {
    const path = `imageType.${type}`;
    if (type === 'Original') {
      if (value === null || (isObject(value) && Object.keys(value).length === 0)) continue;
      fail(path, `imageType Original must be {} or empty: per-image-type settings are not supported by sonomics (put them under setting)`);
    }
    if (Object.hasOwn(FILTERS, type)) fail(path, `imageType ${type} is not supported by sonomics (no ${FILTERS[type]} filter: only the Original image type is computed)`);
    fail(path, `unknown imageType "${type}" (PyRadiomics' image types: Original, ${Object.keys(FILTERS).join(', ')}; sonomics computes Original only)`);
  }
}

function readSelection(section: unknown, names: ReadonlySet<string>, fail: (key: string, problem: string) => never): FeatureSelection | null {
  if (section === null || section === undefined) return null;
  if (!isObject(section)) fail('featureClass', `featureClass must be a mapping of feature classes to feature lists (got ${show(section)})`);
  if (Object.keys(section).length === 0) return null;
  const selection: FeatureSelection = {};
  for (const [cls, value] of Object.entries(section)) {
    const path = `featureClass.${cls}`;
    if (cls === 'shape') fail(path, 'featureClass shape (3D) is not supported by sonomics: frames are 2D; use shape2D');
    if (!(FEATURE_CLASSES as readonly string[]).includes(cls)) fail(path, `unknown featureClass "${cls}" (known: ${FEATURE_CLASSES.join(', ')})`);
    if (value === null || (Array.isArray(value) && value.length === 0)) { selection[cls as FeatureClass] = null; continue; }
    if (!Array.isArray(value)) fail(path, `featureClass ${cls} must be a list of feature names, [] or empty for all (got ${show(value)})`);
    const list: string[] = [];
    value.forEach((f, i) => {
      if (typeof f !== 'string') fail(`${path}[${i}]`, `featureClass ${cls}[${i}] must be a feature name (got ${show(f)})`);
      const full = `${cls}_${f}`;
      if (!names.has(full)) {
        const known = [...names].filter((n) => n.startsWith(`${cls}_`)).map((n) => n.slice(cls.length + 1));
        fail(`${path}[${i}]`, `unknown ${cls} feature "${f}" (known: ${known.join(', ')})`);
      }
      if (!list.includes(full)) list.push(full);
    });
    selection[cls as FeatureClass] = list;
  }
  return selection;
}

/** Checks a parsed parameter document (YAML/JSON already parsed) and returns settings and selection. */
export function paramsFromObject(doc: unknown, o: ParseParamsOptions): RadiomicsParams {
  const fail: (key: string, problem: string) => never = (key, problem) => { throw new ParamsError(o.source, key, problem); };
  if (doc === null || doc === undefined) return { settings: {}, selection: null, source: o.source };
  if (!isObject(doc)) fail('(top level)', `a PyRadiomics parameter file must be a mapping with sections ${SECTIONS.join(', ')} (got ${show(doc)})`);
  for (const k of Object.keys(doc)) {
    if (!SECTIONS.includes(k)) fail(k, `unknown section "${k}" (a PyRadiomics parameter file has ${SECTIONS.join(', ')})`);
  }
  if (doc.voxelSetting !== undefined) {
    fail('voxelSetting', 'section voxelSetting is not supported by sonomics (no voxel-based extraction: features are computed per region)');
  }
  const settings = readSettings(doc.setting, fail);
  checkImageType(doc.imageType, fail);
  const selection = readSelection(doc.featureClass, new Set(o.featureNames ?? ALL_FEATURE_NAMES), fail);
  try {
    resolveRadiomicsSettings(settings);
  } catch (e) {
    if (e instanceof RadiomicsError) fail(e.key ? `setting.${e.key}` : 'setting', e.message);
    throw e;
  }
  return { settings, selection, source: o.source };
}

/** Parses the text of a PyRadiomics parameter file (YAML, or JSON, which is YAML too). */
export function parseParams(text: string, o: ParseParamsOptions): RadiomicsParams {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ParamsError(o.source, undefined, `not valid YAML: ${(e as Error).message}`);
  }
  return paramsFromObject(doc, o);
}

/** Reads a PyRadiomics parameter file. */
export function loadParams(path: string, o: { featureNames?: readonly string[] } = {}): RadiomicsParams {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ParamsError(path, undefined, `cannot read the parameter file: ${(e as Error).message}`);
  }
  return parseParams(text, { source: path, featureNames: o.featureNames });
}

export interface SelectFeaturesOptions {
  /** Add the deprecated features of classes selected as a whole (null selection or null entry). */
  includeDeprecated: boolean;
  /** Every feature in output order; default the engine's ALL_FEATURE_NAMES. */
  names?: readonly string[];
  /** Deprecated features; default the engine's DEPRECATED_FEATURES. */
  deprecated?: ReadonlySet<string>;
}

/**
 * The feature names to report, in the engine's output order. A null selection means every class;
 * a class selected as a whole gives its default features (plus the deprecated ones with
 * includeDeprecated); a class given as a list gives exactly the listed features.
 */
export function selectFeatureNames(selection: FeatureSelection | null, o: SelectFeaturesOptions): string[] {
  const names = o.names ?? ALL_FEATURE_NAMES;
  const deprecated = o.deprecated ?? DEPRECATED_FEATURES;
  return names.filter((n) => {
    const cls = n.slice(0, n.indexOf('_')) as FeatureClass;
    const entry = selection === null ? null : selection[cls];
    if (entry === undefined) return false;
    if (entry === null) return o.includeDeprecated || !deprecated.has(n);
    return entry.includes(n);
  });
}

/** The feature classes the given names belong to, in engine order. */
export function classesOf(names: readonly string[]): FeatureClass[] {
  return FEATURE_CLASSES.filter((c) => names.some((n) => n.startsWith(`${c}_`)));
}
