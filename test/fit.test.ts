// `sonomics fit`, `eval`, `import-sklearn` and `seal-card` end to end, on a seeded synthetic cohort
// (test/cohort-gen.ts) whose properties are known: the lesion texture carries the label with
// overlap, and `age` carries it independently of the image. Also: bad cohorts are refused with the
// problem named, a scikit-learn pipeline imported as a card scores exactly as scikit-learn does, and
// the shipped busi-malignancy card is what `scripts/fit-busi.sh` makes from ../shared/data/busi.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cohortFeatureNames, cohortFeatures, readCohort, UNIT_SHAPE_FEATURES } from '../core/cohort.js';
import { parseModelCard, termNames, type ModelCard } from '../core/modelcard.js';
import { loadModelCard } from '../core/models.js';
import { packageRoot } from '../core/paths.js';
import { RiskModel } from '../core/risk.js';
import { testCard } from './cards.js';
import { writeCsv, writePgm, writeSyntheticCohort, type GeneratedCohort } from './cohort-gen.js';
import { CI, errorOf, fromRoot, readPgm, runCli, sharedDir } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'sonomics-fit-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

const FIT_LIMIT_MS = 150_000;
/** The shipped card's refit segments 441 images from a tap first (--masks tap). */
const BUSI_LIMIT_MS = 280_000;
const COHORT_SEED = 2, EVAL_SEED = 1002, FIT_SEED = 7;
const MISSING_AGES = 7;
const AGE_DEFS = [{ name: 'age', type: 'integer', unit: 'years', range: [18, 100], source: 'overlay' }];

const A = writeSyntheticCohort(join(root, 'a'), { seed: COHORT_SEED });
/** The external cohort: another seed, some ages left empty. */
const B = writeSyntheticCohort(join(root, 'b'), { seed: EVAL_SEED, missingAge: MISSING_AGES });
const defs = join(root, 'defs.json');
writeFileSync(defs, JSON.stringify(AGE_DEFS));

/** Area under the ROC curve by Mann-Whitney: P(score of a positive > score of a negative), ties count one half. */
function mannWhitney(scores: number[], labels: number[]): number {
  let pairs = 0, wins = 0;
  for (let i = 0; i < scores.length; i++) {
    if (labels[i] !== 1) continue;
    for (let j = 0; j < scores.length; j++) {
      if (labels[j] !== 0) continue;
      pairs++;
      wins += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
    }
  }
  return wins / pairs;
}

/** A simple CSV (no quoted cells) as header + rows. */
function readSimpleCsv(path: string): { header: string[]; rows: string[][] } {
  const [head, ...lines] = readFileSync(path, 'utf8').trimEnd().split('\n');
  return { header: head.split(','), rows: lines.map((l) => l.split(',')) };
}

const json = <T = any>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

function fit(cohort: string, out: string, extra: string[] = []) {
  return runCli(['fit', '--cohort', cohort, '--out', out, '--id', 'synthetic', '--rings', '5,8', '--seed', String(FIT_SEED), ...extra], FIT_LIMIT_MS);
}

// The shipped model's refit starts first (the longest run): scripts/fit-busi.sh's own arguments,
// with --out a temporary folder.
const busiData = resolve(packageRoot(), '..', 'shared', 'data', 'busi');
const busiOut = join(root, 'busi');

