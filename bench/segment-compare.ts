// A candidate segmenter against the shipped one (models/segmenter), paired, on ../shared/data/busi:
// how a retrained network would change the answers before anyone ships it. Only the folds whose
// networks the candidate changed are compared, each image by the fold models of both segmenters
// that never saw it (the candidate must hold out the same images per fold). Per image:
//   A. the tap at the expert mask's deepest point (the tap `--masks tap` uses): Dice;
//   B. two taps at random points of the lesion's inner half: Dice;
//   C. three taps well outside the lesion: the share answered "no lesion found";
//   box. a tight box (the bounding box, each side moved by up to 10 % of the extent): Dice.
// Both segmenters get the same taps and boxes (seeded), in turn, so load on the machine hits both
// alike. Per fold and pooled: each mean, the paired change, and how many images got better or
// worse by more than 0.01 (A).
// Run: npm run bench:segment-compare -- DIR   (DIR: the candidate, a segmenter.json and its networks)
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { mean as ssMean } from 'simple-statistics';
import { seededRandom } from '../core/random.js';
import { dice } from '../core/segment/metrics.js';
import { Segmenter, type SegmentPrompt, type SegmentResult } from '../core/segment/segmenter.js';
import { sameHeldOut, type SegmenterFold } from '../core/segment/manifest.js';
import { innerHalf, jitteredBox, loadBusiCases, outsideTaps, tapAt } from './busi.js';
import { f1, f3, table } from './table.js';

/** A candidate that cannot be compared: say why and stop. */
function refuse(why: string): never {
  console.error(`bench:segment-compare: ${why}`);
  process.exit(1);
}

const dir = process.argv[2];
if (!dir || !existsSync(join(dir, 'segmenter.json')))
  refuse(dir ? `${join(dir, 'segmenter.json')} is missing` : 'name the candidate segmenter directory: npm run bench:segment-compare -- DIR');
const shipped = await Segmenter.load({ folds: true });
const candidate = await Segmenter.load({ dir, folds: true }).catch((e: Error) => refuse(e.message));
const A = shipped.manifest.folds, B = candidate.manifest.folds;
if (A.length !== B.length) refuse(`${dir}: ${B.length} fold models, the shipped segmenter has ${A.length}: no paired comparison`);
const odd = A.findIndex((f, k) => !sameHeldOut(f.heldOut, B[k].heldOut));
if (odd >= 0) refuse(`${dir}: fold ${odd + 1} holds out other images than the shipped fold ${odd + 1}: no paired comparison`);
const nets = (f: SegmenterFold) => `${f.sha256} ${f.refine?.sha256 ?? ''}`;
const changed = A.map((f, k) => nets(f) !== nets(B[k]));
if (!changed.includes(true)) refuse(`${dir}: its fold networks are the shipped ones: nothing to compare`);
const { cases: all } = await loadBusiCases(shipped, false);
const cases = all.filter((k) => changed[k.fold]);
console.log(`${cases.length} images of folds ${changed.flatMap((c, k) => (c ? [k + 1] : [])).join(', ')}: shipped ${shipped.manifest.version} against ${dir} (${candidate.manifest.version})`);

type Kind = 'A' | 'B' | 'C' | 'box';
const KINDS: Kind[] = ['A', 'B', 'C', 'box'];
/** Per fold, per kind: the shipped and the candidate value of each prompt, in the same order. */
const got = new Map<number, Record<Kind, [number[], number[]]>>();
const rIn = seededRandom(20261122), rOut = seededRandom(20261123), rBox = seededRandom(20261124);
for (const k of cases) {
  if (!got.has(k.fold)) got.set(k.fold, { A: [[], []], B: [[], []], C: [[], []], box: [[], []] });
  const v = got.get(k.fold)!;
  const both = async (kind: Kind, prompt: SegmentPrompt, score: (r: SegmentResult) => number) => {
    for (const [i, s] of [shipped, candidate].entries()) v[kind][i].push(score(await s.segment(k.image, prompt, { fold: k.fold })));
  };
  const overlap = (r: SegmentResult) => (r.found ? dice(r.mask, k.mask) : 0);
  await both('A', { seed: k.tap }, overlap);
  const pts = innerHalf(k);
  for (let t = 0; t < 2; t++) await both('B', { seed: tapAt(k, pts, rIn) }, overlap);
  for (const tap of outsideTaps(k, rOut, 3)) await both('C', { seed: tap }, (r) => (r.found ? 0 : 100));
  await both('box', { box: jitteredBox(k, rBox, 0) }, overlap);
}

const mean = (xs: number[]) => (xs.length ? ssMean(xs) : NaN);
const row = (name: string, v: Record<Kind, [number[], number[]]>) => [name, String(v.A[0].length), ...KINDS.flatMap((kind) => {
  const [a, b] = v[kind], fmt = kind === 'C' ? f1 : f3;
  return [`${fmt(mean(a))} -> ${fmt(mean(b))}`, `${mean(b) - mean(a) >= 0 ? '+' : ''}${fmt(mean(b) - mean(a))}`];
}), `${v.A[1].filter((x, i) => x > v.A[0][i] + 0.01).length} / ${v.A[1].filter((x, i) => x < v.A[0][i] - 0.01).length}`];
const pooled: Record<Kind, [number[], number[]]> = { A: [[], []], B: [[], []], C: [[], []], box: [[], []] };
const rows: string[][] = [];
for (const [fold, v] of [...got].sort((x, y) => x[0] - y[0])) {
  for (const kind of KINDS) for (const i of [0, 1]) pooled[kind][i].push(...v[kind][i]);
  rows.push(row(`fold ${fold + 1}`, v));
}
rows.push(row('pooled', pooled));
table('Shipped -> candidate, paired, out of sample (each image by the fold models that never saw it)',
  ['<folds', 'images', 'A Dice', 'change', 'B Dice', 'change', 'C "no lesion" %', 'change', 'box Dice', 'change', 'A better / worse'], rows, [
    'A: tap at the deepest point; B: 2 taps in the inner half; C: 3 taps well outside ("no lesion found" is the right answer); box: a tight box.',
    'better / worse: images whose A Dice changed by more than 0.01.']);
await Promise.all([shipped.close(), candidate.close()]);
