// A cohort for `fit` and `eval`: a CSV (parsed by csv-parse) with one lesion per row: `image`,
// `mask` (paths relative to the CSV), `label` (0/1), optional `spacing_mm` (one number, or
// `sx;sy`) and clinical variables by their card names. Features are computed by our own engine,
// on the whole image as one pane, for the lesion and the rings around it.
import { readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import type { ClinicalVariable } from './modelcard.js';
import { readGrayImage, type GrayImage } from './imageio.js';
import { native } from './native.js';
import { extractRegionsAsync, FEATURE_NAMES } from './radiomics.js';
import { ringName } from './regions.js';
import { codeClinical } from './risk.js';

export interface CohortCase {
  /** CSV line number (1 = header). */
  line: number;
  id: string;
  image: string;
  mask: string;
  label: 0 | 1;
  /** Pixel spacing in mm [x, y], when the row gives it. */
  spacing?: [number, number];
  /** Raw cells of the other columns, by column name. */
  cells: Record<string, string>;
}

export interface Cohort {
  path: string;
  cases: CohortCase[];
  /** `mm` when every row gives spacing_mm, `pixel` when none does. */
  spacing: 'mm' | 'pixel';
  columns: string[];
}

export class CohortError extends Error {
  constructor(readonly path: string, readonly problems: string[]) {
    super(`cohort ${path}: ${problems.slice(0, 20).join('; ')}${problems.length > 20 ? `; and ${problems.length - 20} more` : ''}`);
    this.name = 'CohortError';
  }
}

export interface ReadCohortOptions {
  /** Column holding the 0/1 label (default `label`). */
  labelColumn?: string;
}

/** Reads and checks a cohort CSV; throws a CohortError naming every bad row and column. */
export function readCohort(path: string, opts: ReadCohortOptions = {}): Cohort {
  const labelColumn = opts.labelColumn ?? 'label';
  let rows: Record<string, string>[];
  try {
    rows = parse(readFileSync(path), { columns: true, skip_empty_lines: true, trim: true, bom: true });
  } catch (e) {
    throw new CohortError(path, [`not a readable CSV: ${(e as Error).message}`]);
  }
  if (rows.length === 0) throw new CohortError(path, ['no rows']);
  const columns = Object.keys(rows[0]);
  const missing = ['image', 'mask', labelColumn].filter((c) => !columns.includes(c));
  if (missing.length) throw new CohortError(path, [`missing column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (has ${columns.join(', ')})`]);
  const dir = dirname(resolve(path));
  const problems: string[] = [];
  const cases: CohortCase[] = [];
  const ids = new Set<string>();
  rows.forEach((r, i) => {
    const line = i + 2;
    const bad = (m: string) => problems.push(`line ${line}: ${m}`);
    const label = r[labelColumn];
    if (label !== '0' && label !== '1') return bad(`${labelColumn} is ${JSON.stringify(label)}, not 0 or 1${i === 0 ? ' (--label-column names the 0/1 column)' : ''}`);
    if (!r.image) return bad('image is empty');
    if (!r.mask) return bad('mask is empty');
    let spacing: [number, number] | undefined;
    if (r.spacing_mm) {
      const parts = r.spacing_mm.split(';').map(Number);
      if (!(parts.length === 1 || parts.length === 2) || parts.some((x) => !(x > 0 && x < 10)))
        return bad(`spacing_mm ${JSON.stringify(r.spacing_mm)} must be one number in mm, or sx;sy (each in (0, 10))`);
      spacing = [parts[0], parts[1] ?? parts[0]];
    }
    const id = r.id || basename(r.image).replace(/\.[^.]+$/, '');
    if (ids.has(id)) return bad(`case id ${id} appears twice`);
    ids.add(id);
    cases.push({ line, id, image: resolve(dir, r.image), mask: resolve(dir, r.mask), label: label === '1' ? 1 : 0, ...(spacing && { spacing }), cells: r });
  });
  const withSpacing = cases.filter((c) => c.spacing).length;
  if (withSpacing && withSpacing < cases.length) problems.push(`spacing_mm is given for ${withSpacing} of ${cases.length} rows: give it for all or none`);
  if (problems.length) throw new CohortError(path, problems);
  const positives = cases.filter((c) => c.label === 1).length;
  if (positives === 0 || positives === cases.length) throw new CohortError(path, [`every case has label ${cases[0].label}: both classes are needed`]);
  return { path, cases, spacing: withSpacing ? 'mm' : 'pixel', columns };
}

/** A clinical cell as the model reads it (codeClinical); throws naming the variable. An empty cell is missing (undefined), never imputed. */
export function clinicalCell(v: ClinicalVariable, text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  let value: unknown = text;
  if (v.type === 'number' || v.type === 'integer') value = Number(text);
  else if (v.type === 'boolean') value = /^(1|true|yes)$/i.test(text) ? true : /^(0|false|no)$/i.test(text) ? false : text;
  return codeClinical(v, value);
}

/**
 * Shape features that carry a unit (mm, mm²): without a pixel spacing they are in pixels of images
 * of unknown scale, so a model fitted in pixels leaves them out.
 */
export const UNIT_SHAPE_FEATURES: ReadonlySet<string> = new Set([
  'shape2D_MeshSurface', 'shape2D_PixelSurface', 'shape2D_Perimeter', 'shape2D_PerimeterSurfaceRatio',
  'shape2D_MaximumDiameter', 'shape2D_MajorAxisLength', 'shape2D_MinorAxisLength',
]);

export interface CohortFeatureOptions {
  binWidth: number;
  /** Ring radii, in mm (spacing known) or pixels (spacing unknown). */
  rings: number[];
  /** `pixel` computes in pixels even when the rows give a spacing (a card fitted in pixels); default: the cohort's. */
  spacing?: 'mm' | 'pixel';
  /** Pane name the images are (default bmode): the feature keys' prefix. */
  pane?: 'bmode' | 'contrast';
  /** Cases extracted at the same time (default 2). */
  concurrency?: number;
  onCase?: (done: number, total: number) => void;
  /**
   * The lesion mask to use instead of the cohort's (e.g. one segmented from a tap that the
   * cohort's mask only places); throwing excludes the case with that reason.
   */
  maskOf?: (c: CohortCase, image: GrayImage, cohortMask: GrayImage) => Promise<Uint8Array>;
}

export interface CohortFeatures {
  /** Feature keys `<pane>.<region>.<feature>`, the columns of each row. */
  names: string[];
  /** One row per case (cohort order); null when the case was excluded. */
  rows: (Float64Array | null)[];
  excluded: { case: string; reason: string }[];
}

/** The feature keys a cohort yields: lesion and rings, 102 features each (unit-bearing shape features left out in pixels). */
export function cohortFeatureNames(spacing: 'mm' | 'pixel', rings: readonly number[], pane = 'bmode'): string[] {
  const regions = ['lesion', ...rings.map((r) => ringName(r, spacing === 'mm' ? 'mm' : 'px'))];
  const feats = FEATURE_NAMES.filter((n) => spacing === 'mm' || !UNIT_SHAPE_FEATURES.has(n));
  return regions.flatMap((r) => feats.map((f) => `${pane}.${r}.${f}`));
}

/**
 * Features of every case, by our engine: each case's image is one pane, its mask the lesion, the
 * rings from an exact distance transform (mm with the row's spacing, else pixels). A case whose
 * files cannot be read, whose sizes differ or whose lesion fails PyRadiomics' mask checks is
 * excluded with the reason; a ring that fails them gives NaN features.
 */
export async function cohortFeatures(cohort: Cohort, opts: CohortFeatureOptions): Promise<CohortFeatures> {
  const pane = opts.pane ?? 'bmode';
  const spacing = opts.spacing ?? cohort.spacing;
  if (spacing === 'mm' && cohort.spacing === 'pixel') throw new Error(`cohort ${cohort.path} gives no spacing_mm: features in mm need it`);
  const names = cohortFeatureNames(spacing, opts.rings, pane);
  const regions = ['lesion', ...opts.rings.map((r) => ringName(r, spacing === 'mm' ? 'mm' : 'px'))];
  const rows: (Float64Array | null)[] = new Array(cohort.cases.length).fill(null);
  const excluded: { case: string; reason: string }[] = [];
  const col = new Map(names.map((n, i) => [n, i]));
  let next = 0, done = 0;
  const one = async (c: CohortCase): Promise<Float64Array> => {
    const [image, mask] = await Promise.all([readGrayImage(c.image), readGrayImage(c.mask)]);
    if (image.width !== mask.width || image.height !== mask.height)
      throw new Error(`image is ${image.width}x${image.height} but mask is ${mask.width}x${mask.height}`);
    const [sx, sy] = spacing === 'mm' ? c.spacing! : [1, 1];
    const codes = new Uint8Array(image.width * image.height);
    const lesion = opts.maskOf ? await opts.maskOf(c, image, mask) : mask.data;
    const counts = native.ringCodes(lesion, image.width, image.height, { spacingX: sx, spacingY: sy, radiiMm: opts.rings }, codes, null);
    if (counts[0] === 0) throw new Error('mask is empty');
    const res = await extractRegionsAsync(image.data, image.width, image.height, [{ x: 0, y: 0, width: image.width, height: image.height }], codes,
      opts.rings.length, { binWidth: opts.binWidth, spacingX: sx, spacingY: sy, threads: 1 });
    if (res[0].error) throw new Error(`lesion fails PyRadiomics' mask checks: ${res[0].error}`);
    const row = new Float64Array(names.length).fill(NaN);
    res.forEach((r, k) => {
      if (!r.features) return;
      for (const [f, v] of Object.entries(r.features)) {
        const j = col.get(`${pane}.${regions[k]}.${f}`);
        if (j !== undefined) row[j] = v;
      }
    });
    return row;
  };
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= cohort.cases.length) return;
      const c = cohort.cases[i];
      try {
        rows[i] = await one(c);
      } catch (e) {
        excluded.push({ case: c.id, reason: (e as Error).message });
      }
      opts.onCase?.(++done, cohort.cases.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 2) }, worker));
  const order = new Map(cohort.cases.map((c, i) => [c.id, i]));
  excluded.sort((a, b) => order.get(a.case)! - order.get(b.case)!);
  return { names, rows, excluded };
}

