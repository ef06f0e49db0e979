// Model cards (schema, cross-checks, sha256) and live scoring (terms, links, clinical inputs,
// incomplete and invalid frames, aggregation, drivers) and the pipeline's clinical inputs.
import t from 'tap';
import { quantile as quantileOf } from 'simple-statistics';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cardHash, parseModelCard, sealCard, termNames, type ModelCard } from '../core/modelcard.js';
import { loadModelCard, loadRiskModel } from '../core/models.js';
import { ClinicalInputError, codeClinical, RiskAggregator, RiskModel } from '../core/risk.js';
import { Pipeline } from '../core/pipeline.js';
import { PhantomScanner } from '../device/phantom.js';
import { testCard } from './cards.js';
import { errorOf } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'sonomics-risk-'));
const clinicalCard = () => testCard({
  inputs: {
    engine: { binWidth: 25, spacing: 'mm' }, features: ['bmode.lesion.firstorder_Mean'],
    clinical: [
      { name: 'age', type: 'integer', unit: 'years', range: [18, 100], source: 'overlay' },
      { name: 'birads', type: 'category', levels: ['3', '4a', '4b', '4c', '5'], source: 'panel' },
      { name: 'palpable', type: 'boolean', source: 'api' },
    ],
  },
  scaling: { mean: [100, 50, 2, 0.5], std: [20, 10, 1, 0.5] },
  linearPredictor: { coefficients: [0.5, 0.8, 1.2, -0.3], intercept: -0.2 },
}, ['bmode.lesion.firstorder_Mean']);

t.test('the shipped card loads, names its terms and says it is decision support', async (t) => {
  const card = loadModelCard('busi-malignancy');
  t.equal(card.id, 'busi-malignancy');
  t.match(card.intendedUse, /not for diagnosis/);
  t.equal(card.researchUseOnly, true, 'research use only');
  t.equal(card.inputs.engine.spacing, 'pixel', 'BUSI has no pixel spacing: rings in pixels');
  t.ok(card.inputs.features.every((f) => !/ring[0-9p]+mm/.test(f)), 'no mm ring in a pixel card');
  t.equal(card.sha256, cardHash(card));
  t.ok(card.performance?.auc && card.performance.aucCi, 'cross-validated AUC with CI in the card');
});

t.test('an invalid card is refused with every problem named', async (t) => {
  const good = testCard();
  const broken = { ...good, intendedUse: 'diagnoses cancer', scaling: { mean: [1, 2], std: [0, 1] }, extra: true, link: 'probit' };
  const e = errorOf(() => parseModelCard(broken));
  t.ok(e, 'refused');
  for (const part of [/intendedUse/, /scaling\/std\/0/, /extra/, /\/link/]) t.match(e?.message, part);
  t.match(errorOf(() => parseModelCard({ ...good, format: 'sonomics.modelcard/v1' }))?.message, /reads sonomics\.modelcard\/v2/);
  // Cross-checks, all in one message.
  const cross = sealCard({ ...good, scaling: { mean: [1], std: [1, 1] }, categories: { cutoffs: [0.7, 0.3], labels: ['a'] } });
  const m = errorOf(() => parseModelCard(cross))?.message ?? '';
  t.match(m, /scaling\/mean has 1 values for 2 terms/);
  t.match(m, /2 cutoffs, so it needs 3 labels/);
  t.match(m, /strictly increasing/);
  const pxInMm = testCard({}, ['bmode.ring30px.glcm_Contrast']);
  t.match(errorOf(() => parseModelCard(pxInMm))?.message, /ring in pixels but \/inputs\/engine\/spacing is mm/);
  t.match(errorOf(() => parseModelCard(testCard({}, ['bmode.ring5cm.glcm_Contrast'])))?.message, /features\/0 must match pattern/);
  const noRange = clinicalCard();
  const clin = sealCard({ ...noRange, inputs: { ...noRange.inputs, clinical: [{ name: 'age', type: 'number', source: 'overlay' } as never, ...noRange.inputs.clinical!.slice(1)] } });
  t.match(errorOf(() => parseModelCard(clin))?.message, /age\) needs a range/);
});

