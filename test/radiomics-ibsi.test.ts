// The radiomics engine on the IBSI chapter 1 digital phantom (../shared/ibsi, README.md there).
// The phantom is 4 slices (z) of 4 rows (y) by 5 columns (x), 2 mm isotropic. "2D" aggregation:
// each slice is one 5x4 8-bit image with its mask, features are computed per slice with binWidth 1
// (PyRadiomics' bin = floor(x) - floor(min) + 1, so grey levels stay as they are when the slice's
// ROI contains grey level 1) and averaged over the slices. Compared with
//  - the IBSI consensus values the PyRadiomics comparison table maps to PyRadiomics names (mode
//    '2D'): |ours - IBSI| <= half a unit in the last printed digit of the IBSI value;
//  - PyRadiomics' own per-slice-averaged values for all 75 texture features, to 1e-6 relative;
//  - first order: IBSI compares it in 3D. First-order features do not depend on where the pixels
//    are, so the four slices side by side in one 2D image give the 3D ROI's values.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { extractFeatures, type FeatureVector, type RadiomicsSettings } from '../core/radiomics.js';
import { sharedDir } from './helpers.js';

interface Phantom { shape_zyx: [number, number, number]; spacing_mm_xyz: [number, number, number]; roi_voxels: number; image: number[][][]; mask: number[][][] }

/** RFC 4180 CSV (quoted fields may hold commas and doubled quotes) to objects keyed by the header. */
function parseCsv(text: string): Array<Record<string, string>> {
  const rows: string[][] = [];
  let row: string[] = [], field = '', quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') { row.push(field); field = ''; }
    else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field); field = '';
      if (row.length > 1 || row[0] !== '') rows.push(row);
      row = [];
    } else field += ch;
  }
  if (field !== '' || row.length) { row.push(field); rows.push(row); }
  const [header, ...body] = rows;
  return body.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i] ?? ''])));
}

/**
 * An IBSI value as printed in the manual's reST source, e.g. "0.519", "7", ":math:`-`\ 0.0121",
 * ":math:`1.49 \times 10^{3}`", with its half-unit in the last printed digit.
 */
