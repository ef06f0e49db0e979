// Training the one-tap segmenter: near-duplicate grouping and grouped folds; the exported ONNX graph
// computes what the trained network (batch norm with its running statistics) computes, checked
// against an independent plain-JS forward pass; and `sonomics train-segmenter` is reproducible:
// the same cohort, options and seed give byte-identical networks, with a manifest that checks.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import * as ort from 'onnxruntime-node';
import { readCohort } from '../core/cohort.js';
import { DEFAULT_RECIPE, parseSegmenterManifest } from '../core/segment/manifest.js';
import { BN_EPSILON, foldBatchNorm, type NetWeights } from '../core/segment/net.js';
import { unetToOnnx } from '../core/segment/onnx.js';
import { Segmenter } from '../core/segment/segmenter.js';
import { DEFAULT_TRAINING, duplicateGroups, groupedFolds, trainingExample, trainingImage, trainUNet, type TrainingImage } from '../core/segment/train.js';
import { seededRandom } from '../core/random.js';
import { loadTrainingImages, phantomTrainingImages, REFINE_TRAINING, trainSegmenterCommand } from '../cli/train-segmenter.js';
import { writeSyntheticCohort } from './cohort-gen.js';
import { tmp } from './panel-helpers.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

t.test('near-duplicates share a group; folds keep groups whole and balance the labels', async (t) => {
  const random = seededRandom(3);
  const img = (seed: number, label: 0 | 1): TrainingImage => {
    const r = seededRandom(seed), w = 40, h = 30, data = new Uint8Array(w * h), mask = new Uint8Array(w * h);
    for (let i = 0; i < data.length; i++) data[i] = Math.floor(r() * 256);
    for (let y = 10; y < 20; y++) for (let x = 12; x < 26; x++) mask[y * w + x] = 1;
    return trainingImage(`i${seed}`, String(seed), label, { data, width: w, height: h }, mask);
  };
  const images = Array.from({ length: 20 }, (_, i) => img(i + 1, (i % 2) as 0 | 1));
  // i21 is i1 with faint noise, under the other label (as BUSI holds a few scans twice).
  const copy = img(1, 1);
  const noisy = Uint8Array.from(copy.image.data, (v) => Math.max(0, Math.min(255, v + Math.round((random() - 0.5) * 4))));
  images.push(trainingImage('i21', '21', 1, { data: noisy, width: 40, height: 30 }, copy.mask));
  const g = duplicateGroups(images);
  t.equal(g[0], g[20], 'the copy joins its original\'s group');
  t.equal(new Set(g).size, 20, 'every other image alone');
  const f = groupedFolds(images, g, 5, 9);
  t.equal(f[0], f[20], 'a group stays in one fold');
  t.same(f, groupedFolds(images, g, 5, 9), 'seeded');
  for (let k = 0; k < 5; k++) t.ok(f.filter((x) => x === k).length >= 4, `fold ${k} has ${f.filter((x) => x === k).length} images`);
  const tap = images[0].tap;
  t.equal(tap.depth, 5, 'the tap is the deepest point of the 14x10 mask: 5 px from its long sides');
  t.ok((tap.y === 14 || tap.y === 15) && tap.x >= 16 && tap.x <= 21, `on the mask's middle rows (${tap.x}, ${tap.y})`);
  t.ok(images[0].inner.length > 0 && images[0].extent === 14, 'inner half and extent');
});