/** The `sonomics fit ...` arguments of scripts/fit-busi.sh (continued lines joined, quotes removed, "$@" dropped). */
function fitBusiArgs(): string[] {
  const script = readFileSync(fromRoot('scripts', 'fit-busi.sh'), 'utf8').replace(/\\\n/g, ' ');
  const line = script.split('\n').find((l) => /^\s*node bin\/sonomics\.js fit\s/.test(l));
  if (!line) throw new Error('scripts/fit-busi.sh has no "node bin/sonomics.js fit" line');
  const tokens = [...line.matchAll(/"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]).slice(2);
  return tokens.filter((x) => x !== '$@');
}

const busiRun = (() => {
  if (!existsSync(busiData)) return undefined;
  try {
    const args = fitBusiArgs();
    const i = args.indexOf('--cohort'), o = args.indexOf('--out');
    // The script runs in the package root: its relative paths are from there.
    const cohort = resolve(packageRoot(), args[i + 1]);
    const run = [...args];
    run[i + 1] = cohort;
    run[o + 1] = busiOut;
    return { args, cohort, result: runCli(run, BUSI_LIMIT_MS) };
  } catch (e) {
    return { args: [] as string[], cohort: '', result: Promise.reject(e as Error), error: e as Error };
  }
})();
busiRun?.result.catch(() => undefined);

// The four fits of the synthetic cohort run at the same time (two cores).
const out = { r1: join(root, 'fit-r1'), r2: join(root, 'fit-r2'), seed2: join(root, 'fit-seed2'), nom: join(root, 'fit-nomogram') };
const heldout = join(root, 'heldout.csv');
const fits = Promise.all([
  fit(A.csv, out.r1, ['--heldout', heldout]),
  fit(A.csv, out.r2),
  runCli(['fit', '--cohort', A.csv, '--out', out.seed2, '--id', 'synthetic', '--rings', '5,8', '--seed', String(FIT_SEED + 1)], FIT_LIMIT_MS),
  fit(A.csv, out.nom, ['--clinical', defs]),
]);

t.test('the synthetic cohort generator: deterministic PGM files with the designed properties', async (t) => {
  const again = writeSyntheticCohort(join(root, 'a-again'), { seed: COHORT_SEED });
  const other = writeSyntheticCohort(join(root, 'a-other'), { seed: COHORT_SEED + 1, n: 10 });
  t.equal(A.cases.length, 120);
  for (const sub of ['images', 'masks']) {
    const files = readdirSync(join(A.dir, sub)).sort();
    t.equal(files.length, 120, `${sub}: one file per case`);
    t.ok(files.every((f) => readFileSync(join(A.dir, sub, f)).equals(readFileSync(join(again.dir, sub, f)))), `${sub}: the same seed writes the same bytes`);
  }
  t.ok(readFileSync(A.csv).equals(readFileSync(again.csv)), 'the same CSV');
  t.not(readFileSync(join(A.dir, 'images', 'case_001.pgm')).toString('hex'), readFileSync(join(other.dir, 'images', 'case_001.pgm')).toString('hex'), 'another seed, another image');

  // Files: 96x96 binary PGM, every lesion non-empty, away from the border so the 8 px ring mostly fits.
  let ringInside = 0, ringAll = 0;
  for (const c of A.cases) {
    const img = readPgm(join(A.dir, c.image)), mask = readPgm(join(A.dir, c.mask));
    if (img.width !== 96 || img.height !== 96 || mask.width !== 96 || mask.height !== 96) t.fail(`${c.id}: not 96x96`);
    let area = 0, minX = 96, maxX = -1, minY = 96, maxY = -1;
    mask.data.forEach((v, k) => {
      if (!v) return;
      area++;
      const x = k % 96, y = Math.floor(k / 96);
      minX = Math.min(minX, x); maxX = Math.max(maxX, x); minY = Math.min(minY, y); maxY = Math.max(maxY, y);
    });
    if (area < 200) t.fail(`${c.id}: lesion of ${area} px`);
    // Rough share of the 8 px ring band (the bounding box grown by 8) inside the image.
    const w = maxX - minX + 17, h = maxY - minY + 17;
    ringAll += w * h;
    ringInside += (Math.min(95, maxX + 8) - Math.max(0, minX - 8) + 1) * (Math.min(95, maxY + 8) - Math.max(0, minY - 8) + 1);
  }
  t.ok(ringInside / ringAll > 0.95, `the 8 px rings mostly fit (${((100 * ringInside) / ringAll).toFixed(1)} % of their boxes inside)`);

  // Labels, ages, and the associations the fit tests rely on.
  const pos = A.cases.filter((c) => c.label === 1), neg = A.cases.filter((c) => c.label === 0);
  t.ok(pos.length >= 35 && neg.length >= 35, `both classes (${pos.length} positive, ${neg.length} negative)`);
  t.ok(A.cases.every((c) => Number.isInteger(c.age) && c.age! >= 20 && c.age! <= 90), 'ages are integers in 20-90');
  const ageAuc = mannWhitney(A.cases.map((c) => c.age!), A.cases.map((c) => c.label));
  t.ok(ageAuc > 0.7 && ageAuc < 0.95, `age alone separates the classes partly (AUC ${ageAuc.toFixed(3)})`);
  const sevAuc = mannWhitney(A.cases.map((c) => c.severity), A.cases.map((c) => c.label));
  t.ok(sevAuc > 0.8 && sevAuc < 0.99, `the image's latent severity overlaps between the classes (AUC ${sevAuc.toFixed(3)})`);
  t.equal(B.cases.filter((c) => c.age === null).length, MISSING_AGES, 'the eval cohort has empty ages');
  t.ok(new Set(B.cases.filter((c) => c.age === null).map((c) => c.label)).size === 2, 'in both classes');
});

t.test('fit: a pixel-mode Rad-score card and report from the synthetic cohort, reproducibly', async (t) => {
  const [r1, r2, seed2] = await fits;
  for (const [name, r] of Object.entries({ r1, r2, seed2 })) t.equal(r.code, 0, `fit ${name} exits 0${r.code ? `: ${r.stderr}` : ''}`);
  if (r1.code !== 0) return;
  const s = JSON.parse(r1.stdout);
  t.equal(s.n, 120, 'every case complete');
  t.equal(s.excluded, 0);
  t.equal(s.nPositive, A.cases.filter((c) => c.label === 1).length);
  t.ok(s.auc >= 0.75 && s.auc <= 1, `nested CV AUC ${s.auc} in [0.75, 1]`);
  t.ok(s.auc_ci[0] <= s.auc && s.auc <= s.auc_ci[1], `CI [${s.auc_ci}] holds the AUC`);
  t.ok(s.auc_ci[0] > 0.5, 'better than chance with confidence');
  t.ok(Number.isFinite(s.calibration_slope) && Number.isFinite(s.calibration_intercept), 'calibration slope and intercept finite');
  t.match(s.notice, /not for diagnosis/);

  // The held-out probabilities give the summary's AUC (Mann-Whitney, computed here).
  const h = readSimpleCsv(heldout);
  t.same(h.header, ['id', 'label', 'probability']);
  t.equal(h.rows.length, 120);
  t.ok(Math.abs(mannWhitney(h.rows.map((r) => +r[2]), h.rows.map((r) => +r[1])) - s.auc) < 1e-12, 'held-out probabilities give the AUC');

  const raw = json(join(out.r1, 'card.json'));
  const card = parseModelCard(raw, 'fitted card');
  t.ok(card, 'card.json passes parseModelCard');
  t.equal(card.inputs.engine.spacing, 'pixel', 'no spacing_mm: pixel engine');
  t.equal(card.inputs.engine.binWidth, 25);
  t.equal(card.researchUseOnly, true);
  t.match(card.intendedUse, /Research use only.*not for diagnosis/);
  t.equal(card.link, 'logistic');
  t.ok(card.inputs.features.length > 0, `${card.inputs.features.length} features selected`);
  t.same(card.inputs.features, s.selected, 'the summary lists the selected terms');
  const bad = card.inputs.features.filter((f) => !/^bmode\.(lesion|ring5px|ring8px)\.[a-zA-Z0-9]+_[A-Za-z0-9]+$/.test(f));
  t.same(bad, [], 'only bmode.lesion/ring5px/ring8px features');
  t.same(card.inputs.features.filter((f) => UNIT_SHAPE_FEATURES.has(f.split('.')[2])), [], 'no unit-bearing shape feature in pixel mode');
  t.notOk(card.inputs.clinical, 'no clinical variables');
  t.equal(card.performance?.auc, s.auc);
  t.equal(card.performance?.n, 120);
  t.match(card.provenance, new RegExp(`^sonomics fit: ${cohortFeatureNames('pixel', [5, 8]).length} candidate features`));
  t.match(card.provenance, new RegExp(`seed ${FIT_SEED}\\.$`));
  t.equal(card.categories.cutoffs[0], s.cutoff, 'Youden cutoff in the card');
  t.match(card.inputs.engine.note, /rings are 5\/8 pixels/);

  for (const f of ['report.html', 'report.json']) t.ok(existsSync(join(out.r1, f)), `${f} written`);
  const report = json(join(out.r1, 'report.json'));
  t.equal(report.kind, 'fit');
  t.equal(report.roc.auc, s.auc, 'report.json has the AUC');
  t.same(report.roc.ci, s.auc_ci);
  t.equal(report.model.cardSha256, card.sha256);
  t.same(report.cohort.excluded, []);
  t.match(readFileSync(join(out.r1, 'report.html'), 'utf8'), /<svg/, 'the report has its plots');

  t.ok(readFileSync(join(out.r1, 'card.json')).equals(readFileSync(join(out.r2, 'card.json'))), 'the same cohort and seed give a byte-identical card.json');
  if (seed2.code === 0) {
    const c2 = json<ModelCard>(join(out.seed2, 'card.json'));
    t.not(c2.sha256, card.sha256, 'another seed, another card');
    t.match(c2.provenance, new RegExp(`seed ${FIT_SEED + 1}\\.$`));
    t.not(c2.performance?.validation, card.performance?.validation, 'the validation names its seed');
  }
});

t.test('fit --clinical: a nomogram with age beats the Rad-score alone', async (t) => {
  const [r1, , , nom] = await fits;
  t.equal(nom.code, 0, `exits 0${nom.code ? `: ${nom.stderr}` : ''}`);
  if (nom.code !== 0 || r1.code !== 0) return;
  const s = JSON.parse(nom.stdout), rad = JSON.parse(r1.stdout);
  const card = parseModelCard(json(join(out.nom, 'card.json')), 'nomogram card');
  t.same(card.inputs.clinical, AGE_DEFS, 'the clinical definition is in the card as given');
  t.ok(termNames(card).includes('clinical.age'), 'clinical.age is a term');
  t.equal(termNames(card).at(-1), 'clinical.age', 'after the features');
  t.ok(s.selected.includes('clinical.age'));
  const k = termNames(card).indexOf('clinical.age');
  t.ok(card.linearPredictor.coefficients[k] > 0, 'older is riskier, as generated');
  t.ok(card.scaling.mean[k] > 40 && card.scaling.mean[k] < 70, `age scaled around its mean (${card.scaling.mean[k]})`);
  t.ok(s.auc > rad.auc, `nested CV AUC with age ${s.auc.toFixed(3)} > Rad-score alone ${rad.auc.toFixed(3)}`);
  const report = json(join(out.nom, 'report.json'));
  t.same(report.selection.clinical.map((x: { name: string }) => x.name), ['Rad-score', 'age'], 'the report lists the nomogram terms');
});

t.test('eval: the card unchanged on another cohort; nomogram cases with no age excluded, never imputed', async (t) => {
  const [r1, , , nom] = await fits;
  if (r1.code !== 0 || nom.code !== 0) { t.fail('the fits failed'); return; }
  const radOut = join(root, 'eval-rad'), nomOut = join(root, 'eval-nom');
  const mmCard = join(root, 'mm-card.json');
  writeFileSync(mmCard, JSON.stringify(testCard()));
  const [er, en, emm] = await Promise.all([
    runCli(['eval', '--model', join(out.r1, 'card.json'), '--cohort', B.csv, '--json', '--out', radOut], FIT_LIMIT_MS),
    runCli(['eval', '--model', join(out.nom, 'card.json'), '--cohort', B.csv, '--json', '--out', nomOut], FIT_LIMIT_MS),
    runCli(['eval', '--model', mmCard, '--cohort', B.csv, '--json'], FIT_LIMIT_MS),
  ]);
  t.equal(er.code, 0, `radiomics eval exits 0${er.code ? `: ${er.stderr}` : ''}`);
  t.equal(en.code, 0, `nomogram eval exits 0${en.code ? `: ${en.stderr}` : ''}`);

  if (er.code === 0) {
    const s = JSON.parse(er.stdout);
    for (const k of ['n', 'auc', 'auc_ci', 'calibration_slope', 'calibration_intercept']) t.ok(k in s, `summary has ${k}`);
    t.equal(s.n, 120, 'every case scored (the card reads no clinical input)');
    t.equal(s.excluded, 0);
    t.ok(s.auc_ci[0] <= s.auc && s.auc <= s.auc_ci[1], 'CI holds the AUC');
    t.ok(s.auc > 0.7, `the Rad-score carries over to another cohort (AUC ${s.auc.toFixed(3)})`);
    t.ok(Number.isFinite(s.calibration_slope) && Number.isFinite(s.calibration_intercept), 'calibration finite');
    t.equal(s.card_sha256, json(join(out.r1, 'card.json')).sha256);
    const cases = readSimpleCsv(join(radOut, 'cases.csv'));
    t.same(cases.header, ['id', 'label', 'probability', 'linear_predictor']);
    t.equal(cases.rows.length, 120, 'one row per case');
    t.same(cases.rows.map((r) => r[0]), B.cases.map((c) => c.id), 'in cohort order');
    t.same(cases.rows.map((r) => +r[1]), B.cases.map((c) => c.label), 'with the cohort labels');
    const p = cases.rows.map((r) => +r[2]);
    t.ok(p.every((x) => x >= 0 && x <= 1), 'probabilities in [0, 1]');
    t.ok(cases.rows.every((r) => Math.abs(1 / (1 + Math.exp(-+r[3])) - +r[2]) < 1e-12), 'probability = sigmoid(linear predictor): no recalibration applied');
    t.ok(Math.abs(mannWhitney(p, cases.rows.map((r) => +r[1])) - s.auc) < 1e-12, 'the AUC is the Mann-Whitney AUC of cases.csv');
    const rep = json(join(radOut, 'report.json'));
    t.equal(rep.kind, 'eval');
    t.equal(rep.roc.auc, s.auc);
    t.ok(existsSync(join(radOut, 'report.html')));

    // One case re-scored from `sonomics features` (a separate path through the engine): rings of
    // 5 and 8 mm at the default 1 mm spacing are the card's 5 and 8 px rings.
    const c = B.cases[0];
    const fr = await runCli(['features', '--image', join(B.dir, c.image), '--mask', join(B.dir, c.mask), '--rings', '5,8']);
    t.equal(fr.code, 0, `features exits 0${fr.code ? `: ${fr.stderr}` : ''}`);
    if (fr.code === 0) {
      const fo = JSON.parse(fr.stdout);
      const card = json<ModelCard>(join(out.r1, 'card.json'));
      let lp = card.linearPredictor.intercept;
      card.inputs.features.forEach((k, i) => {
        const [, region, name] = k.split('.');
        const x = region === 'lesion' ? fo[name] : fo[region.replace('px', 'mm')][name];
        lp += card.linearPredictor.coefficients[i] * ((x - card.scaling.mean[i]) / card.scaling.std[i]);
      });
      t.ok(Math.abs(1 / (1 + Math.exp(-lp)) - p[0]) < 1e-9, `${c.id}: eval's probability ${p[0]} recomputed from its features`);
    }
  }

  if (en.code === 0) {
    const s = JSON.parse(en.stdout);
    const noAge = B.cases.filter((c) => c.age === null).map((c) => c.id);
    t.equal(s.excluded, noAge.length, `the ${noAge.length} cases without an age are excluded`);
    t.equal(s.n, 120 - noAge.length);
    const cases = readSimpleCsv(join(nomOut, 'cases.csv'));
    t.equal(cases.rows.length, s.n, 'one row per scored case');
    t.same(cases.rows.map((r) => r[0]), B.cases.filter((c) => c.age !== null).map((c) => c.id), 'exactly the cases with an age: none imputed');
    t.ok(cases.rows.every((r) => +r[2] >= 0 && +r[2] <= 1), 'probabilities in [0, 1]');
    t.ok(Math.abs(mannWhitney(cases.rows.map((r) => +r[2]), cases.rows.map((r) => +r[1])) - s.auc) < 1e-12, 'Mann-Whitney AUC of cases.csv');
    const rep = json(join(nomOut, 'report.json'));
    t.same(rep.cohort.excluded.map((e: { case: string }) => e.case), noAge, 'the report names them');
    t.ok(rep.cohort.excluded.every((e: { reason: string }) => /clinical input missing: age/.test(e.reason)), 'with the reason');
  }

  t.not(emm.code, 0, 'an mm card on a cohort without spacing fails');
  t.match(emm.stderr, /reads features in mm: cohort .* needs a spacing_mm column/);
});

/** A variant of cohort A (written beside it, so the relative paths hold). */
function variant(name: string, header: string[], rows: string[][]): string {
  const p = join(A.dir, name);
  writeCsv(p, header, rows);
  return p;
}

t.test('bad cohorts and options are refused, naming the problem', async (t) => {
  const h = A.header, rows = A.rows;
  const col = (name: string) => h.indexOf(name);
  const noMask = variant('no-mask.csv', h.filter((c) => c !== 'mask'), rows.map((r) => r.filter((_, j) => j !== col('mask'))));
  const textLabels = variant('text-labels.csv', h, rows.map((r) => r.map((v, j) => (j === col('label') ? (v === '1' ? 'malignant' : 'benign') : v))));
  const dup = variant('dup.csv', h, rows.map((r, i) => (i === 5 ? [rows[2][0], ...r.slice(1)] : r)));
  const someSpacing = variant('some-spacing.csv', [...h, 'spacing_mm'], rows.map((r, i) => [...r, i % 2 ? '0.1' : '']));
  const few = variant('few.csv', h, rows.slice(0, 15));
  t.ok(new Set(rows.slice(0, 15).map((r) => r[col('label')])).size === 2, 'the small cohort has both classes');
  const badDefs = join(root, 'bad-defs.json'), noRange = join(root, 'no-range.json'), notJson = join(root, 'not-json.json');
  writeFileSync(badDefs, JSON.stringify([{ name: 'Age', type: 'int', source: 'overlay' }]));
  writeFileSync(noRange, JSON.stringify([{ name: 'age', type: 'integer', source: 'overlay' }]));
  writeFileSync(notJson, '[{"name": "age",');
  const noColumn = join(root, 'no-column.json');
  writeFileSync(noColumn, JSON.stringify([{ name: 'bmi', type: 'number', range: [10, 60], source: 'panel' }]));
  // The CSV away from its images: every relative path is wrong.
  const moved = join(root, 'moved.csv');
  copyFileSync(A.csv, moved);
  const o = join(root, 'never');
  const runs = await Promise.all([
    fit(noMask, o), fit(textLabels, o), fit(dup, o), fit(someSpacing, o), fit(few, o),
    fit(A.csv, o, ['--clinical', badDefs]), fit(A.csv, o, ['--clinical', noRange]), fit(A.csv, o, ['--clinical', notJson]),
    fit(A.csv, o, ['--clinical', noColumn]),
    runCli(['fit', '--cohort', A.csv, '--out', o, '--id', 'Synthetic']),
    runCli(['fit', '--cohort', A.csv, '--out', o, '--id', 'x', '--rings', '5,-8']),
    fit(A.csv, o, ['--rings', '8,5']),
    fit(moved, o),
  ]);
  const expect: [string, RegExp][] = [
    ['missing mask column', /missing column mask \(has id, image, label, age\)/],
    ['text labels', /line 2: label is "(benign|malignant)", not 0 or 1 \(--label-column names the 0\/1 column\)/],
    ['duplicate id', /line 7: case id case_003 appears twice/],
    ['spacing for some rows', /spacing_mm is given for 60 of 120 rows: give it for all or none/],
    ['too few cases', /only 15 complete cases: too few to fit/],
    ['invalid clinical definitions', /clinical definitions .*bad-defs\.json are invalid: .*\/0\/name must match pattern.*\/0\/type must be equal to one of the allowed values/],
    ['clinical number without range', /clinical definitions .*no-range\.json: age needs a range/],
    ['clinical definitions not JSON', /clinical definitions .*not-json\.json: not readable JSON/],
    ['clinical column missing', /has no column for clinical bmi/],
    ['--id with capitals', /--id Synthetic must be lower case/],
    ['negative ring', /--rings must be ring radii/],
    ['decreasing rings', /--rings radii must increase \(got 8,5\)/],
    ['every case unreadable', /only 0 complete cases \(120 excluded, e\.g\. case_001: cannot read image .*images\/case_001\.pgm: .*no such file.*\): too few/],
  ];
  runs.forEach((r, i) => {
    const [what, re] = expect[i];
    t.not(r.code, 0, `${what}: non-zero exit`);
    t.match(r.stderr, re, `${what}: ${r.stderr.trim().split('\n').at(-1)}`);
  });
  t.equal(runs[9].code, 2, 'option errors exit 2');
  t.notOk(existsSync(join(o, 'card.json')), 'no card written by a refused fit');
});

t.test('unreadable cases are excluded with the reason; the fit goes on', async (t) => {
  // case_004's image does not exist; case_009's mask is 64x64.
  writePgm(join(A.dir, 'masks', 'small_mask.pgm'), new Uint8Array(64 * 64).fill(255, 20 * 64, 40 * 64), 64, 64);
  const rows = A.rows.map((r) => [...r]);
  rows[3][1] = 'images/missing.pgm';
  rows[8][2] = 'masks/small_mask.pgm';
  const csv = variant('broken.csv', A.header, rows);
  const o = join(root, 'fit-broken');
  const r = await fit(csv, o);
  t.equal(r.code, 0, `fit exits 0${r.code ? `: ${r.stderr}` : ''}`);
  if (r.code !== 0) return;
  const s = JSON.parse(r.stdout);
  t.equal(s.excluded, 2);
  t.equal(s.n, 118);
  const rep = json(join(o, 'report.json'));
  t.equal(rep.cohort.excluded.length, 2);
  t.same(rep.cohort.excluded.map((e: { case: string }) => e.case), ['case_004', 'case_009'], 'the excluded cases, in cohort order');
  t.match(rep.cohort.excluded[0].reason, /cannot read image .*missing\.pgm: .*no such file/);
  t.match(rep.cohort.excluded[1].reason, /image is 96x96 but mask is 64x64/);
  t.equal(rep.cohort.n, 118);
  t.equal(json<ModelCard>(join(o, 'card.json')).performance?.n, 118, 'the card counts the cases it was fitted on');
});

// The export part is docs/model-card.md's snippet; the features are read with the csv module
// (Debian's python3-sklearn does not bring pandas).
const SKLEARN_SCRIPT = `
import csv, json
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

with open("features.csv") as f:
    header, *rows = list(csv.reader(f))
data = np.array(rows, dtype=float)
X, y = data[:, :-1], data[:, -1].astype(int)

model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000)).fit(X, y)
scaler, clf = model[0], model[-1]
export = {
    "feature_names": header[:-1],
    "scaler": {"mean_": scaler.mean_.tolist(), "scale_": scaler.scale_.tolist()},
    "classifier": {"coef_": clf.coef_.tolist(), "intercept_": clf.intercept_.tolist(),
                   "classes_": clf.classes_.tolist()},
}
with open("export.json", "w") as f:
    json.dump(export, f)
with open("proba.json", "w") as f:
    json.dump(model.predict_proba(X)[:, 1].tolist(), f)
`;

const PYTHON = '/usr/bin/python3';

t.test('import-sklearn: a scikit-learn StandardScaler + LogisticRegression scores exactly as scikit-learn', async (t) => {
  let why: string | undefined;
  try {
    execFileSync(PYTHON, ['-c', 'import sklearn, numpy'], { stdio: 'pipe', timeout: 30000 });
  } catch (e) {
    why = `${PYTHON} with scikit-learn is needed (Debian package python3-sklearn: apt-get install -y python3-sklearn): ${(e as Error).message.split('\n')[0]}`;
  }
  if (why) {
    if (CI) t.fail(why);
    else t.comment(`SKIP: ${why}`);
    return;
  }
  const dir = join(root, 'sklearn');
  const C: GeneratedCohort = writeSyntheticCohort(join(dir, 'cohort'), { seed: 77, n: 60 });
  const cohort = readCohort(C.csv);
  const f = await cohortFeatures(cohort, { binWidth: 25, rings: [] });
  t.same(f.excluded, [], 'every case has features');
  const ours = ['firstorder_Mean', 'firstorder_Variance', 'glcm_Contrast', 'glrlm_RunEntropy', 'gldm_DependenceEntropy', 'shape2D_Elongation'];
  const idx = ours.map((n) => f.names.indexOf(`bmode.lesion.${n}`));
  t.ok(idx.every((j) => j >= 0), 'the features are computed');
  const X = f.rows.map((r) => idx.map((j) => r![j]));
  t.ok(X.every((r) => r.every(Number.isFinite)), 'and finite');
  writeFileSync(join(dir, 'features.csv'), `${[...ours.map((n) => `original_${n}`), 'label'].join(',')}\n${X.map((r, i) => [...r.map(String), cohort.cases[i].label].join(',')).join('\n')}\n`);
  writeFileSync(join(dir, 'fit.py'), SKLEARN_SCRIPT);
  execFileSync(PYTHON, ['fit.py'], { cwd: dir, stdio: 'pipe', timeout: 60000 });
  const proba = json<number[]>(join(dir, 'proba.json'));
  t.equal(proba.length, 60);

  const cardPath = join(dir, 'card.json');
  const r = await runCli(['import-sklearn', '--in', join(dir, 'export.json'), '--out', cardPath, '--id', 'imported']);
  t.equal(r.code, 0, `import-sklearn exits 0${r.code ? `: ${r.stderr}` : ''}`);
  if (r.code !== 0) return;
  const card = loadModelCard(cardPath);
  t.same(card.inputs.features, ours.map((n) => `bmode.lesion.${n}`), 'original_<class>_<Feature> -> bmode.lesion.<class>_<Feature>');
  t.equal(JSON.parse(r.stdout).sha256, card.sha256);
  t.match(card.intendedUse, /not for diagnosis/);
  const model = new RiskModel(card);
  let worst = 0;
  X.forEach((row, i) => {
    const features = Object.fromEntries(card.inputs.features.map((k, j) => [k, row[j]]));
    const s = model.score(features, new Map(), undefined, i);
    worst = Math.max(worst, s.status === 'ok' ? Math.abs(s.value - proba[i]) : Infinity);
  });
  t.ok(worst < 1e-9, `RiskModel's probabilities equal scikit-learn's predict_proba (largest difference ${worst.toExponential(2)})`);

  // Names: pane and region prefixes; refused names and classes.
  const base = json<any>(join(dir, 'export.json'));
  const two = (names: string[], classes: unknown[] = [0, 1]) => ({
    feature_names: names, scaler: { mean_: [1, 2], scale_: [1, 1] }, classifier: { coef_: [[0.5, -0.25]], intercept_: [0.1], classes_: classes },
  });
  const cases: { name: string; ex: unknown; args?: string[]; ok?: string[]; err?: RegExp }[] = [
    { name: 'prefixes', ex: two(['bmode_ring5px_original_glcm_Contrast', 'ring8px_original_firstorder_Mean']), args: ['--spacing', 'pixel'],
      ok: ['bmode.ring5px.glcm_Contrast', 'bmode.ring8px.firstorder_Mean'] },
    { name: 'contrast pane, mm ring', ex: two(['contrast_ring3mm_original_glszm_ZonePercentage', 'original_shape2D_Sphericity']), args: ['--pane', 'contrast'],
      ok: ['contrast.ring3mm.glszm_ZonePercentage', 'contrast.lesion.shape2D_Sphericity'] },
    { name: 'wavelet', ex: two(['wavelet-LLH_glcm_Contrast', 'original_firstorder_Mean']), err: /feature_names\[0\] "wavelet-LLH_glcm_Contrast" is not a PyRadiomics original-image feature/ },
    { name: 'diagnostics', ex: two(['original_firstorder_Mean', 'diagnostics_Image-original_Mean']), err: /feature_names\[1\] "diagnostics_Image-original_Mean" is not/ },
    { name: 'unknown feature', ex: two(['original_glcm_Bogus', 'original_firstorder_Mean']), err: /feature_names\[0\] original_glcm_Bogus: glcm_Bogus is not a 2D feature/ },
    { name: 'unknown dotted feature', ex: two(['bmode.lesion.glcm_Bogus', 'original_firstorder_Mean']), err: /feature_names\[0\].*glcm_Bogus/ },
    { name: 'deprecated feature', ex: two(['original_firstorder_StandardDeviation', 'original_firstorder_Mean']), err: /feature_names\[0\].*firstorder_StandardDeviation/ },
    { name: 'string classes', ex: two(['original_firstorder_Mean', 'original_glcm_Contrast'], ['a', 'b']), err: /classifier\.classes_ is \["a","b"\]: the positive class must be 1/ },
    { name: 'multiclass', ex: { ...base, classifier: { ...base.classifier, coef_: [base.classifier.coef_[0], base.classifier.coef_[0]] } }, err: /coef_ must be one row of 6 numbers/ },
  ];
  const runs = await Promise.all(cases.map((c, i) => {
    const p = join(dir, `ex-${i}.json`);
    writeFileSync(p, JSON.stringify(c.ex));
    return runCli(['import-sklearn', '--in', p, '--out', join(dir, `card-${i}.json`), '--id', 'imported', ...(c.args ?? [])]);
  }));
  runs.forEach((r, i) => {
    const c = cases[i];
    if (c.ok) {
      t.equal(r.code, 0, `${c.name}: imported${r.code ? `: ${r.stderr}` : ''}`);
      if (r.code === 0) t.same(loadModelCard(join(dir, `card-${i}.json`)).inputs.features, c.ok, `${c.name}: ${c.ok.join(', ')}`);
    } else {
      t.equal(r.code, 2, `${c.name}: refused`);
      t.match(r.stderr, c.err!, `${c.name}: ${r.stderr.trim()}`);
      t.notOk(existsSync(join(dir, `card-${i}.json`)), `${c.name}: no card written`);
    }
  });
});

t.test('seal-card: an edited card is refused until resealed; an invalid card is not sealed', async (t) => {
  const [r1] = await fits;
  if (r1.code !== 0) { t.fail('the fit failed'); return; }
  const p = join(root, 'edited.json');
  copyFileSync(join(out.r1, 'card.json'), p);
  const card = json<ModelCard>(p);
  writeFileSync(p, JSON.stringify({ ...card, task: 'Edited task' }, null, 2));
  t.match(errorOf(() => loadModelCard(p))?.message, /sha256 does not match the card's content.*seal-card/, 'an edited card is refused');
  const r = await runCli(['seal-card', p]);
  t.equal(r.code, 0, `seal-card exits 0${r.code ? `: ${r.stderr}` : ''}`);
  const sealed = loadModelCard(p);
  t.equal(sealed.task, 'Edited task', 'the edit is kept');
  t.not(sealed.sha256, card.sha256);
  t.equal(JSON.parse(r.stdout).sha256, sealed.sha256);

  const bad = join(root, 'invalid.json');
  const n = card.linearPredictor.coefficients.length;
  writeFileSync(bad, JSON.stringify({ ...card, linearPredictor: { ...card.linearPredictor, coefficients: [...card.linearPredictor.coefficients, 1] } }, null, 2));
  const before = readFileSync(bad);
  const rb = await runCli(['seal-card', bad]);
  t.not(rb.code, 0, 'an invalid card is not sealed');
  t.match(rb.stderr, new RegExp(`/linearPredictor/coefficients has ${n + 1} values for ${n} terms`));
  t.ok(readFileSync(bad).equals(before), 'the file is left unchanged');
  const rm = await runCli(['seal-card', join(root, 'no-such-card.json')]);
  t.not(rm.code, 0);
  t.match(rm.stderr, /no-such-card\.json: not readable JSON/);
});

t.test('the shipped busi-malignancy card is what scripts/fit-busi.sh fits from ../shared/data/busi', async (t) => {
  const dir = sharedDir(t, 'data', 'busi');
  if (!dir || !busiRun) return;
  if ('error' in busiRun) { t.error(busiRun.error, 'scripts/fit-busi.sh parsed'); return; }
  t.equal(busiRun.cohort, join(dir, 'labels.csv'), 'the script fits ../shared/data/busi/labels.csv');
  for (const a of ['--label-column', 'malignant', '--id', 'busi-malignancy', '--seed', '--out']) t.ok(busiRun.args.includes(a), `the script passes ${a}`);
  const r = await busiRun.result;
  t.equal(r.code, 0, `fit exits 0${r.code ? `: ${r.stderr}` : ''}`);
  if (r.code !== 0) return;
  const shipped = fromRoot('models', 'busi-malignancy', 'card.json');
  const refit = readFileSync(join(busiOut, 'card.json'));
  t.ok(refit.equals(readFileSync(shipped)), 'card.json is byte-identical to models/busi-malignancy/card.json');
  const card = parseModelCard(JSON.parse(refit.toString('utf8')));
  t.ok(card.performance!.auc! >= 0.78 && card.performance!.auc! <= 1, `nested CV AUC ${card.performance!.auc} in [0.78, 1]`);
  // Fitted on tap masks: a case whose tap finds no lesion is excluded (a handful of 441).
  const { excluded } = JSON.parse(r.stdout) as { excluded: number };
  t.ok(excluded <= 5, `${excluded} cases without a lesion at the tap`);
  t.equal(card.performance?.n, 441 - excluded);
  t.match(card.provenance, /Features from masks segmented from one tap/, 'fitted on tap masks, and it says so');
  t.equal(card.inputs.engine.spacing, 'pixel');
  t.equal(JSON.parse(r.stdout).auc, card.performance!.auc);
});
