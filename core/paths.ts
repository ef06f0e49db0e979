import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** The sonomics package folder (the one holding binding.gyp), from source or from dist/. */
export function packageRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'binding.gyp'))) return (cached = dir);
    dir = dirname(dir);
  }
  throw new Error('sonomics: cannot find the package root (binding.gyp) above ' + fileURLToPath(import.meta.url));
}

let version: string | undefined;

/** The sonomics version (package.json), read once. */
export function packageVersion(): string {
  return (version ??= String((JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: unknown }).version));
}