t.test('training examples: negatives (empty targets) at the image\'s scale and at a lesion\'s scale, as a misplaced box shows one', async (t) => {
  // A 200x150 image with a 20x14 lesion: far taps are easy to find.
  const w = 200, h = 150, r = seededRandom(4), data = new Uint8Array(w * h), mask = new Uint8Array(w * h);
  for (let i = 0; i < data.length; i++) data[i] = 60 + Math.floor(r() * 120);
  for (let y = 68; y < 82; y++) for (let x = 90; x < 110; x++) mask[y * w + x] = 1;
  const img = trainingImage('one', '', 1, { data, width: w, height: h }, mask);
  const S = DEFAULT_RECIPE.inputSize, x = new Float32Array(S * S * 2), y = new Float32Array(S * S);
  const draws = (negativeFraction: number, boxNegativeFraction: number, lesionScaleFraction = DEFAULT_TRAINING.lesionScaleFraction) => {
    const random = seededRandom(11), o = { ...DEFAULT_TRAINING, recipe: DEFAULT_RECIPE, negativeFraction, boxNegativeFraction, lesionScaleFraction };
    return Array.from({ length: 200 }, () => {
      const d = trainingExample(img, o, random, x, y);
      return { ...d, empty: y.every((v) => v === 0) };
    });
  };
  const lesionScale = (side: number) => side >= Math.max(DEFAULT_RECIPE.minCropPx, 1.5 * img.extent) - 1e-9 && side <= Math.max(DEFAULT_RECIPE.minCropPx, 3 * img.extent) + 1e-9;
  const imageScale = (side: number) => side >= Math.min(w, h) * Math.exp(-0.25) - 1e-9 && side <= Math.min(w, h) * Math.exp(0.25) + 1e-9;
  const box = draws(0, 1);
  t.ok(box.every((d) => d.negative && d.empty), 'boxNegativeFraction 1: every example a negative with an empty target');
  t.ok(box.every((d) => lesionScale(d.crop.side)), `cropped at 1.5-3x the lesion's extent (${img.extent} px): sides ${Math.min(...box.map((d) => d.crop.side)).toFixed(1)}-${Math.max(...box.map((d) => d.crop.side)).toFixed(1)}`);
  t.ok(box.every((d) => !mask[Math.round(d.crop.cy) * w + Math.round(d.crop.cx)]), 'centred off the lesion');
  const whole = draws(1, 0);
  t.ok(whole.every((d) => d.negative && d.empty && imageScale(d.crop.side)), 'negativeFraction 1: negatives cropped at the image\'s scale');
  const pos = draws(0, 0);
  t.ok(pos.every((d) => !d.negative && !d.empty), 'no negatives: every target holds the lesion');
  const atLesion = pos.filter((d) => lesionScale(d.crop.side)).length;
  t.ok(atLesion > 0.35 * pos.length && atLesion < 0.65 * pos.length && pos.every((d) => lesionScale(d.crop.side) || imageScale(d.crop.side)),
    `the network of both passes: positives cropped as either pass sees them (${atLesion} of ${pos.length} at the lesion's scale)`);
  const refine = draws(REFINE_TRAINING.negativeFraction, 0, REFINE_TRAINING.lesionScaleFraction);
  t.ok(refine.every((d) => !d.negative && !d.empty && lesionScale(d.crop.side)), 'a refining network\'s examples: every one a lesion cropped at its scale, as pass 2 sees it');
  const mixed = draws(DEFAULT_TRAINING.negativeFraction, DEFAULT_TRAINING.boxNegativeFraction);
  const n = mixed.filter((d) => d.negative).length;
  t.ok(n > 0.1 * mixed.length && n < 0.4 * mixed.length, `the shipped fractions (${DEFAULT_TRAINING.negativeFraction} + ${DEFAULT_TRAINING.boxNegativeFraction}): ${n} negatives of ${mixed.length}`);
});