t.test('the sha256 is checked on load: an edited card is refused until resealed', async (t) => {
  const card = testCard();
  const edited = { ...card, linearPredictor: { ...card.linearPredictor, intercept: 3 } };
  t.match(errorOf(() => parseModelCard(edited))?.message, /sha256 does not match the card's content/);
  t.doesNotThrow(() => parseModelCard(sealCard(edited)));
  // Key order does not change the hash (canonical JSON).
  const reordered = Object.fromEntries(Object.entries(card).reverse());
  t.equal(cardHash(reordered), card.sha256);
  const path = join(dir, 'edited.json');
  writeFileSync(path, JSON.stringify(edited));
  t.throws(() => loadModelCard(path), /sha256 does not match/);
  writeFileSync(path, '{');
  t.throws(() => loadModelCard(path), /not readable JSON/);
  t.throws(() => loadModelCard('no-such-card.json'), /not found/);
});

t.test('a deep card whose model file is missing or altered is refused on load', async (t) => {
  const spec = {
    runtime: 'onnx' as const, file: 'm.onnx', sha256: { 'm.onnx': '0'.repeat(64) }, embeddingSize: 2, pca: { mean: [0, 0], components: [[1, 0]] },
    input: { width: 8, height: 8, channels: 1 as const, layout: 'nchw' as const, pane: 'bmode' as const, marginFraction: 0, scale: 1, mean: [0], std: [1] },
  };
  const card = testCard({ inputs: { engine: { binWidth: 25, spacing: 'mm' }, features: ['bmode.lesion.firstorder_Mean'], deep: spec } }, ['bmode.lesion.firstorder_Mean']);
  t.same(termNames(card), ['bmode.lesion.firstorder_Mean', 'deep.pc1']);
  t.throws(() => new RiskModel(card), /has a deep section/);
  const path = join(dir, 'deep.json');
  writeFileSync(path, JSON.stringify(card));
  await t.rejects(loadRiskModel(path), /\/inputs\/deep: .*m\.onnx/);
  writeFileSync(join(dir, 'm.onnx'), 'not the model');
  await t.rejects(loadRiskModel(path), /m\.onnx/);
});

t.test('clinical values are coded or refused with the variable and rule named', async (t) => {
  const [age, birads, palpable] = clinicalCard().inputs.clinical!;
  t.equal(codeClinical(age, 54), 54);
  t.equal(codeClinical(birads, '4b'), 2);
  t.equal(codeClinical(palpable, true), 1);
  t.equal(codeClinical(palpable, 0), 0);
  const bad = (v: typeof age, x: unknown, re: RegExp) => {
    const e = errorOf(() => codeClinical(v, x));
    t.ok(e instanceof ClinicalInputError, `${v.name}=${String(x)} refused`);
    t.match(e?.message, re);
  };
  bad(age, 12, /clinical age = 12: must be in \[18, 100\] years/);
  bad(age, 54.5, /must be an integer/);
  bad(age, '54', /must be a finite number/);
  bad(age, NaN, /must be a finite number/);
  bad(birads, '6', /must be one of 3, 4a, 4b, 4c, 5/);
  bad(palpable, 'yes', /true or false/);
});

t.test('scoring: standardised terms, logistic link, contributions; incomplete and invalid are never scored', async (t) => {
  const m = new RiskModel(clinicalCard());
  const features = { 'bmode.lesion.firstorder_Mean': 130 };
  const clinical = new Map([['age', 60], ['birads', 3], ['palpable', 1]]);
  const s = m.score(features, clinical, undefined, 7);
  const z = [(130 - 100) / 20, (60 - 50) / 10, (3 - 2) / 1, (1 - 0.5) / 0.5];
  const lp = -0.2 + 0.5 * z[0] + 0.8 * z[1] + 1.2 * z[2] - 0.3 * z[3];
  t.equal(s.status, 'ok');
  t.ok(Math.abs(s.linearPredictor - lp) < 1e-12, 'linear predictor');
  t.ok(Math.abs(s.value - 1 / (1 + Math.exp(-lp))) < 1e-12, 'probability');
  t.same(Array.from(s.contributions).map((c) => +c.toFixed(12)), [0.5 * z[0], 0.8 * z[1], 1.2 * z[2], -0.3 * z[3]].map((c) => +c.toFixed(12)));
  t.same(m.drivers(s.contributions, 2).map((d) => d.feature), ['clinical.birads', 'clinical.age']);
  const inc = m.score(features, new Map([['age', 60]]), undefined, 8);
  t.equal(inc.status, 'incomplete');
  t.same(inc.missing, ['birads', 'palpable']);
  t.ok(Number.isNaN(inc.value), 'no value: nothing is imputed');
  const nan = m.score({ 'bmode.lesion.firstorder_Mean': NaN }, clinical, undefined, 9);
  t.equal(nan.status, 'invalid');
  t.match(nan.problem, /firstorder_Mean is not finite/);
  t.match(m.score({}, clinical, undefined, 10).problem, /not computed/);
});

t.test('Cox cards give the linear predictor and a risk group; recalibration applies when the card says so', async (t) => {
  const cox = new RiskModel(testCard({ link: 'cox', categories: { cutoffs: [-0.5, 0.5], labels: ['low', 'intermediate', 'high'] } }));
  const f = { 'bmode.lesion.firstorder_Mean': 100, 'bmode.ring3mm.glcm_Contrast': 20 };
  const s = cox.score(f, new Map(), undefined, 1);
  t.equal(s.value, s.linearPredictor, 'Cox: the value is the linear predictor');
  t.equal(cox.categoryOf(-1), 'low');
  t.equal(cox.categoryOf(0), 'intermediate');
  t.equal(cox.categoryOf(0.5), 'high', 'a value at a cutoff belongs to the group above');
  const cal = new RiskModel(testCard({ calibration: { slope: 0.5, intercept: 0.1, applied: true } }));
  const c = cal.score(f, new Map(), undefined, 1);
  t.ok(Math.abs(c.value - 1 / (1 + Math.exp(-(0.1 + 0.5 * c.linearPredictor)))) < 1e-12, 'recalibrated probability');
  t.match(errorOf(() => parseModelCard(testCard({ link: 'cox', calibration: { slope: 1, intercept: 0, applied: true }, categories: { cutoffs: [0], labels: ['a', 'b'] } })))?.message,
    /cannot be applied to a Cox model/);
});

t.test('aggregation: median with a 10-90 % band over the window, warming up first, carrying model id, version and card hash', async (t) => {
  const card = testCard();
  const m = new RiskModel(card);
  const a = new RiskAggregator(m, 5, 3);
  const values = [0.2, 0.9, 0.3, 0.4, 0.35, 0.38, 0.36];
  let last;
  for (const [i, v] of values.entries()) {
    const lp = Math.log(v / (1 - v));
    last = a.add({ seq: i, status: 'ok', linearPredictor: lp, value: v, contributions: new Float64Array([0.1, -0.5]) });
    if (i < 2) t.equal(last.status, 'warming-up');
  }
  t.equal(last!.status, 'ok');
  t.equal(last!.frames, 5, 'window of 5');
  t.ok(Math.abs(last!.value - 0.36) < 1e-12, 'median of the last five (0.3, 0.4, 0.35, 0.38, 0.36)');
  t.ok(last!.band[0] <= last!.value && last!.value <= last!.band[1] && last!.band[1] - last!.band[0] < 0.1, 'band from the window, the 0.9 outlier has left');
  t.same([last!.modelId, last!.version, last!.cardSha256], [card.id, card.version, card.sha256]);
  t.equal(last!.drivers[0].feature, 'bmode.ring3mm.glcm_Contrast', 'largest |contribution| first');
  const inc = a.add({ seq: 9, status: 'incomplete', linearPredictor: NaN, value: NaN, contributions: new Float64Array(0), missing: ['age'], problem: 'clinical input missing: age' });
  t.equal(inc.status, 'incomplete');
  t.same(inc.missing, ['age']);
  t.equal(inc.category, 'incomplete');
});

t.test('the band widens to the mask\'s sensitivity: the value with the mask shrunk and grown, median of the recent measurements', async (t) => {
  const m = new RiskModel(testCard());
  const a = new RiskAggregator(m, 5, 1);
  const fs = (v: number, seq = 0) => ({ seq, status: 'ok' as const, linearPredictor: Math.log(v / (1 - v)), value: v, contributions: new Float64Array([0.1, -0.5]) });
  let s = a.add(fs(0.4));
  t.same(s.band, [0.4, 0.4], 'one frame, no sensitivity measured: a zero-width band');
  t.equal(s.maskBand, undefined);
  s = a.add(fs(0.41, 1), { radiusPx: 2, shrunk: fs(0.3), grown: fs(0.47) });
  t.same(s.frameBand, [quantileOf([0.4, 0.41], 0.1), quantileOf([0.4, 0.41], 0.9)], 'the frame band: 10-90 % of the window');
  t.equal(s.maskBand!.radiusPx, 2);
  t.ok(Math.abs(s.maskBand!.shrunk - (s.value - 0.11)) < 1e-12 && Math.abs(s.maskBand!.grown - (s.value + 0.06)) < 1e-12, 'the value shifted by each measured change');
  t.ok(Math.abs(s.band[0] - (s.value - 0.11)) < 1e-12 && Math.abs(s.band[1] - (s.value + 0.06)) < 1e-12, 'the band covers both');
  // Later measurements: the median of the recent ones; a failed variant (e.g. the mask shrunk to nothing) is not one.
  a.add(fs(0.4, 2), { radiusPx: 2, shrunk: fs(0.38), grown: fs(0.42) });
  s = a.add(fs(0.4, 3), { radiusPx: 2, shrunk: { ...fs(0.1), status: 'invalid' as const }, grown: fs(0.9) });
  t.ok(Math.abs(s.maskBand!.shrunk - s.value - quantileOf([-0.11, -0.02], 0.5)) < 1e-12, 'median of the two valid measurements');
  a.reset();
  t.equal(a.add(fs(0.4, 4)).maskBand, undefined, 'a reset forgets them');
});

t.test('the pipeline takes clinical inputs checked against the cards, and refuses bad ones without losing the others', async (t) => {
  const phantom = new PhantomScanner({ seed: 5, width: 640, height: 360 });
  const p = new Pipeline({ layout: phantom.layout, models: [new RiskModel(clinicalCard())] });
  t.same(p.clinicalVariables.map((v) => v.name), ['age', 'birads', 'palpable']);
  const seen: unknown[] = [];
  p.on('clinical', (v) => seen.push(v));
  p.setClinical({ age: 61, birads: '4a' });
  t.match(errorOf(() => p.setClinical({ age: 40, weight: 70 }))?.message, /clinical weight: no loaded model reads it \(known: age, birads, palpable\)/);
  t.match(errorOf(() => p.setClinical({ age: 140 }))?.message, /clinical age = 140: must be in \[18, 100\]/);
  t.equal(seen.length, 1, 'refused updates change nothing and are not announced');
  p.setClinical({ birads: null });
  t.equal(seen.length, 2);
  // Two cards may share a variable with different levels: each codes it by its own card.
  const a = clinicalCard();
  const other = sealCard({ ...a, id: 'other', inputs: { ...a.inputs, clinical: a.inputs.clinical!.map((v) => (v.name === 'birads' ? { ...v, levels: ['5', '4c', '4b', '4a', '3'] } : v)) } });
  const two = new Pipeline({ layout: phantom.layout, models: [new RiskModel(a), new RiskModel(parseModelCard(other))] });
  two.setClinical({ birads: '4a' });
  t.same(two['clinical'].map((m) => m.get('birads')), [1, 3], 'birads 4a is level 1 of one card and level 3 of the other');
  t.throws(() => new Pipeline({ layout: phantom.layout, models: [new RiskModel(testCard({ inputs: { engine: { binWidth: 10, spacing: 'mm' }, features: ['bmode.lesion.firstorder_Mean', 'bmode.ring3mm.glcm_Contrast'] } }))] }),
    /fitted with binWidth 10, but pipeline\.binWidth is 25/);
});

t.test('the shipped card: features at their training means give the intercept, and scoring does not mutate the card', async (t) => {
  const card: ModelCard = loadModelCard('busi-malignancy');
  const before = JSON.stringify(card);
  const m = new RiskModel(card);
  const f = Object.fromEntries(card.inputs.features.map((k, i) => [k, card.scaling.mean[i]]));
  const s = m.score(f, new Map(), undefined, 1);
  t.equal(s.status, 'ok');
  t.ok(Math.abs(s.linearPredictor - card.linearPredictor.intercept) < 1e-9, 'features at their means give the intercept');
  t.equal(JSON.stringify(card), before);
});
