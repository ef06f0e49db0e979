// One-tap segmentation with the shipped segmenter (models/segmenter): `sonomics segment` on BUSI
// images and its errors, a phantom lesion from a tap, "no lesion found" away from lesions, and
// `eval` / `fit` with `--masks tap` (out-of-fold masks for the segmenter's own training images).
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import t from 'tap';
import { readCohort } from '../core/cohort.js';
import { readGrayImage } from '../core/imageio.js';
import { cropRows } from '../core/layout.js';
import { packageRoot } from '../core/paths.js';
import { createLesionMask, maskStats } from '../core/mask.js';
import { dice } from '../core/segment/metrics.js';
import { deepestPoint, Segmenter } from '../core/segment/segmenter.js';
import { PhantomScanner } from '../device/phantom.js';
import { evalCommand, fitCommand } from '../cli/fit.js';
import { writeCsv } from './cohort-gen.js';
import { runCli, sharedDir } from './helpers.js';
import { tmp } from './panel-helpers.js';

const busi = sharedDir(t, 'data', 'busi');
const { onnx } = onnxProto;

/** A small cohort CSV of BUSI rows (absolute paths), benign and malignant alike. */
function busiSubset(dir: string, n: number): string {
  const c = readCohort(join(busi!, 'labels.csv'), { labelColumn: 'malignant' });
  const pick = [...c.cases.filter((x) => x.label === 0).slice(0, n / 2), ...c.cases.filter((x) => x.label === 1).slice(0, n / 2)];
  mkdirSync(dir, { recursive: true });
  const csv = join(dir, 'subset.csv');
  writeCsv(csv, ['id', 'image', 'mask', 'label'], pick.map((x) => [x.id, x.image, x.mask, String(x.label)]));
  return csv;
}

t.test('sonomics segment: a BUSI lesion from a tap or a box, as a PNG mask and JSON; no lesion found away from it', { skip: !busi }, async (t) => {
  const dir = tmp('segment-cli');
  const image = join(busi!, 'images', 'benign_002.png');
  const expert = await readGrayImage(join(busi!, 'masks', 'benign_002_mask.png'));
  const tap = deepestPoint(expert.data, expert.width, expert.height);
  const out = join(dir, 'mask.png');
  const r = await runCli(['segment', '--image', image, '--seed', `${tap.x},${tap.y}`, '--out', out, '--json']);
  t.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  t.match(s, { found: true, width: expert.width, height: expert.height, out, segmenter: { id: 'tap-unet', sha256: /^[0-9a-f]{64}$/, refineSha256: /^[0-9a-f]{64}$/ }, notice: /not for diagnosis/ });
  const mask = await readGrayImage(out);
  t.same([mask.width, mask.height], [expert.width, expert.height], 'the mask has the image\'s size');
  t.ok(mask.data.every((v) => v === 0 || v === 255), 'a 0/255 mask');
  const d = dice(mask.data, expert.data);
  t.ok(d > 0.8, `Dice against the expert mask ${d.toFixed(3)} (an image the shipped model was trained on: a sanity check, not the benchmark)`);
  t.equal(s.area, mask.data.filter((v) => v).length, 'area as written');
  // A rough box around the expert lesion.
  const row = readFileSync(join(busi!, 'labels.csv'), 'utf8').split('\n').find((l) => l.startsWith('benign_002,'))!.split(',');
  const [x0, y0, x1, y1] = row.slice(9, 13).map(Number);
  const rb = await runCli(['segment', '--image', image, '--box', `${x0 - 10},${y0 - 10},${x1 + 10},${y1 + 10}`, '--out', join(dir, 'box.png')]);
  t.equal(rb.code, 0, rb.stderr);
  t.match(rb.stdout, /box\.png: lesion of \d+ pixels, box .* Decision support only, not for diagnosis\./);
  t.ok(dice((await readGrayImage(join(dir, 'box.png'))).data, expert.data) > 0.75, 'the box gives the lesion too');
  // Away from any lesion: the black margin at the image's corner.
  const far = await runCli(['segment', '--image', image, '--seed', '3,3', '--out', join(dir, 'none.png'), '--json']);
  t.equal(far.code, 3, 'exit status 3: no lesion found');
  t.match(JSON.parse(far.stdout), { found: false, reason: /no lesion found/ });
});

