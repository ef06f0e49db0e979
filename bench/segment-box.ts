// One-tap segmenter from a rough box instead of a tap (the panel's "lock lesion" centre box, and
// `sonomics segment --box`), on ../shared/data/busi, out of sample (each image segmented by the fold
// model that never saw it). Boxes come from the expert mask's bounding box, seeded:
//   tight: each side moved in or out by up to 10 % of the lesion's extent along its axis;
//   loose: each side moved out by 25 % of the extent, then by up to 10 % either way (a box about
//          1.5 times the lesion).
// Each box is segmented as shipped (the mask kept inside the box grown by the recipe's
// boxMarginFraction of its larger side) and unclipped, side by side. Dice and 95 % Hausdorff
// distance (pixels) against the expert mask.
// Then boxes away from the lesion (the size of its bounding box, placed at random where they keep
// 8 px clear of it, one per image where one fits): how often a box around no lesion gets "no
// lesion found", beside a tap at the same box's centre.
// Run: npm run bench:segment-box   (BENCH_QUICK=1: every 4th image).
import { mean, quantile } from 'simple-statistics';
import { seededRandom } from '../core/random.js';
import { dice, hd95 } from '../core/segment/metrics.js';
import { Segmenter } from '../core/segment/segmenter.js';
import { jitteredBox, loadBusiCases, type BusiCase, type Box } from './busi.js';
import { f1, f3, table } from './table.js';

const seg = await Segmenter.load({ folds: true });
const { cases } = await loadBusiCases(seg, process.env.BENCH_QUICK === '1');
console.log(`${cases.length} images, segmenter ${seg.manifest.id} ${seg.manifest.version}, box margin ${seg.recipe.boxMarginFraction} of the box's larger side`);

interface Outcome { dice: number; hd95: number; ms: number; found: boolean; malignant: boolean }

async function run(k: BusiCase, box: Box, boxMargin: boolean): Promise<Outcome> {
  const r = await seg.segment(k.image, { box }, { fold: k.fold, boxMargin });
  const malignant = k.c.label === 1;
  if (!r.found) return { dice: 0, hd95: Infinity, ms: r.ms, found: false, malignant };
  return { dice: dice(r.mask, k.mask), hd95: hd95(r.mask, k.mask, k.image.width, k.image.height), ms: r.ms, found: true, malignant };
}

const row = (name: string, o: Outcome[]) => {
  const d = o.map((x) => x.dice), hd = o.map((x) => x.hd95).filter(Number.isFinite), ms = o.map((x) => x.ms);
  const mal = o.filter((x) => x.malignant).map((x) => x.dice), ben = o.filter((x) => !x.malignant).map((x) => x.dice);
  return [name, String(o.length), f3(mean(d)), f3(quantile(d, 0.5)), f3(quantile(d, 0.1)), `${f3(mean(ben))} / ${f3(mean(mal))}`,
    f1(quantile(hd, 0.5)), String(o.filter((x) => !x.found).length), f1(quantile(ms, 0.5)), f1(quantile(ms, 0.95))];
};

for (const k of cases.slice(0, 3)) await run(k, jitteredBox(k, seededRandom(1), 0), true);
const rows: string[][] = [];
for (const [name, out] of [['tight', 0], ['loose', 0.25]] as const) {
  const random = seededRandom(20261122);
  const shipped: Outcome[] = [], unclipped: Outcome[] = [];
  for (const k of cases) {
    const box = jitteredBox(k, random, out);
    shipped.push(await run(k, box, true));
    unclipped.push(await run(k, box, false));
  }
  const gain = shipped.map((s, i) => s.dice - unclipped[i].dice);
  rows.push(row(`${name} box, kept inside it (shipped)`, shipped), row(`${name} box, unclipped`, unclipped),
    ['  paired Dice change', '', f3(mean(gain)), f3(quantile(gain, 0.5)), '', `better ${gain.filter((g) => g > 0.001).length}, worse ${gain.filter((g) => g < -0.001).length}`, '', '', '', '']);
}
/** A box the lesion's size that keeps `clear` px from its bounding box, inside the image; null when none fits in 50 tries. */
function awayBox(k: BusiCase, random: () => number, clear: number): Box | null {
  const { width: w, height: h } = k.image, b = k.bbox;
  const bw = b.x1 - b.x0, bh = b.y1 - b.y0;
  for (let t = 0; t < 50 && bw < w && bh < h; t++) {
    const x0 = Math.floor(random() * (w - bw)), y0 = Math.floor(random() * (h - bh));
    if (x0 > b.x1 + clear || x0 + bw < b.x0 - clear || y0 > b.y1 + clear || y0 + bh < b.y0 - clear) return { x0, y0, x1: x0 + bw, y1: y0 + bh };
  }
  return null;
}
const away = { boxes: 0, boxNone: 0, tapNone: 0, noRoom: 0 };
const awayRandom = seededRandom(20261123);
for (const k of cases) {
  const box = awayBox(k, awayRandom, 8);
  if (!box) { away.noRoom++; continue; }
  away.boxes++;
  if (!(await seg.segment(k.image, { box }, { fold: k.fold })).found) away.boxNone++;
  if (!(await seg.segment(k.image, { seed: { x: (box.x0 + box.x1) / 2, y: (box.y0 + box.y1) / 2 } }, { fold: k.fold })).found) away.tapNone++;
}

table('Out-of-sample masks from a rough box around the expert lesion (BUSI, fold models)', [
  '<boxes', 'n', 'Dice mean', 'median', 'p10', 'benign / malignant mean', 'HD95 median px', 'not found', 'ms p50', 'p95',
], rows, ['Compare the tap at the deepest point: npm run bench:segment, section A.', 'Decision support only, not for diagnosis.']);
const pct = (n: number) => f1((100 * n) / Math.max(1, away.boxes));
table('Prompts around no lesion: a box the lesion\'s size placed 8 px or more clear of it, and a tap at its centre (one per image)', ['<prompt', 'n', '"no lesion found"', '%'], [
  ['box away from the lesion', String(away.boxes), String(away.boxNone), pct(away.boxNone)],
  ['tap at its centre', String(away.boxes), String(away.tapNone), pct(away.tapNone)],
], [`${away.noRoom} images have no room for such a box. A box says where the lesion is: the network outlines what looks most like one in it.`]);
await seg.close();
