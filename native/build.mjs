// Builds the native addon with node-gyp against the headers of the Node.js that runs this
// script (e.g. /usr/include/node for /usr/bin/node). node-gyp must never download headers:
// the edge box and CI are offline except for the npm registry.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';

const prefix = resolve(dirname(process.execPath), '..');
const headers = join(prefix, 'include', 'node', 'node.h');
if (!existsSync(headers)) {
  console.error(`sonomics: Node.js headers not found at ${headers}; install the headers of this Node.js (they ship with the official and Debian builds) so the addon builds offline.`);
  process.exit(1);
}
let gyp = process.env.npm_config_node_gyp;
if (!gyp || !existsSync(gyp)) {
  try {
    gyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    const npmDir = resolve(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm');
    gyp = join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  }
}
const args = [gyp, 'rebuild', `--nodedir=${prefix}`, '-j', 'max'];
if (process.env.SONOMICS_DEBUG_NATIVE) args.push('--debug');
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