t.test('sonomics segment: bad input gets a clear error and exit status 2', async (t) => {
  const dir = tmp('segment-bad');
  const img = join(dir, 'img.pgm');
  const { writePgm } = await import('./cohort-gen.js');
  writePgm(img, new Uint8Array(40 * 30).fill(90), 40, 30);
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(dir, 'broken.pgm'), Buffer.concat([Buffer.from('P5\n40 30\n255\n'), Buffer.alloc(10)]));
  const cases: Array<[string[], RegExp]> = [
    [['--image', img, '--seed', '40,3', '--out', join(dir, 'm.png')], /segment: the seed \(40, 3\) lies outside the 40x30 image/],
    [['--image', img, '--seed=-1,3', '--out', join(dir, 'm.png')], /lies outside/],
    [['--image', img, '--box', '10,10,5,20', '--out', join(dir, 'm.png')], /the box \(10,10\)-\(5,20\) is empty/],
    [['--image', img, '--seed', '3', '--out', join(dir, 'm.png')], /--seed 3 must be two numbers X,Y/],
    [['--image', img, '--seed', '3,a', '--out', join(dir, 'm.png')], /--seed 3,a must be two numbers X,Y/],
    [['--image', img, '--seed', '3,3', '--box', '1,1,5,5', '--out', join(dir, 'm.png')], /give either --seed X,Y or --box/],
    [['--image', img, '--out', join(dir, 'm.png')], /give either --seed X,Y or --box/],
    [['--image', img, '--seed', '3,3'], /--out MASK\.png is required/],
    [['--image', join(dir, 'nope.png'), '--seed', '3,3', '--out', join(dir, 'm.png')], /cannot read image .*nope\.png/],
    [['--image', join(dir, 'broken.pgm'), '--seed', '3,3', '--out', join(dir, 'm.png')], /cannot read image .*broken\.pgm/],
    [['--image', img, '--seed', '3,3', '--out', join(dir, 'm.png'), '--segmenter', join(dir, 'nowhere')], /segmenter .*segmenter\.json: not found/],
  ];
  for (const [args, re] of cases) {
    const r = await runCli(['segment', ...args]);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.match(r.stderr, re, re.source);
  }
});