/** Plain-JS forward of the unfolded network (NCHW, batch 1): 3x3 conv, batch norm with running statistics, ReLU, U-Net wiring. */
function referenceForward(w: NetWeights, x: Float32Array, S: number): Float32Array {
  const byName = new Map(w.convs.map((c) => [c.name, c]));
  const conv = (input: Float32Array, hw: number, name: string): Float32Array => {
    const c = byName.get(name)!, { k, ci, co } = c, p = (k - 1) / 2, out = new Float32Array(co * hw * hw);
    for (let o = 0; o < co; o++) {
      for (let y = 0; y < hw; y++) {
        for (let xx = 0; xx < hw; xx++) {
          let s = 0;
          for (let kh = 0; kh < k; kh++) {
            const yy = y + kh - p;
            if (yy < 0 || yy >= hw) continue;
            for (let kw = 0; kw < k; kw++) {
              const xs = xx + kw - p;
              if (xs < 0 || xs >= hw) continue;
              for (let i = 0; i < ci; i++) s += c.w[((kh * k + kw) * ci + i) * co + o] * input[(i * hw + yy) * hw + xs];
            }
          }
          let v = k === 3 ? ((s - c.rm![o]) / Math.sqrt(c.rv![o] + BN_EPSILON)) * c.g![o] + c.b![o] : s + c.bias![o];
          if (k === 3) v = Math.max(0, v);
          out[(o * hw + y) * hw + xx] = v;
        }
      }
    }
    return out;
  };
  const pool = (a: Float32Array, ch: number, hw: number) => {
    const h2 = hw / 2, out = new Float32Array(ch * h2 * h2);
    for (let c = 0; c < ch; c++) for (let y = 0; y < h2; y++) for (let x = 0; x < h2; x++) {
      const at = (yy: number, xx: number) => a[(c * hw + yy) * hw + xx];
      out[(c * h2 + y) * h2 + x] = Math.max(at(2 * y, 2 * x), at(2 * y, 2 * x + 1), at(2 * y + 1, 2 * x), at(2 * y + 1, 2 * x + 1));
    }
    return out;
  };
  const up = (a: Float32Array, ch: number, hw: number) => {
    const h2 = hw * 2, out = new Float32Array(ch * h2 * h2);
    for (let c = 0; c < ch; c++) for (let y = 0; y < h2; y++) for (let x = 0; x < h2; x++) out[(c * h2 + y) * h2 + x] = a[(c * hw + (y >> 1)) * hw + (x >> 1)];
    return out;
  };
  const L = w.channels.length;
  let h = x, hw = S;
  const skips: Array<{ a: Float32Array; ch: number; hw: number }> = [];
  for (let l = 0; l < L - 1; l++) {
    h = conv(conv(h, hw, `e${l}a`), hw, `e${l}b`);
    skips.push({ a: h, ch: w.channels[l], hw });
    h = pool(h, w.channels[l], hw);
    hw /= 2;
  }
  h = conv(conv(h, hw, 'ma'), hw, 'mb');
  let ch = w.channels[L - 1];
  for (let l = L - 2; l >= 0; l--) {
    const u = up(h, ch, hw);
    hw *= 2;
    const s = skips[l], cat = new Float32Array(u.length + s.a.length);
    cat.set(u);
    cat.set(s.a, u.length);
    h = conv(conv(cat, hw, `d${l}a`), hw, `d${l}b`);
    ch = w.channels[l];
  }
  return conv(h, hw, 'head');
}

t.test('the exported ONNX network computes the trained network with its batch-norm statistics', async (t) => {
  const images = phantomTrainingImages(4);
  const recipe = { ...DEFAULT_RECIPE, inputSize: 16, tapSigma: 0.64 };
  const weights = await trainUNet(images, { recipe, channels: [4, 8, 8], seed: 5, epochs: 2, batchSize: 2, learningRate: [5e-3, 1e-3], negativeFraction: 0.25, boxNegativeFraction: 0, lesionScaleFraction: 0.5, lesionScaleRange: [1.5, 3] });
  t.ok(weights.convs.some((c) => c.rm && c.rm.some((v) => v !== 0)), 'the running statistics moved during training');
  const bytes = unetToOnnx(foldBatchNorm(weights), weights.channels, 16, 'test');
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  const x = new Float32Array(2 * 16 * 16);
  const r = seededRandom(11);
  for (let i = 0; i < x.length; i++) x[i] = (r() - 0.5) * 3;
  const got = (await session.run({ x: new ort.Tensor('float32', x, [1, 2, 16, 16]) })).logits.data as Float32Array;
  const want = referenceForward(weights, x, 16);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  t.ok(worst < 1e-3, `max |onnxruntime - reference| = ${worst.toExponential(2)} over ${want.length} logits`);
  // A batch of two gives each input's own logits.
  const two = new Float32Array(2 * x.length);
  two.set(x);
  two.set(x.map((v) => -v), x.length);
  const pair = (await session.run({ x: new ort.Tensor('float32', two, [2, 2, 16, 16]) })).logits.data as Float32Array;
  t.same(Array.from(pair.subarray(0, 256)), Array.from(got), 'batch of two: the first is the single run');
  await session.release();
});