function parseIbsiValue(text: string): { value: number; halfUnit: number } {
  let s = text.replace(/:math:/g, '').replace(/`/g, '').replace(/\\ /g, ' ').replace(/\u2212/g, '-').trim();
  let exponent = 0;
  const sci = /^(.*?)\s*(?:\\times|×|x)\s*10\^\{?\s*([+-]?\d+)\s*\}?$/.exec(s);
  if (sci) { s = sci[1]; exponent = +sci[2]; }
  const e = /^(.*?)[eE]([+-]?\d+)$/.exec(s);
  if (e) { s = e[1]; exponent += +e[2]; }
  s = s.replace(/\s+/g, '');
  const m = /^([+-]?)(\d+)(?:\.(\d+))?$/.exec(s);
  if (!m) throw new Error(`cannot parse IBSI value "${text}"`);
  const decimals = m[3]?.length ?? 0;
  const value = Number(`${m[1]}${m[2]}${m[3] ? `.${m[3]}` : ''}`) * 10 ** exponent;
  return { value, halfUnit: 0.5 * 10 ** (exponent - decimals) };
}

function loadPhantom(dir: string): Phantom {
  return JSON.parse(readFileSync(join(dir, 'digital_phantom', 'phantom.json'), 'utf8')) as Phantom;
}

function slice(ph: Phantom, z: number): { img: Uint8Array; mask: Uint8Array; w: number; h: number } {
  const [, h, w] = ph.shape_zyx;
  const img = new Uint8Array(w * h), mask = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) { img[y * w + x] = ph.image[z][y][x]; mask[y * w + x] = ph.mask[z][y][x] ? 1 : 0; }
  return { img, mask, w, h };
}

/** Features per slice, averaged over the slices (IBSI "2D" / "2D, averaged"). */
function perSliceAverage(ph: Phantom, settings: RadiomicsSettings): FeatureVector {
  const sum: FeatureVector = {};
  const nz = ph.shape_zyx[0];
  for (let z = 0; z < nz; z++) {
    const s = slice(ph, z);
    const f = extractFeatures(s.img, s.w, s.h, s.mask, settings);
    for (const [k, v] of Object.entries(f)) sum[k] = (sum[k] ?? 0) + v / nz;
  }
  return sum;
}

const MODES: Array<[string, RadiomicsSettings]> = [
  ['PyRadiomics mode', { binWidth: 1, spacingX: 2, spacingY: 2 }],
  ['ibsi mode', { binWidth: 1, spacingX: 2, spacingY: 2, ibsi: true }],
];

const FAMILY_CLASS: Record<string, string> = {
  'Grey level co-occurrence based features': 'glcm', 'Grey level run length based features': 'glrlm',
  'Grey level size zone based features': 'glszm', 'Neighbourhood grey tone difference based features': 'ngtdm',
  'Neighbouring grey level dependence based features': 'gldm',
};

t.test('IBSI value text parser', async (t) => {
  const near = (got: { value: number; halfUnit: number }, value: number, halfUnit: number, what: string) =>
    t.ok(Math.abs(got.value - value) <= 1e-12 * Math.abs(value) && Math.abs(got.halfUnit - halfUnit) <= 1e-12 * halfUnit,
      `${what}: ${got.value} ± ${got.halfUnit}, want ${value} ± ${halfUnit}`);
  near(parseIbsiValue('0.519'), 0.519, 0.0005, '0.519');
  near(parseIbsiValue('7'), 7, 0.5, '7');
  near(parseIbsiValue('113'), 113, 0.5, '113');
  near(parseIbsiValue(':math:`-`\\ 0.0121'), -0.0121, 0.00005, 'reST minus sign');
  near(parseIbsiValue(':math:`1.49 \\times 10^{3}`'), 1490, 5, 'reST times ten to the 3');
  near(parseIbsiValue('1.2e-3'), 0.0012, 0.00005, '1.2e-3');
  t.throws(() => parseIbsiValue('—'), /cannot parse/);
});

t.test('phantom slices pass the mask checks and keep their grey levels at binWidth 1', async (t) => {
  const dir = sharedDir(t, 'ibsi');
  if (!dir) return;
  const ph = loadPhantom(dir);
  t.same(ph.shape_zyx, [4, 4, 5], '4 slices of 4 rows x 5 columns');
  t.same(ph.spacing_mm_xyz, [2, 2, 2], '2 mm isotropic');
  let total = 0;
  for (let z = 0; z < 4; z++) {
    const s = slice(ph, z);
    const roi = [...s.img].filter((_, i) => s.mask[i]);
    total += roi.length;
    let x0 = s.w, x1 = -1, y0 = s.h, y1 = -1;
    for (let i = 0; i < s.mask.length; i++) if (s.mask[i]) {
      const x = i % s.w, y = Math.floor(i / s.w);
      x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
    }
    t.ok(roi.length >= 2, `slice ${z}: ${roi.length} ROI pixels`);
    t.ok(x1 > x0 && y1 > y0, `slice ${z}: ROI spans 2 dimensions (${x1 - x0 + 1}x${y1 - y0 + 1})`);
    t.equal(Math.min(...roi), 1, `slice ${z}: ROI contains grey level 1, so binWidth 1 leaves the levels unchanged`);
    t.notOk(roi.includes(9), `slice ${z}: the 9 outside the mask stays out`);
  }
  t.equal(total, ph.roi_voxels, '74 ROI voxels in all');
});

t.test('2D texture features match the IBSI consensus values, PyRadiomics and ibsi mode', async (t) => {
  const dir = sharedDir(t, 'ibsi');
  if (!dir) return;
  const ph = loadPhantom(dir);
  const rows = parseCsv(readFileSync(join(dir, 'pyradiomics_vs_ibsi_phantom.csv'), 'utf8')).filter((r) => r.mode === '2D');
  const perClass: Record<string, number> = {};
  for (const r of rows) {
    const cls = r.pyradiomics.slice(0, r.pyradiomics.indexOf('_'));
    perClass[cls] = (perClass[cls] ?? 0) + 1;
    t.equal(FAMILY_CLASS[r.ibsi_family], cls, `${r.ibsi_feature}: IBSI family maps to ${cls}`);
  }
  // README: 2D mode compares GLCM 25, GLRLM 16, GLSZM 16, NGTDM 5, GLDM<->NGLDM 14 rows.
  t.same(perClass, { glcm: 25, glrlm: 16, glszm: 16, ngtdm: 5, gldm: 14 }, 'every 2D texture row of the table is here');
  for (const [mode, settings] of MODES) {
    const ours = perSliceAverage(ph, settings);
    const misses: string[] = [];
    for (const r of rows) {
      const { value, halfUnit } = parseIbsiValue(r.ibsi_value_text);
      t.ok(Math.abs(value - Number(r.ibsi_value)) <= 1e-12 * Math.max(1, Math.abs(value)), `${r.ibsi_value_text} parses to the table's ${r.ibsi_value}`);
      const a = ours[r.pyradiomics];
      const ok = Number.isFinite(a) && Math.abs(a - value) <= halfUnit * (1 + 1e-9);
      const msg = `${mode}: ${r.pyradiomics} (IBSI ${r.ibsi_feature}, ${r.ibsi_code}, ${r.ibsi_aggregation}): ours ${a}, IBSI ${r.ibsi_value_text} ± ${halfUnit}`;
      if (!ok) misses.push(msg);
      t.ok(ok, msg);
    }
    if (misses.length) t.comment(`${mode}: ${misses.length} of ${rows.length} IBSI values missed:\n${misses.join('\n')}`);
  }
});

