// Model cards for tests, built and sealed by our own code.
import { CARD_FORMAT, sealCard, type ModelCard } from '../core/modelcard.js';

type Draft = Omit<ModelCard, 'sha256'>;

/** A valid sealed logistic card over the given features (default: two B-mode lesion features), with overrides. */
export function testCard(over: Partial<Draft> = {}, features = ['bmode.lesion.firstorder_Mean', 'bmode.ring3mm.glcm_Contrast']): ModelCard {
  const n = features.length + (over.inputs?.clinical?.length ?? 0) + (over.inputs?.deep?.pca.components.length ?? 0);
  const draft: Draft = {
    format: CARD_FORMAT, id: 'test-card', version: '0.0.1', task: 'test', intendedUse: 'Tests only. Decision support only, not for diagnosis.',
    inputs: { engine: { binWidth: 25, spacing: 'mm' }, features },
    scaling: { mean: new Array(n).fill(0), std: new Array(n).fill(1) },
    linearPredictor: { coefficients: new Array(n).fill(0.01), intercept: 0 },
    link: 'logistic',
    categories: { cutoffs: [0.5], labels: ['lower risk', 'higher risk'] },
    ...over,
  };
  return sealCard(draft);
}