t.test('a phantom lesion from one tap; a flat or far region gives no lesion', async (t) => {
  const seg = await Segmenter.load();
  t.teardown(() => seg.close());
  for (const seed of [42, 7]) {
    const ph = new PhantomScanner({ seed });
    const { data, truth } = ph.render(30);
    const r = ph.layout.panes.bmode.rect;
    const pane = cropRows(data, ph.layout.width, r);
    const tap = deepestPoint(truth.lesionMask, r.width, r.height);
    const res = await seg.segment({ data: pane, width: r.width, height: r.height }, { seed: tap });
    t.ok(res.found, `seed ${seed}: found`);
    if (!res.found) continue;
    const d = dice(res.mask, truth.lesionMask);
    t.ok(d > 0.85, `seed ${seed}: Dice against the phantom's truth ${d.toFixed(3)}`);
    // A box prompt: the mask stays inside the box grown by the recipe's margin, even a box that
    // holds only the lesion's left half (its bounding box halved).
    const { x0, y0, x1, y1 } = maskStats(createLesionMask(truth.lesionMask, r.width, r.height));
    const image = { data: pane, width: r.width, height: r.height };
    const full = await seg.segment(image, { box: { x0: x0 - 4, y0: y0 - 4, x1: x1 + 4, y1: y1 + 4 } });
    t.ok(full.found && dice(full.mask, truth.lesionMask) > 0.85, `seed ${seed}: a box around the lesion gives it`);
    const half = { x0, y0, x1: (x0 + x1) / 2, y1 };
    const m = seg.recipe.boxMarginFraction * Math.max(half.x1 - half.x0 + 1, half.y1 - half.y0 + 1);
    const hr = await seg.segment(image, { box: half });
    t.ok(hr.found, `seed ${seed}: the half box finds the lesion`);
    if (hr.found) {
      t.ok(hr.bbox.x1 <= half.x1 + m && hr.bbox.x0 >= half.x0 - m && hr.bbox.y0 >= half.y0 - m && hr.bbox.y1 <= half.y1 + m,
        `seed ${seed}: the mask (x ${hr.bbox.x0}..${hr.bbox.x1}) stays within the half box grown by ${m.toFixed(1)} px (x ${half.x0}..${half.x1})`);
      t.ok(hr.bbox.x1 < x1 - 2, 'so it leaves the lesion\'s right side out');
    }
  }
  const flat = await seg.segment({ data: new Uint8Array(200 * 150).fill(128), width: 200, height: 150 }, { seed: { x: 100, y: 75 } });
  t.equal(flat.found, false, 'a flat gray image holds no lesion');
  // The reason names the prompt the user gave: the overlay shows it as it comes. A blank frame
  // (no probe contact: all black) holds no lesion in a box either. (A box says where a lesion is,
  // so in tissue the network outlines what looks most like one: bench:segment-box measures how
  // often a box around no lesion still gets "no lesion found".)
  const blank = { data: new Uint8Array(200 * 150), width: 200, height: 150 };
  for (const prompt of [{ seed: { x: 100, y: 75 } }, { box: { x0: 60, y0: 40, x1: 140, y1: 110 } }]) {
    const r = await seg.segment(blank, prompt);
    const what = 'box' in prompt ? 'box' : 'tap';
    t.equal(r.found, false, `a blank frame holds no lesion (a ${what})`);
    if (!r.found) t.match(r.reason, new RegExp(`^no lesion found ${what === 'box' ? 'in the box' : 'at the tap'}: `), `the reason names the ${what}: "${r.reason}"`);
  }
});