export interface CaseData { ids: string[]; X: number[][]; y: number[]; clinical?: number[][]; excluded: { case: string; reason: string }[] }

/**
 * The cases that can enter a model: features computed, every clinical value present and valid.
 * Features non-finite in more than 5 % of the cases are left out (returned), and cases with a
 * non-finite value in the others are excluded with the reason. Nothing is imputed.
 */
export function completeCases(cohort: Cohort, f: CohortFeatures, clinical: ClinicalVariable[]): CaseData & { names: string[] } {
  const excluded = [...f.excluded];
  const rows = f.rows.map((r, i) => ({ r, c: cohort.cases[i] })).filter((x) => x.r);
  const limit = 0.05 * rows.length;
  const cols = f.names.map((_, j) => j).filter((j) => rows.filter((x) => !Number.isFinite(x.r![j])).length <= limit);
  const out: CaseData & { names: string[] } = { names: cols.map((j) => f.names[j]), ids: [], X: [], y: [], excluded, ...(clinical.length && { clinical: [] }) };
  for (const { r, c } of rows) {
    const bad = cols.find((j) => !Number.isFinite(r![j]));
    if (bad !== undefined) { excluded.push({ case: c.id, reason: `${f.names[bad]} is not finite` }); continue; }
    let coded: number[];
    try {
      coded = clinical.map((v) => {
        const x = clinicalCell(v, c.cells[v.name]);
        if (x === undefined) throw new Error(`clinical ${v.name} is missing (not imputed)`);
        return x;
      });
    } catch (e) {
      excluded.push({ case: c.id, reason: (e as Error).message });
      continue;
    }
    out.ids.push(c.id);
    out.X.push(cols.map((j) => r![j]));
    out.y.push(c.label);
    out.clinical?.push(coded);
  }
  return out;
}
