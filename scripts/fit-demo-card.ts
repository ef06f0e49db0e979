// Fits the demonstration model card shipped in models/busi-firstorder-demo.json from the BUSI
// development split (../shared/data/busi): first-order features of the expert-outlined lesion,
// computed by sonomics' own native engine, standardised, logistic regression. Reports 5-fold
// cross-validated AUC. Run: npm run build && node dist/scripts/fit-demo-card.js [busiDir] [out]
// It is a demonstration of the model-card path, not a validated clinical model.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Matrix } from 'ml-matrix';
import LogisticRegression from 'ml-logistic-regression';
import { mean, sampleStandardDeviation } from 'simple-statistics';
import { readGrayImage } from '../core/imageio.js';
import { extractFeatures } from '../core/radiomics.js';
import { parseModelCard, type ModelCard } from '../core/risk.js';
import { seededRandom } from '../core/random.js';

const FEATURES = ['firstorder_Mean', 'firstorder_10Percentile', 'firstorder_Entropy', 'firstorder_Skewness', 'firstorder_Uniformity'];

function auc(scores: number[], labels: number[]): number {
  // Mann-Whitney U with ties counted half.
  let pos = 0, neg = 0, u = 0;
  for (let i = 0; i < scores.length; i++) {
    if (labels[i] !== 1) continue;
    pos++;
    for (let j = 0; j < scores.length; j++) if (labels[j] === 0) u += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
  }
  for (const l of labels) if (l === 0) neg++;
  return u / (pos * neg);
}

function fit(X: number[][], y: number[]) {
  const cols = X[0].length;
  const mu = Array.from({ length: cols }, (_, j) => mean(X.map((r) => r[j])));
  const sd = Array.from({ length: cols }, (_, j) => sampleStandardDeviation(X.map((r) => r[j])));
  const Z = X.map((r) => [1, ...r.map((v, j) => (v - mu[j]) / sd[j])]);
  const lr = new LogisticRegression({ numSteps: 20000, learningRate: 1e-3 });
  lr.train(new Matrix(Z), Matrix.columnVector(y));
  // The library trains one-vs-all with classifiers[i] modelling P(class != i): [0] is P(malignant).
  const w = lr.classifiers[0].weights.to1DArray();
  return { mu, sd, intercept: w[0], coef: w.slice(1) };
}

async function main() {
  const dir = resolve(process.argv[2] ?? '../shared/data/busi');
  const out = resolve(process.argv[3] ?? 'models/busi-firstorder-demo.json');
  const rows = readFileSync(join(dir, 'labels.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
  const X: number[][] = [], y: number[] = [];
  for (const r of rows) {
    const img = await readGrayImage(join(dir, r[3]));
    const mask = await readGrayImage(join(dir, r[4]));
    const v = extractFeatures(img.data, img.width, img.height, mask.data, { binWidth: 25, classes: ['firstorder'] });
    X.push(FEATURES.map((f) => v[f]));
    y.push(Number(r[2]));
  }
  // 5-fold stratified cross-validation, seeded.
  const rnd = seededRandom(20261121);
  const folds = y.map(() => 0);
  for (const cls of [0, 1]) {
    const idx = y.map((v, i) => (v === cls ? i : -1)).filter((i) => i >= 0).sort(() => rnd() - 0.5);
    idx.forEach((i, k) => { folds[i] = k % 5; });
  }
  const cvScores = new Array<number>(y.length);
  for (let f = 0; f < 5; f++) {
    const tr = y.map((_, i) => i).filter((i) => folds[i] !== f);
    const m = fit(tr.map((i) => X[i]), tr.map((i) => y[i]));
    for (let i = 0; i < y.length; i++) {
      if (folds[i] !== f) continue;
      cvScores[i] = m.intercept + X[i].reduce((s, v, j) => s + m.coef[j] * ((v - m.mu[j]) / m.sd[j]), 0);
    }
  }
  const cvAuc = auc(cvScores, y);
  const m = fit(X, y);
  const card: ModelCard = {
    format: 'sonomics.modelcard/v1',
    id: 'busi-firstorder-demo',
    version: '0.1.0',
    task: 'Breast lesion malignancy (demonstration)',
    intendedUse: 'Demonstration of the live scoring path on B-mode first-order features. Decision support only, not for diagnosis; not clinically validated.',
    inputs: { features: FEATURES.map((f) => `bmode.lesion.${f}`), settings: { binWidth: 25 } },
    scaling: { mean: m.mu, std: m.sd },
    linearPredictor: { coefficients: m.coef, intercept: m.intercept },
    link: 'logistic',
    cutoff: 0.5,
    categories: { below: 'lower risk', atOrAbove: 'higher risk' },
    performance: { auc: Number(cvAuc.toFixed(3)), cohort: `BUSI development split, ${y.length} lesions (${y.filter((v) => v === 1).length} malignant)`, validation: '5-fold stratified cross-validation, seed 20261121' },
    provenance: 'Fitted by scripts/fit-demo-card.ts (logistic regression, gradient descent, standardised features) on expert masks.',
  };
  parseModelCard(card);
  writeFileSync(out, JSON.stringify(card, null, 2) + '\n');
  console.log(`wrote ${out}: ${y.length} lesions, 5-fold CV AUC ${cvAuc.toFixed(3)}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