t.test('sonomics train-segmenter: seeded, the same bytes twice; a manifest that loads, with fold models that know their held-out images', async (t) => {
  const dir = tmp('segment-train');
  const cohort = writeSyntheticCohort(join(dir, 'cohort'), { seed: 4, n: 12, size: 96 });
  const run = (out: string) => trainSegmenterCommand({
    cohort: cohort.csv, out: join(dir, out), seed: 3, epochs: 1, folds: 2, jobs: 2, phantomImages: 2, command: 'test',
  }, () => {});
  const [a, b] = [await run('a'), await run('b')];
  t.equal(a.model.sha256, b.model.sha256, 'the final network: the same bytes');
  t.same(a.folds.map((f) => f.sha256), b.folds.map((f) => f.sha256), 'each fold network: the same bytes');
  t.not(a.folds[0].sha256, a.folds[1].sha256, 'the folds differ');
  t.equal(sha(readFileSync(join(dir, 'a', 'unet.onnx'))), a.model.sha256, 'the manifest names the file\'s sha256');
  t.same(parseSegmenterManifest(JSON.parse(readFileSync(join(dir, 'a', 'segmenter.json'), 'utf8')), 'a'), a);
  t.equal(a.training.images, 12);
  t.equal(a.folds[0].heldOut.length + a.folds[1].heldOut.length, 12, 'every image held out once');
  const seg = await Segmenter.load({ dir: join(dir, 'a'), folds: true });
  const images = await loadTrainingImages(readCohort(cohort.csv));
  for (const im of images) t.equal(seg.foldFor(im!.sha256), a.folds.findIndex((f) => f.heldOut.includes(im!.sha256)), `${im!.id}: its held-out fold`);
  t.equal(seg.foldFor('0'.repeat(64)), undefined, 'an unknown image has no fold');
  await seg.close();
  // Box negatives: another draw of examples, so another network, and the manifest says so; a
  // manifest made without them has no such field (the shipped one's training is unchanged).
  const box = await trainSegmenterCommand({
    cohort: cohort.csv, out: join(dir, 'box'), seed: 3, epochs: 1, folds: 0, jobs: 1, phantomImages: 2, boxNegatives: 0.2, command: 'test',
  }, () => {});
  t.equal(box.training.boxNegativeFraction, 0.2, 'the manifest records the box negatives');
  t.equal(a.training.boxNegativeFraction, undefined, 'and only when used');
  t.not(box.model.sha256, a.model.sha256, 'trained on other examples: another network');
  // Refining networks (--refine): one more per model, trained on other examples; the networks of
  // both passes are the very ones trained without it, so adding refining networks to a segmenter
  // leaves its pass 1 as it was.
  const ref = await trainSegmenterCommand({
    cohort: cohort.csv, out: join(dir, 'refine'), seed: 3, epochs: 1, folds: 2, jobs: 2, phantomImages: 2, refine: true, command: 'test',
  }, () => {});
  t.equal(ref.model.sha256, a.model.sha256, 'the final network is the one trained without --refine');
  t.same(ref.folds.map((f) => f.sha256), a.folds.map((f) => f.sha256), 'and so are the fold networks');
  const onDisk = (file: string) => sha(readFileSync(join(dir, 'refine', file)));
  t.same(ref.model.refine, { file: 'unet-refine.onnx', sha256: onDisk('unet-refine.onnx') }, 'the final refining network, by its sha256');
  ref.folds.forEach((f, k) => t.same(f.refine, { file: `fold-${k + 1}-refine.onnx`, sha256: onDisk(`fold-${k + 1}-refine.onnx`) }, `fold ${k + 1}'s refining network`));
  t.not(ref.model.refine!.sha256, ref.model.sha256, 'a refining network is another network');
  t.same(ref.training.refine, { negativeFraction: 0, lesionScaleFraction: 1 }, 'the manifest says how it was trained');
  t.equal(a.training.refine, undefined, 'and only when there is one');
  t.same([a.version, ref.version], ['1.1.0', '1.2.0'], 'the recipe with refining networks is version 1.2.0');
  t.same(parseSegmenterManifest(JSON.parse(readFileSync(join(dir, 'refine', 'segmenter.json'), 'utf8')), 'refine'), ref);
  await (await Segmenter.load({ dir: join(dir, 'refine'), folds: true })).close();
  // A changed network file is refused by its sha256; a broken manifest names what is wrong.
  const { writeFileSync, cpSync } = await import('node:fs');
  cpSync(join(dir, 'a'), join(dir, 'c'), { recursive: true });
  writeFileSync(join(dir, 'c', 'unet.onnx'), Buffer.concat([readFileSync(join(dir, 'c', 'unet.onnx')), Buffer.from([0])]));
  await t.rejects(Segmenter.load({ dir: join(dir, 'c') }), /unet\.onnx does not match its sha256 in the manifest/);
  writeFileSync(join(dir, 'c', 'segmenter.json'), JSON.stringify({ ...a, recipe: { ...a.recipe, inputSize: 'big' } }));
  await t.rejects(Segmenter.load({ dir: join(dir, 'c') }), /segmenter manifest .* is invalid: \/recipe\/inputSize must be integer/);
  await t.rejects(Segmenter.load({ dir: join(dir, 'missing') }), /segmenter .*segmenter\.json: not found/);
});