t.test('2D texture features equal PyRadiomics run per slice on the phantom (75 features)', async (t) => {
  const dir = sharedDir(t, 'ibsi');
  if (!dir) return;
  const ph = loadPhantom(dir);
  const raw = JSON.parse(readFileSync(join(dir, 'pyradiomics_vs_ibsi_phantom_pyradiomics_raw.json'), 'utf8')) as Record<string, Record<string, number>>;
  const ref = raw['2D'];
  t.equal(Object.keys(ref).length, 75, '75 texture features in the PyRadiomics 2D run');
  const ours = perSliceAverage(ph, MODES[0][1]);
  for (const [k, b] of Object.entries(ref)) {
    const a = ours[k];
    t.ok(Math.abs(a - b) <= Math.max(1e-9, 1e-6 * Math.abs(b)), `${k}: ours ${a}, PyRadiomics ${b}`);
  }
});

t.test('first order of the whole phantom ROI (the four slices side by side) matches IBSI and PyRadiomics 3D', async (t) => {
  const dir = sharedDir(t, 'ibsi');
  if (!dir) return;
  const ph = loadPhantom(dir);
  const [nz, h, w] = ph.shape_zyx;
  // Slices side by side with an outside column between them: one 2D image holding every ROI voxel once.
  const W = nz * (w + 1), img = new Uint8Array(W * h), mask = new Uint8Array(W * h);
  for (let z = 0; z < nz; z++) {
    const s = slice(ph, z);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) { img[y * W + z * (w + 1) + x] = s.img[y * w + x]; mask[y * W + z * (w + 1) + x] = s.mask[y * w + x]; }
  }
  t.equal(mask.reduce((n, v) => n + v, 0), 74, '74 ROI voxels');
  const raw = JSON.parse(readFileSync(join(dir, 'pyradiomics_vs_ibsi_phantom_pyradiomics_raw.json'), 'utf8')) as Record<string, Record<string, number>>;
  const rows = parseCsv(readFileSync(join(dir, 'pyradiomics_vs_ibsi_phantom.csv'), 'utf8')).filter((r) => r.mode === '3D' && r.pyradiomics.startsWith('firstorder_'));
  t.equal(rows.length, 17, 'README: 17 first-order rows (15 intensity statistics, discretised entropy and uniformity)');
  for (const [mode, settings] of MODES) {
    const ours = extractFeatures(img, W, h, mask, settings);
    for (const r of rows) {
      const { value, halfUnit } = parseIbsiValue(r.ibsi_value_text);
      // IBSI's kurtosis is excess kurtosis; PyRadiomics mode reports plain kurtosis (normal = 3), ibsi mode excess.
      const kurt = r.pyradiomics === 'firstorder_Kurtosis';
      const a = kurt && !settings.ibsi ? ours[r.pyradiomics] - 3 : ours[r.pyradiomics];
      t.ok(Math.abs(a - value) <= halfUnit * (1 + 1e-9),
        `${mode}: ${r.pyradiomics}${kurt && !settings.ibsi ? ' - 3' : ''} (IBSI ${r.ibsi_feature}): ours ${a}, IBSI ${r.ibsi_value_text} ± ${halfUnit}`);
    }
    // PyRadiomics 3D first order to 1e-6 (TotalEnergy: our pixel area is 2x2 mm, a 3D voxel is 2x2x2 mm).
    for (const [k, b] of Object.entries(raw['3D']).filter(([k]) => k.startsWith('firstorder_'))) {
      let a = ours[k];
      if (k === 'firstorder_TotalEnergy') a *= ph.spacing_mm_xyz[2];
      if (k === 'firstorder_Kurtosis' && settings.ibsi) a += 3;
      t.ok(Math.abs(a - b) <= Math.max(1e-9, 1e-6 * Math.abs(b)), `${mode}: ${k}: ours ${a}, PyRadiomics 3D ${b}`);
    }
  }
});
