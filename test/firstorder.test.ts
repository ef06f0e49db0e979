import t from 'tap';
import { extractRegions } from '../core/radiomics.js';
import { seededRandom } from '../core/random.js';

// First order through the engine (the reference-frame conformance lives in radiomics-conformance.test.ts).
function compute(img: Uint8Array, w: number, h: number, mask: Uint8Array, binWidth = 25) {
  const codes = Uint8Array.from(mask, (v) => (v ? 1 : 0));
  const [r] = extractRegions(img, w, h, [{ x: 0, y: 0, width: w, height: h }], codes, 0, { binWidth, classes: ['firstorder'] });
  return { features: r.features ?? {}, error: r.error };
}

t.test('first-order features equal a direct computation on random regions', async (t) => {
  const rnd = seededRandom(11);
  for (let trial = 0; trial < 20; trial++) {
    const w = 23, h = 17, img = new Uint8Array(w * h), mask = new Uint8Array(w * h);
    const lo = Math.floor(rnd() * 100), span = 1 + Math.floor(rnd() * 150);
    for (let i = 0; i < img.length; i++) { img[i] = lo + Math.floor(rnd() * span); mask[i] = rnd() < 0.4 ? 1 : 0; }
    mask[0] = 1;
    const x = Array.from(img).filter((_, i) => mask[i]).sort((a, b) => a - b);
    const n = x.length, mean = x.reduce((a, b) => a + b, 0) / n;
    const pct = (q: number) => { const p = (q / 100) * (n - 1), f = Math.floor(p); return f + 1 < n ? x[f] + (p - f) * (x[f + 1] - x[f]) : x[f]; };
    const m2 = x.reduce((s, v) => s + (v - mean) ** 2, 0) / n;
    const bins = new Map<number, number>();
    for (const v of x) bins.set(Math.floor(v / 25), (bins.get(Math.floor(v / 25)) ?? 0) + 1);
    const ps = [...bins.values()].map((c) => c / n);
    const p10 = pct(10), p90 = pct(90), r = x.filter((v) => v >= p10 && v <= p90), rm = r.reduce((a, b) => a + b, 0) / r.length;
    const want: Record<string, number> = {
      firstorder_Mean: mean, firstorder_Minimum: x[0], firstorder_Maximum: x[n - 1], firstorder_Median: pct(50),
      firstorder_10Percentile: p10, firstorder_90Percentile: p90, firstorder_InterquartileRange: pct(75) - pct(25),
      firstorder_Variance: m2, firstorder_Energy: x.reduce((s, v) => s + v * v, 0),
      firstorder_Skewness: m2 ? x.reduce((s, v) => s + (v - mean) ** 3, 0) / n / m2 ** 1.5 : 0,
      firstorder_Kurtosis: m2 ? x.reduce((s, v) => s + (v - mean) ** 4, 0) / n / m2 ** 2 : 0,
      firstorder_MeanAbsoluteDeviation: x.reduce((s, v) => s + Math.abs(v - mean), 0) / n,
      firstorder_RobustMeanAbsoluteDeviation: r.reduce((s, v) => s + Math.abs(v - rm), 0) / r.length,
      firstorder_Entropy: -ps.reduce((s, p) => s + p * Math.log2(p + 2.220446049250313e-16), 0),
      firstorder_Uniformity: ps.reduce((s, p) => s + p * p, 0),
    };
    const ours = compute(img, w, h, mask).features;
    for (const [k, v] of Object.entries(want)) t.ok(Math.abs(ours[k] - v) <= 1e-9 * Math.max(1, Math.abs(v)), `trial ${trial} ${k}: ${ours[k]} vs ${v}`);
  }
});

t.test('flat and empty regions', async (t) => {
  const img = new Uint8Array(64).fill(77), mask = new Uint8Array(64).fill(1);
  const f = compute(img, 8, 8, mask).features;
  t.equal(f.firstorder_Variance, 0);
  t.equal(f.firstorder_Skewness, 0, 'flat region: skewness 0 as PyRadiomics');
  t.equal(f.firstorder_Kurtosis, 0, 'flat region: kurtosis 0 as PyRadiomics');
  t.ok(Math.abs(f.firstorder_Entropy) < 1e-12, 'flat region: entropy 0 (up to PyRadiomics eps)');
  t.equal(f.firstorder_Uniformity, 1);
  const empty = compute(img, 8, 8, new Uint8Array(64));
  t.match(empty.error, /mask is empty/, 'empty region: refused with the reason, no features');
});