t.test('train-segmenter --trial-of: some folds retrained another way, in a copy of the segmenter they vary, paired with it', async (t) => {
  const dir = tmp('segment-trial');
  const cohort = writeSyntheticCohort(join(dir, 'cohort'), { seed: 6, n: 12, size: 96 });
  const common = { cohort: cohort.csv, seed: 3, epochs: 1, folds: 2, jobs: 2, phantomImages: 2 };
  const base = await trainSegmenterCommand({ ...common, out: join(dir, 'base'), refine: true, command: 'base' }, () => {});
  const files = (m: { model: { file: string; refine?: { file: string } }; folds: Array<{ file: string; refine?: { file: string } }> }) =>
    [m.model.file, m.model.refine!.file, ...m.folds.flatMap((f) => [f.file, f.refine!.file])];
  const onDisk = (d: string, f: string) => sha(readFileSync(join(dir, d, f)));
  // The same options: the trial trains fold 1's refining network exactly as the command did.
  const same = await trainSegmenterCommand({ ...common, out: join(dir, 'same'), command: 'same', trial: { of: join(dir, 'base'), folds: [1], refineOnly: true } }, () => {});
  t.same(files(same).map((f) => onDisk('same', f)), files(base).map((f) => onDisk('base', f)), 'default options: every network byte-identical to the segmenter it varies');
  // Refining networks trained on crops of 1-3x the lesion: fold 1's refining network only is new.
  const wide = await trainSegmenterCommand({ ...common, out: join(dir, 'wide'), refineScale: [1, 3], command: 'wide', trial: { of: join(dir, 'base'), folds: [1], refineOnly: true } }, () => {});
  t.not(wide.folds[0].refine!.sha256, base.folds[0].refine!.sha256, 'fold 1\'s refining network is retrained');
  t.equal(onDisk('wide', 'fold-1-refine.onnx'), wide.folds[0].refine!.sha256, 'the manifest names its file');
  t.same({ ...wide, folds: [{ ...wide.folds[0], refine: base.folds[0].refine }, wide.folds[1]], version: base.version, trial: undefined }, { ...base, trial: undefined },
    'everything else is the segmenter it varies');
  t.equal(wide.version, `${base.version}+trial`);
  t.same(wide.trial, { command: 'wide', of: `tap-unet ${base.version}`, folds: [1], networks: 'refining', epochs: 1, seed: 3,
    refine: { negativeFraction: 0, lesionScaleFraction: 1, lesionScaleRange: [1, 3] }, minutes: wide.trial!.minutes }, 'the manifest says what was retrained, and how');
  t.same(parseSegmenterManifest(JSON.parse(readFileSync(join(dir, 'wide', 'segmenter.json'), 'utf8')), 'wide'), wide, 'and it loads');
  await (await Segmenter.load({ dir: join(dir, 'wide'), folds: true })).close();
  // Pass 1's network of fold 2, with more negatives.
  const neg = await trainSegmenterCommand({ ...common, out: join(dir, 'neg'), negatives: 0.3, command: 'neg', trial: { of: join(dir, 'base'), folds: [2, 2] } }, () => {});
  t.same(neg.folds.map((f, k) => [f.sha256 !== base.folds[k].sha256, f.refine!.sha256 !== base.folds[k].refine!.sha256]), [[false, false], [true, false]],
    'only fold 2\'s pass-1 network is retrained');
  t.match(neg.trial, { networks: 'pass 1', negativeFraction: 0.3, lesionScaleFraction: 0.5, boxNegativeFraction: 0 });
  t.same(neg.trial!.folds, [2], 'a fold named twice is trained and recorded once');
  // Refining networks trained longer than pass 1's (--refine-epochs; segmenter 1.3.0), in a full
  // training and in a trial of every model (the folds and the final one, --trial-folds 1,2,final
  // --refine-only --epochs 2): the same bytes, so the networks of such trials make up what the
  // full command makes.
  const long = await trainSegmenterCommand({ ...common, out: join(dir, 'long'), refine: true, refineEpochs: 2, command: 'long' }, () => {});
  t.equal(long.version, '1.3.0', 'refining networks trained longer: version 1.3.0');
  t.same(long.training.refine, { negativeFraction: 0, lesionScaleFraction: 1, epochs: 2 }, 'the manifest records their epochs');
  t.equal(long.training.epochs, 1, 'and pass 1\'s');
  t.same([long.model.sha256, ...long.folds.map((f) => f.sha256)], [base.model.sha256, ...base.folds.map((f) => f.sha256)], 'pass 1\'s networks are the ones trained without it');
  t.ok([long.model, ...long.folds].every((m, k) => m.refine!.sha256 !== [base.model, ...base.folds][k].refine!.sha256), 'every refining network is new');
  const longTrial = await trainSegmenterCommand({ ...common, epochs: 2, out: join(dir, 'long-trial'), command: 'long-trial',
    trial: { of: join(dir, 'base'), folds: [1, 2], final: true, refineOnly: true } }, () => {});
  t.same(files(longTrial).map((f) => onDisk('long-trial', f)), files(long).map((f) => onDisk('long', f)), 'a trial of every model with --epochs 2 --refine-only: the full command\'s bytes');
  t.same(longTrial.model.refine, long.model.refine, 'the final model\'s refining network is in its manifest');
  t.match(longTrial.trial, { folds: [1, 2], final: true, networks: 'refining', epochs: 2, refine: { negativeFraction: 0, lesionScaleFraction: 1 } });
  t.same(parseSegmenterManifest(JSON.parse(readFileSync(join(dir, 'long-trial', 'segmenter.json'), 'utf8')), 'long-trial'), longTrial, 'and it loads');
  t.equal(wide.trial!.final, undefined, 'a trial of folds only leaves the final model as it was');
  t.same(wide.model, base.model);
  // Not paired, or not a trial: refused before any training, saying why.
  const refused = (o: object, re: RegExp, what: string) => t.rejects(trainSegmenterCommand({ ...common, out: join(dir, 'x'), command: 'x', ...o }, () => {}), re, what);
  await refused({ seed: 4, trial: { of: join(dir, 'base'), folds: [1] } }, /fold 1 would hold out other images than fold 1 of .*base \(another cohort, --seed or --folds\?\)/, 'another seed: other folds');
  await refused({ folds: 3, trial: { of: join(dir, 'base'), folds: [1] } }, /has 2 fold models, --folds is 3/, 'another number of folds');
  await refused({ trial: { of: join(dir, 'base'), folds: [3] } }, /--trial-folds must name folds 1\.\.2 or final \(got 3\)/, 'a fold it does not have');
  await refused({ trial: { of: join(dir, 'base'), folds: [] } }, /--trial-folds must name folds 1\.\.2 or final \(got none\)/, 'no model at all');
  await refused({ out: join(dir, 'base'), trial: { of: join(dir, 'base'), folds: [1] } }, /--out must not be --trial-of/, 'writing over the segmenter it varies');
  await refused({ trial: { of: join(dir, 'nothing'), folds: [1] } }, /--trial-of .*nothing: .*segmenter\.json is missing/, 'no segmenter there');
  t.equal(onDisk('base', 'fold-1.onnx'), base.folds[0].sha256, 'the segmenter varied is untouched');
  // Pass 1's share of lesion-scale crops, in a full training: recorded only when not the default.
  const share = await trainSegmenterCommand({ ...common, out: join(dir, 'share'), folds: 0, lesionScaleShare: 0.25, command: 'share' }, () => {});
  t.equal(share.training.lesionScaleFraction, 0.25, 'recorded when not the default');
  t.equal(base.training.lesionScaleFraction, undefined, 'and only then');
  t.same(base.training.refine, { negativeFraction: 0, lesionScaleFraction: 1 }, 'the default crop range is not written: the shipped manifest stays as it was');
});
