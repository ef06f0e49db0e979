// Loading model cards from files: a bare name is looked up in the package's models/ folder. A
// card with a deep section gets its CNN loaded (core/deep.ts, imported only then, so cards
// without one never load onnxruntime or TF.js).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { ModelCardError, parseModelCard, type ModelCard } from './modelcard.js';
import { packageRoot } from './paths.js';
import { RiskModel } from './risk.js';

const packageModels = join(packageRoot(), 'models');

/** A card file: the path itself, or card.json in a model folder. */
function cardFile(p: string): string | undefined {
  if (!existsSync(p)) return undefined;
  if (statSync(p).isFile()) return resolve(p);
  const inside = join(p, 'card.json');
  return existsSync(inside) ? resolve(inside) : undefined;
}

/** A card path (file or model folder), else a card in the package's models/ folder (`busi-malignancy`). */
export function resolveModelPath(p: string): string {
  const found = cardFile(p) ?? (isAbsolute(p) ? undefined : cardFile(join(packageModels, p)) ?? cardFile(join(packageModels, `${p}.json`)));
  if (found) return found;
  throw new Error(`model card ${p} not found (looked in the current folder and ${packageModels})`);
}

export function loadModelCard(p: string): ModelCard {
  const path = resolveModelPath(p);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ModelCardError(`model card ${path}`, [`not readable JSON: ${(e as Error).message}`]);
  }
  return parseModelCard(json, `model card ${path}`);
}

export interface LoadOptions {
  /** Threads a card's CNN may use (default 1: the other core stays with the display path). */
  deepThreads?: number;
}

/** A card ready to score: parsed, checked, and its CNN (if any) loaded after its files' hashes are checked. */
export async function loadRiskModel(p: string, opts: LoadOptions = {}): Promise<RiskModel> {
  const path = resolveModelPath(p);
  const card = loadModelCard(path);
  if (!card.inputs.deep) return new RiskModel(card);
  const { loadDeepModel } = await import('./deep.js');
  try {
    return new RiskModel(card, await loadDeepModel(card.inputs.deep, dirname(path), { threads: opts.deepThreads ?? 1 }));
  } catch (e) {
    throw new ModelCardError(`model card ${path}`, [`/inputs/deep: ${(e as Error).message}`]);
  }
}
