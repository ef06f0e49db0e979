// A seeded synthetic cohort for `sonomics fit` / `eval` tests: 8-bit binary PGM (P5) B-mode-like
// images of speckle texture with one elliptical lesion each, its mask, and a cohort CSV. Label 1
// lesions are darker and more heterogeneous than label 0 ones, through a latent severity that
// overlaps between the classes (so the AUC is high but not 1). A clinical column `age` (integer
// years, 20-90) depends on the label but not on the image: it adds information a nomogram can use.
// Deterministic for a seed: the same seed writes the same bytes.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { seededRandom } from '../core/random.js';

/** Writes an 8-bit binary PGM (P5): header, then the pixels row by row. */
export function writePgm(path: string, data: Uint8Array, width: number, height: number): void {
  if (data.length !== width * height) throw new Error(`writePgm: ${data.length} bytes for ${width}x${height}`);
  const header = Buffer.from(`P5\n${width} ${height}\n255\n`, 'latin1');
  writeFileSync(path, Buffer.concat([header, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

export interface CohortSpec {
  seed: number;
  /** Cases (default 120). */
  n?: number;
  /** Image width and height in pixels (default 96). */
  size?: number;
  /** Writes a spacing_mm column with this value for every row (default: no column). */
  spacingMm?: number;
  /** This many cases (spread over the cohort, both classes) get an empty age cell (default 0). */
  missingAge?: number;
  /** CSV file name (default cohort.csv). */
  csvName?: string;
}

export interface GeneratedCase {
  id: string;
  label: 0 | 1;
  /** Empty cell when null. */
  age: number | null;
  /** Paths relative to the cohort folder, as in the CSV. */
  image: string;
  mask: string;
  /** Latent severity (the image's texture is a function of it). */
  severity: number;
}

export interface GeneratedCohort {
  dir: string;
  /** Absolute path of the cohort CSV. */
  csv: string;
  cases: GeneratedCase[];
  header: string[];
  /** The CSV's rows as cells (header order), to derive broken cohorts from. */
  rows: string[][];
}

/** Writes a cohort CSV from a header and rows (cells containing , " or newline are quoted). */
export function writeCsv(path: string, header: string[], rows: string[][]): void {
  const cell = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  writeFileSync(path, `${[header, ...rows].map((r) => r.map(cell).join(',')).join('\n')}\n`);
}

/** Mean-0, sd-1 spatially correlated noise (white Gaussian noise, two 3x3 box blurs, renormalised): speckle-like grain. */
function speckleField(rand: () => number, w: number, h: number): Float64Array {
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  let f: Float64Array = Float64Array.from({ length: w * h }, gauss);
  for (let pass = 0; pass < 2; pass++) {
    const g = new Float64Array(w * h);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        let s = 0, k = 0;
        for (let dy = -1; dy <= 1; dy++)
          for (let dx = -1; dx <= 1; dx++) {
            const yy = y + dy, xx = x + dx;
            if (yy >= 0 && yy < h && xx >= 0 && xx < w) { s += f[yy * w + xx]; k++; }
          }
        g[y * w + x] = s / k;
      }
    f = g;
  }
  let m = 0, v = 0;
  for (const x of f) m += x;
  m /= f.length;
  for (const x of f) v += (x - m) ** 2;
  const sd = Math.sqrt(v / f.length);
  return f.map((x) => (x - m) / sd);
}

/** Writes the cohort (images/, masks/, the CSV) into `dir` and returns what it wrote. */
export function writeSyntheticCohort(dir: string, spec: CohortSpec): GeneratedCohort {
  const n = spec.n ?? 120, size = spec.size ?? 96;
  const rand = seededRandom(spec.seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const uniform = (lo: number, hi: number) => lo + (hi - lo) * rand();
  mkdirSync(join(dir, 'images'), { recursive: true });
  mkdirSync(join(dir, 'masks'), { recursive: true });
  const cases: GeneratedCase[] = [];
  for (let i = 0; i < n; i++) {
    const label: 0 | 1 = rand() < 0.45 ? 1 : 0;
    // Image: latent severity = label + noise; the classes overlap.
    const severity = label + 0.6 * gauss();
    // Age depends on the label only (independent of the image given the label).
    const age = Math.max(20, Math.min(90, Math.round((label ? 61 : 47) + 11 * gauss())));
    // Lesion: an ellipse, semi-axes 9-17 px, any angle, centred so that an 8 px ring mostly fits.
    const a = uniform(9, 17), b = uniform(9, 17), theta = uniform(0, Math.PI);
    const r = Math.max(a, b);
    const cx = uniform(r + 4, size - 1 - r - 4), cy = uniform(r + 4, size - 1 - r - 4);
    const bgMean = 115 + 8 * gauss(), bgSd = 22 + 3 * gauss();
    const lesionMean = 78 - 12 * severity + 5 * gauss();
    const lesionSd = Math.max(4, 10 + 13 * severity + 2 * gauss());
    const bg = speckleField(rand, size, size), les = speckleField(rand, size, size);
    const image = new Uint8Array(size * size), mask = new Uint8Array(size * size);
    const cos = Math.cos(theta), sin = Math.sin(theta);
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        const dx = x - cx, dy = y - cy;
        const u = (dx * cos + dy * sin) / a, v = (-dx * sin + dy * cos) / b;
        const inside = u * u + v * v <= 1;
        const k = y * size + x;
        const value = inside ? lesionMean + lesionSd * les[k] : bgMean + bgSd * bg[k];
        image[k] = Math.max(0, Math.min(255, Math.round(value)));
        if (inside) mask[k] = 255;
      }
    const id = `case_${String(i + 1).padStart(3, '0')}`;
    writePgm(join(dir, 'images', `${id}.pgm`), image, size, size);
    writePgm(join(dir, 'masks', `${id}_mask.pgm`), mask, size, size);
    cases.push({ id, label, age, image: `images/${id}.pgm`, mask: `masks/${id}_mask.pgm`, severity });
  }
  // Missing ages: evenly spread over the cohort (so both classes lose some).
  const missing = Math.min(spec.missingAge ?? 0, n);
  for (let k = 0; k < missing; k++) cases[Math.floor(((k + 0.5) * n) / missing)].age = null;
  const header = ['id', 'image', 'mask', 'label', 'age', ...(spec.spacingMm !== undefined ? ['spacing_mm'] : [])];
  const rows = cases.map((c) => [c.id, c.image, c.mask, String(c.label), c.age === null ? '' : String(c.age), ...(spec.spacingMm !== undefined ? [String(spec.spacingMm)] : [])]);
  const csv = join(dir, spec.csvName ?? 'cohort.csv');
  writeCsv(csv, header, rows);
  return { dir, csv, cases, header, rows };
}
