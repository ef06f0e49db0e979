// The radiomics engine against PyRadiomics itself: the six reference frames of
// ../shared/radiomics-ref (README.md there), each at binCount 32 and binWidth 25, all 102 default
// 2D features, |ours - PyRadiomics| <= max(1e-9, 1e-6 |PyRadiomics|). A null reference value
// (PyRadiomics gave NaN/inf) must be NaN on our side.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ALL_FEATURE_NAMES, DEPRECATED_FEATURES, FEATURE_NAMES, extractFeatures, type RadiomicsSettings } from '../core/radiomics.js';
import { readPgm, sharedDir } from './helpers.js';

interface Manifest {
  cases: Array<{ name: string; image: string; mask: string; width: number; height: number; roi_pixels: number;
    references: Record<string, { file: string; n_features: number; null_features: string[] }> }>;
}

const SETTINGS: Record<string, RadiomicsSettings> = { bc32: { binCount: 32 }, bw25: { binWidth: 25 } };

const close = (a: number, b: number) => Math.abs(a - b) <= Math.max(1e-9, 1e-6 * Math.abs(b));

t.test('feature names: 102 defaults plus the two deprecated ones', async (t) => {
  t.equal(FEATURE_NAMES.length, 102, '102 default features');
  t.equal(new Set(ALL_FEATURE_NAMES).size, ALL_FEATURE_NAMES.length, 'no duplicate names');
  t.same([...DEPRECATED_FEATURES].sort(), ['firstorder_StandardDeviation', 'shape2D_SphericalDisproportion']);
  const perClass: Record<string, number> = {};
  for (const n of FEATURE_NAMES) perClass[n.slice(0, n.indexOf('_'))] = (perClass[n.slice(0, n.indexOf('_'))] ?? 0) + 1;
  t.same(perClass, { firstorder: 18, shape2D: 9, glcm: 24, glrlm: 16, glszm: 16, gldm: 14, ngtdm: 5 }, 'features per class as PyRadiomics 2D');
});

t.test('all 102 features equal PyRadiomics on the six reference frames, binCount 32 and binWidth 25', async (t) => {
  const dir = sharedDir(t, 'radiomics-ref');
  if (!dir) return;
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  t.equal(manifest.cases.length, 6, 'six reference cases');
  const ourNames = [...FEATURE_NAMES].sort();
  const failures: string[] = [];
  for (const c of manifest.cases) {
    const img = readPgm(join(dir, c.image)), mask = readPgm(join(dir, c.mask));
    t.equal(`${img.width}x${img.height}`, `${c.width}x${c.height}`, `${c.name}: image size as the manifest`);
    t.equal(mask.data.reduce((n, v) => n + (v ? 1 : 0), 0), c.roi_pixels, `${c.name}: ROI pixels as the manifest`);
    for (const [key, settings] of Object.entries(SETTINGS)) {
      const ref = JSON.parse(readFileSync(join(dir, c.references[key].file), 'utf8')) as Record<string, number | null>;
      const refNames = Object.keys(ref).sort();
      t.equal(refNames.length, 102, `${c.name} ${key}: 102 reference features`);
      t.same(ourNames, refNames, `${c.name} ${key}: our FEATURE_NAMES are exactly the reference keys`);
      // Spacing 1: the reference frames are (1,H,W) volumes at pixel spacing 1.
      const ours = extractFeatures(img.data, img.width, img.height, mask.data, { ...settings, spacingX: 1, spacingY: 1 });
      t.same(Object.keys(ours).filter((k) => !DEPRECATED_FEATURES.has(k)).sort(), refNames, `${c.name} ${key}: one value per reference feature`);
      for (const k of refNames) {
        const a = ours[k], b = ref[k];
        const ok = b === null ? Number.isNaN(a) : typeof a === 'number' && close(a, b);
        const msg = `${c.name} ${key} ${k}: ours ${a}, PyRadiomics ${b}` + (b !== null && Number.isFinite(a) ? ` (rel diff ${(Math.abs(a - b) / Math.max(Math.abs(b), 1e-300)).toExponential(2)})` : '');
        if (!ok) failures.push(msg);
        t.ok(ok, msg);
      }
    }
  }
  if (failures.length) t.comment(`${failures.length} mismatches:\n${failures.join('\n')}`);
});

t.test('ibsi mode: Kurtosis is excess kurtosis (PyRadiomics value - 3) on the reference frames', async (t) => {
  const dir = sharedDir(t, 'radiomics-ref');
  if (!dir) return;
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  for (const c of manifest.cases) {
    const img = readPgm(join(dir, c.image)), mask = readPgm(join(dir, c.mask));
    const ref = JSON.parse(readFileSync(join(dir, c.references.bw25.file), 'utf8')) as Record<string, number>;
    const py = extractFeatures(img.data, img.width, img.height, mask.data, { binWidth: 25 });
    const ibsi = extractFeatures(img.data, img.width, img.height, mask.data, { binWidth: 25, ibsi: true });
    t.ok(Math.abs(ibsi.firstorder_Kurtosis - (py.firstorder_Kurtosis - 3)) <= 1e-9 * Math.max(1, Math.abs(py.firstorder_Kurtosis)),
      `${c.name}: ibsi Kurtosis ${ibsi.firstorder_Kurtosis} = PyRadiomics-mode ${py.firstorder_Kurtosis} - 3`);
    t.ok(close(ibsi.firstorder_Kurtosis + 3, ref.firstorder_Kurtosis), `${c.name}: ibsi Kurtosis + 3 = PyRadiomics reference ${ref.firstorder_Kurtosis}`);
  }
});