t.test('a refining network runs pass 2, and only pass 2; a manifest that gives one must give one per fold', async (t) => {
  // The shipped network, and as its "refining" network the same one with its head's bias raised
  // by 1000: it calls every pixel lesion, so pass 2's mask is its whole crop (a filled square).
  const shipped = join(packageRoot(), 'models', 'segmenter');
  const m = JSON.parse(readFileSync(join(shipped, 'segmenter.json'), 'utf8'));
  const model = onnx.ModelProto.decode(readFileSync(join(shipped, m.model.file)));
  const bias = model.graph!.initializer!.find((i) => i.name === 'head.bias')!;
  const b = new Float32Array(new Uint8Array(bias.rawData!).buffer.slice(0));
  b[0] += 1000;
  bias.rawData = new Uint8Array(b.buffer);
  const refine = onnx.ModelProto.encode(model).finish();
  const dir = tmp('segment-refine');
  cpSync(join(shipped, m.model.file), join(dir, m.model.file));
  writeFileSync(join(dir, 'unet-refine.onnx'), refine);
  const sha = createHash('sha256').update(refine).digest('hex');
  writeFileSync(join(dir, 'segmenter.json'), JSON.stringify({ ...m, model: { ...m.model, refine: { file: 'unet-refine.onnx', sha256: sha } }, folds: [] }));
  const seg = await Segmenter.load({ dir });
  t.teardown(() => seg.close());
  const ph = new PhantomScanner({ seed: 42, lesion: { radiusMm: 3 } });
  const { data, truth } = ph.render(30);
  const r = ph.layout.panes.bmode.rect;
  const image = { data: cropRows(data, ph.layout.width, r), width: r.width, height: r.height };
  const tap = deepestPoint(truth.lesionMask, r.width, r.height);
  const plain = await seg.segment(image, { seed: tap }, { refine: false });
  t.ok(plain.found && dice(plain.mask, truth.lesionMask) > 0.85, 'refine: false runs both passes on the network of both passes');
  const res = await seg.segment(image, { seed: tap });
  t.ok(res.found, 'found');
  if (res.found && plain.found) {
    const side = res.bbox.x1 - res.bbox.x0 + 1, extent = Math.max(plain.bbox.x1 - plain.bbox.x0 + 1, plain.bbox.y1 - plain.bbox.y0 + 1);
    t.equal(res.area, side * (res.bbox.y1 - res.bbox.y0 + 1), 'pass 2 ran the refining network: its whole crop is the mask');
    t.ok(side > 1.5 * extent && side < 3 * extent && side < r.height / 2,
      `a crop of ${side} px, about ${seg.recipe.contextFactor} x the lesion's ${extent} px, not the pane (${r.width} x ${r.height}): pass 1 ran the other network`);
  }
  // Fold models must run the passes the shipped model runs.
  const plainFolds = m.folds.map(({ refine: _, ...f }: { refine?: unknown }) => f);
  writeFileSync(join(dir, 'segmenter.json'), JSON.stringify({ ...m, model: { ...m.model, refine: { file: 'unet-refine.onnx', sha256: sha } }, folds: plainFolds }));
  await t.rejects(Segmenter.load({ dir }), /segmenter manifest .* is invalid: \/folds\/0\/refine is missing, but \/model has a refining network/);
  const { refine: __, ...plainModel } = m.model;
  writeFileSync(join(dir, 'segmenter.json'), JSON.stringify({ ...m, model: plainModel, folds: [{ ...plainFolds[0], refine: { file: 'unet-refine.onnx', sha256: sha } }] }));
  await t.rejects(Segmenter.load({ dir }), /segmenter manifest .* is invalid: \/folds\/0\/refine is given, but \/model has no refining network/);
  writeFileSync(join(dir, 'segmenter.json'), JSON.stringify({ ...m, model: { ...m.model, refine: { file: 'unet-refine.onnx', sha256: '0'.repeat(64) } }, folds: [] }));
  await t.rejects(Segmenter.load({ dir }), /unet-refine\.onnx does not match its sha256 in the manifest/);
});

t.test('eval and fit --masks tap: masks segmented from a tap at each cohort mask\'s deepest point, out of fold for the training images', { skip: !busi }, async (t) => {
  const dir = tmp('segment-eval');
  const csv = busiSubset(dir, 40);
  const logs: string[] = [];
  const s = await evalCommand({ model: 'busi-malignancy', cohort: csv, masks: 'tap', command: 'test' }, (l) => logs.push(l));
  t.match(s.masks, /masks segmented from one tap at each cohort mask's deepest point .* 40 of 40 images were in its training set and got the fold model that never saw them/);
  t.ok(s.n >= 36 && Number.isFinite(s.auc), `n ${s.n}, AUC ${s.auc.toFixed(3)}`);
  const e = await evalCommand({ model: 'busi-malignancy', cohort: csv, command: 'test' }, () => {});
  t.equal(e.masks, 'the cohort\'s masks');
  t.not(s.auc, e.auc, 'different masks, different features');
  // fit needs enough cases for LASSO to confirm a signal: 120 of them.
  const f = await fitCommand({
    cohort: busiSubset(join(dir, 'fit-cohort'), 120), out: join(dir, 'fit'), id: 'tap-test', version: '1.0.0', task: 't', seed: 3, folds: 3, outerFolds: 3, binWidth: 25, pane: 'bmode',
    researchUseOnly: true, masks: 'tap', command: 'test',
  }, () => {});
  const card = JSON.parse(readFileSync(f.card, 'utf8'));
  t.match(card.provenance, /Features from masks segmented from one tap/, 'the card says where its masks came from');
  const bad = await runCli(['eval', '--model', 'busi-malignancy', '--cohort', csv, '--masks', 'drawn']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /eval: --masks must be cohort .* or tap .*, not "drawn"/);
});
