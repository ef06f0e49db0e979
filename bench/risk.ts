// Risk-model benchmarks (issue 6):
//   A. the risk stage without deep features: every loaded model scores one frame's features and
//      aggregates (RiskModel.score + RiskAggregator.add), per frame, on real phantom features;
//   B. `sonomics fit` on the BUSI folder (~441 cases): features, then selection + nested CV.
// Run: npm run bench:risk   (BENCH_QUICK=1: fewer repetitions; B needs ../shared/data/busi).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { quantile } from 'simple-statistics';
import { cohortFeatures, completeCases, readCohort } from '../core/cohort.js';
import { frameFeatures } from '../core/features.js';
import { fitCohort } from '../core/fit.js';
import { aucDeLong } from '../core/stats/roc.js';
import { applyLayout } from '../core/layout.js';
import { createLesionMask } from '../core/mask.js';
import { CARD_FORMAT, sealCard, type ModelCard } from '../core/modelcard.js';
import { loadModelCard } from '../core/models.js';
import { packageRoot } from '../core/paths.js';
import { computeRings, planRings } from '../core/regions.js';
import { modelRegions, RiskAggregator, RiskModel } from '../core/risk.js';
import { PhantomScanner } from '../device/phantom.js';
import { table } from './table.js';

const QUICK = process.env.BENCH_QUICK === '1';
const f3 = (x: number) => x.toFixed(3);

/** A nomogram-sized card: the shipped card's features plus two clinical inputs. */
function nomogramCard(base: ModelCard): ModelCard {
  const { sha256: _s, ...rest } = base;
  const n = base.inputs.features.length;
  return sealCard({
    ...rest, format: CARD_FORMAT, id: 'bench-nomogram',
    inputs: { ...base.inputs, clinical: [{ name: 'age', type: 'integer', range: [18, 100], source: 'overlay' }, { name: 'palpable', type: 'boolean', source: 'panel' }] },
    scaling: { mean: [...base.scaling.mean, 50, 0.5], std: [...base.scaling.std, 12, 0.5] },
    linearPredictor: { ...base.linearPredictor, coefficients: [...base.linearPredictor.coefficients, 0.4, 0.2].slice(0, n + 2) },
  });
}

async function riskStage(): Promise<void> {
  const shipped = loadModelCard('busi-malignancy');
  const models = [new RiskModel(shipped), new RiskModel(nomogramCard(shipped))];
  const phantom = new PhantomScanner({ seed: 11 });
  const { frame, truth } = phantom.frameAt(0);
  const lf = applyLayout(frame, phantom.layout);
  const pane = phantom.layout.panes.bmode;
  const plan = planRings([3, 5, 8], modelRegions(models), pane);
  const rings = computeRings(createLesionMask(truth.lesionMask.slice(), pane.rect.width, pane.rect.height), pane, plan.radiiMm, phantom.layout.sector, plan.names);
  const { features } = await frameFeatures(lf, rings, { binWidth: 25, threads: 1 });
  const clinical = new Map([['age', 57], ['palpable', 1]]);
  const aggregators = models.map((m) => new RiskAggregator(m, 15));
  const frames = QUICK ? 2000 : 20000;
  const perFrame: number[] = [];
  const one: number[][] = models.map(() => []);
  for (let i = 0; i < frames; i++) {
    const t0 = performance.now();
    for (let k = 0; k < models.length; k++) {
      const t = performance.now();
      aggregators[k].add(models[k].score(features, clinical, undefined, i));
      one[k].push(performance.now() - t);
    }
    perFrame.push(performance.now() - t0);
  }
  const us = (v: number[], q: number) => f3(quantile(v, q) * 1000);
  table(`A. Risk stage without deep features: score + aggregate per frame (${frames} frames of one phantom frame's ${Object.keys(features).length} features; target <= 200 us for all models)`,
    ['<models', 'terms', 'median us', 'p95 us', 'p99 us'], [
      ...models.map((m, k) => [m.id, String(m.terms.length), us(one[k], 0.5), us(one[k], 0.95), us(one[k], 0.99)]),
      [`all ${models.length} loaded models`, String(models.reduce((a, m) => a + m.terms.length, 0)), us(perFrame, 0.5), us(perFrame, 0.95), us(perFrame, 0.99)],
    ], ['Deep features are timed by npm run bench:deep (the CNN embedding is the cost there).']);
}

async function fitTime(): Promise<void> {
  const busi = join(packageRoot(), '..', 'shared', 'data', 'busi', 'labels.csv');
  if (!existsSync(busi)) {
    console.log(`\nB. skipped: ${busi} is missing`);
    return;
  }
  const cohort = readCohort(busi, { labelColumn: 'malignant' });
  const reps = QUICK ? 1 : 3;
  const featureS: number[] = [], fitS: number[] = [];
  let n = 0, p = 0, auc = { auc: NaN, ci: [NaN, NaN] };
  for (let r = 0; r < reps; r++) {
    let t = performance.now();
    const f = await cohortFeatures(cohort, { binWidth: 25, rings: [30, 50, 80] });
    featureS.push((performance.now() - t) / 1000);
    const d = completeCases(cohort, f, []);
    n = d.y.length;
    p = d.names.length;
    t = performance.now();
    const fit = fitCohort({ names: d.names, X: d.X, y: d.y }, { seed: 20261122 });
    fitS.push((performance.now() - t) / 1000);
    auc = aucDeLong(fit.heldOut, d.y);
  }
  const med = (v: number[]) => quantile(v, 0.5).toFixed(1);
  table(`B. sonomics fit on the BUSI folder (${cohort.cases.length} cases; ${reps} run${reps > 1 ? 's' : ''}, median; target: minutes)`,
    ['<step', 'seconds'], [
      [`features: lesion + 3 rings, 102 features each, 2 cases at a time`, med(featureS)],
      [`selection + LASSO CV + 5-fold nested CV (${n} cases, ${p} candidate features)`, med(fitS)],
      ['total', med(featureS.map((s, i) => s + fitS[i]))],
    ], [`nested cross-validated AUC of the fit (seed 20261122, as scripts/fit-busi.sh): ${auc.auc.toFixed(3)} (95 % CI ${auc.ci[0].toFixed(3)}-${auc.ci[1].toFixed(3)}, DeLong)`]);
}

await riskStage();
await fitTime();
