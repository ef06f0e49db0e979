// Loading model cards from files: a bare name is looked up in the package's models/ folder.
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { packageRoot } from './paths.js';
import { parseModelCard, type ModelCard } from './risk.js';

const packageModels = join(packageRoot(), 'models');

export function resolveModelPath(p: string): string {
  if (isAbsolute(p) || existsSync(p)) return resolve(p);
  const bundled = join(packageModels, p);
  if (existsSync(bundled)) return bundled;
  throw new Error(`model card ${p} not found (looked in the current folder and ${packageModels})`);
}

export function loadModelCard(p: string): ModelCard {
  const path = resolveModelPath(p);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`model card ${path} is not readable JSON: ${(e as Error).message}`);
  }
  return parseModelCard(json, `model card ${path}`);
}
