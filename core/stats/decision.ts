// Decision curve analysis: net benefit of treating the cases whose predicted probability is at
// or above a threshold probability pt, against treating everyone and treating no one.
// Vickers & Elkin (2006) "Decision curve analysis: a novel method for evaluating prediction
// models", Med Decis Making 26:565-574. NB(pt) = TP/n - FP/n * pt/(1-pt), a case counted as
// treated when p >= pt (as in the authors' dca code); treat-all NB = prevalence - (1 -
// prevalence) * pt/(1-pt); treat-none NB = 0. The default thresholds are k/100, k = 1..99
// (computed exactly as k/100, not accumulated).
import { checkLabels } from './logistic.js';

export interface DecisionPoint {
  threshold: number;
  /** Net benefit of the model. */
  model: number;
  /** Net benefit of treating every case. */
  treatAll: number;
  treatNone: 0;
}

export const DEFAULT_THRESHOLDS: readonly number[] = Array.from({ length: 99 }, (_, k) => (k + 1) / 100);

export function decisionCurve(probabilities: number[], labels: number[], thresholds: readonly number[] = DEFAULT_THRESHOLDS): DecisionPoint[] {
  const n = probabilities.length;
  if (labels.length !== n) throw new Error(`decisionCurve: ${n} probabilities but ${labels.length} labels`);
  if (n === 0) throw new Error('decisionCurve: no cases');
  const nPos = checkLabels(labels, 'decisionCurve');
  for (let i = 0; i < n; i++)
    if (!(probabilities[i] >= 0 && probabilities[i] <= 1)) throw new Error(`decisionCurve: probability ${i} is ${probabilities[i]}; must be in [0, 1]`);
  const prevalence = nPos / n;
  return thresholds.map((pt) => {
    if (!(pt > 0 && pt < 1)) throw new Error(`decisionCurve: threshold ${pt} must be in (0, 1)`);
    let tp = 0, fp = 0;
    for (let i = 0; i < n; i++) if (probabilities[i] >= pt) { if (labels[i] === 1) tp++; else fp++; }
    const odds = pt / (1 - pt);
    return { threshold: pt, model: tp / n - (fp / n) * odds, treatAll: prevalence - (1 - prevalence) * odds, treatNone: 0 as const };
  });
}
