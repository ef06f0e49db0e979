// The sonomics command line. Commands that report results take --json and then print exactly
// one JSON document on stdout (features always does); logs go to stderr.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, loadConfig, resolveConfig, type SonomicsConfig } from '../core/config.js';
import { packageRoot } from '../core/paths.js';
import { DECISION_SUPPORT_NOTICE } from '../core/risk.js';
import { runDemo, type DemoSummary } from './demo.js';
import type { FeaturesOptions } from './features.js';

export class UsageError extends Error {}

const GLOBAL_HELP = `sonomics - live ultrasound radiomics at the bedside. ${DECISION_SUPPORT_NOTICE}

Usage: sonomics <command> [options]

Commands:
  demo        Run the built-in phantom scanner through the whole pipeline and serve the overlay
  features    PyRadiomics' 2D features of an image and mask (and rings around it) as JSON

Options:
  sonomics --version          print the version
  sonomics <command> --help   help for a command
  --config FILE               (with demo) configuration file, JSON or YAML; defaults need none

Run 'sonomics <command> --help' for the options of a command.
`;

const DEMO_HELP = `Usage: sonomics demo [options]

Runs the phantom scanner (CEUS dual view, moving lesion, contrast bolus) through layout,
tracking, regions, features and risk models, and serves the live overlay in the browser.

Options:
  --port N        overlay HTTP/WebSocket port (default 8080; 0 picks a free port)
  --host ADDR     bind address (default 127.0.0.1; loopback only)
  --frames N      stop after N frames and print a summary
  --seed N        phantom seed (default 42)
  --fps N         phantom frame rate (default 30)
  --headless      serve without opening a browser
  --json          print the summary as one JSON document on stdout (logs on stderr)
  --config FILE   configuration file (JSON or YAML)
`;

const FEATURES_HELP = `Usage: sonomics features --image IMG --mask MASK [options]

Computes PyRadiomics' 2D features of the ROI (every non-zero mask pixel) and prints one JSON
object on stdout: "<class>_<Feature>": value, with PyRadiomics' names and null for NaN. With
--rings, one more key per ring ("ring3mm", ...) holds the ring's features, or {"error": ...}
when the ring fails PyRadiomics' mask checks. Images: binary 8-bit PGM (P5), PNG, JPEG, ...
(colour is converted to gray). See docs/radiomics.md.

Options:
  --image FILE         the image
  --mask FILE          the mask, same size as the image; every non-zero pixel is ROI
  --bin-width W        fixed bin width (default 25)
  --bin-count N        fixed number of bins instead of a bin width
  --params FILE        PyRadiomics parameter file (YAML or JSON): settings and feature classes
  --spacing SX,SY      pixel spacing in mm, x = columns (default 1,1)
  --rings R1,R2,...    also the rings around the ROI, radii in mm, increasing (e.g. 3,5,8)
  --ibsi               follow IBSI where PyRadiomics deviates
  --all                add PyRadiomics' deprecated features to the 102 default ones

--bin-width, --bin-count and --params exclude each other.
Exit codes: 0 done; 1 an input cannot be read, sizes differ, or the ROI fails PyRadiomics'
checks; 2 bad options or a parameter file sonomics cannot honour.
`;

const featuresOptions = {
  image: { type: 'string' }, mask: { type: 'string' }, 'bin-width': { type: 'string' }, 'bin-count': { type: 'string' },
  params: { type: 'string' }, spacing: { type: 'string' }, rings: { type: 'string' }, ibsi: { type: 'boolean' }, all: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

const demoOptions = {
  port: { type: 'string' }, host: { type: 'string' }, frames: { type: 'string' }, seed: { type: 'string' }, fps: { type: 'string' },
  headless: { type: 'boolean' }, json: { type: 'boolean' }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

function intOption(name: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^-?\d+$/.test(v.trim()) || !Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer in [${min}, ${max}] (got "${v}")`);
  return n;
}

function numOption(name: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= min || n > max) throw new UsageError(`--${name} must be a number in (${min}, ${max}] (got "${v}")`);
  return n;
}

/** A comma-separated list of numbers, each in (min, max]. */
function numListOption(name: string, v: string, what: string, min: number, max: number): number[] {
  const parts = v.split(',');
  const nums = parts.map((p) => (p.trim() === '' ? NaN : Number(p)));
  if (nums.some((n) => !Number.isFinite(n) || n <= min || n > max)) throw new UsageError(`--${name} must be ${what}, each in (${min}, ${max}] (got "${v}")`);
  return nums;
}

function featuresOptionsOf(v: ReturnType<typeof parse<typeof featuresOptions>>['values']): FeaturesOptions {
  if (v.image === undefined) throw new UsageError('features: --image FILE is required');
  if (v.mask === undefined) throw new UsageError('features: --mask FILE is required');
  const given = (['bin-width', 'bin-count', 'params'] as const).filter((k) => v[k] !== undefined);
  if (given.length > 1) {
    const flags = given.map((k) => `--${k}`);
    throw new UsageError(`features: ${flags.slice(0, -1).join(', ')} and ${flags[flags.length - 1]} exclude each other (give one)`);
  }
  let spacing = [1, 1];
  if (v.spacing !== undefined) {
    spacing = numListOption('spacing', v.spacing, 'two numbers "SX,SY" in mm', 0, 100);
    if (spacing.length !== 2) throw new UsageError(`--spacing must be two numbers "SX,SY" in mm (got "${v.spacing}")`);
  }
  let ringsMm: number[] = [];
  if (v.rings !== undefined) {
    ringsMm = numListOption('rings', v.rings, 'ring radii in mm "R1,R2,..."', 0, 50);
    if (ringsMm.length > 16) throw new UsageError(`--rings takes at most 16 radii (got ${ringsMm.length})`);
    if (ringsMm.some((r, i) => i > 0 && r <= ringsMm[i - 1])) throw new UsageError(`--rings radii must increase (got "${v.rings}")`);
  }
  return {
    image: v.image, mask: v.mask,
    binWidth: numOption('bin-width', v['bin-width'], 0, 1e9),
    binCount: intOption('bin-count', v['bin-count'], 1, 65536),
    params: v.params,
    spacingX: spacing[0], spacingY: spacing[1], ringsMm,
    ibsi: Boolean(v.ibsi), all: Boolean(v.all),
  };
}

function version(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
}

function printDemoSummary(s: DemoSummary, out: (l: string) => void): void {
  const f = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '-');
  out(`frames ${s.frames} (source dropped ${s.source.dropped}); tracking mean error ${f(s.tracking.meanErrorPx)} px, max ${f(s.tracking.maxErrorPx)} px`);
  out('stage        p50 ms   p99 ms   max ms');
  for (const [name, l] of Object.entries(s.pipeline.stages)) out(`${name.padEnd(12)} ${f(l.p50).padStart(6)}   ${f(l.p99).padStart(6)}   ${f(l.max).padStart(6)}`);
  out(`end-to-end display p50 ${f(s.pipeline.endToEnd.display.p50)} ms, scores p50 ${f(s.pipeline.endToEnd.scores.p50)} ms`);
  out(`dropped: display ${s.pipeline.dropped.display}, features ${s.pipeline.dropped.features}, risk ${s.pipeline.dropped.risk}`);
  out(s.notice);
}

export async function main(argv: string[], io = { out: (l: string) => console.log(l), err: (l: string) => console.error(l) }): Promise<number> {
  try {
    const [cmd, ...rest] = argv;
    if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') { io.out(GLOBAL_HELP); return 0; }
    if (cmd === '--version') { io.out(version()); return 0; }
    if (cmd === 'demo') {
      const { values: v } = parse(rest, demoOptions);
      if (v.help) { io.out(DEMO_HELP); return 0; }
      const frames = intOption('frames', v.frames, 1, 1e9);
      const port = intOption('port', v.port, 0, 65535);
      const seed = intOption('seed', v.seed, 0, 2 ** 31);
      const fps = numOption('fps', v.fps, 0, 240);
      const base = loadConfig(v.config);
      const config: SonomicsConfig = resolveConfig({
        ...base,
        source: { ...base.source, phantom: { ...base.source.phantom, ...(seed !== undefined && { seed }), ...(fps !== undefined && { fps }) } },
        overlay: { ...base.overlay, ...(port !== undefined && { port }), ...(v.host !== undefined && { host: v.host }) },
      }, v.config ?? 'command line');
      const log = v.json ? io.err : io.out;
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        const summary = await runDemo({ config, frames, headless: Boolean(v.headless), log }, ac.signal);
        if (v.json) io.out(JSON.stringify(summary));
        else printDemoSummary(summary, io.out);
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
      return 0;
    }
    if (cmd === 'features') {
      const { values: v } = parse(rest, featuresOptions);
      if (v.help) { io.out(FEATURES_HELP); return 0; }
      const options = featuresOptionsOf(v);
      // Loaded here so the other commands start without the radiomics engine.
      const { computeFeatures, formatFeatures } = await import('./features.js');
      io.out(formatFeatures(await computeFeatures(options)));
      return 0;
    }
    throw new UsageError(`unknown command "${cmd}"; run 'sonomics --help'`);
  } catch (e) {
    if (e instanceof UsageError) { io.err(`sonomics: ${e.message}`); return 2; }
    if (e instanceof ConfigError) { io.err(`sonomics: ${e.message}`); return 2; }
    // core/params.ts is loaded only by the features command, so its error is known by name.
    if ((e as Error)?.name === 'ParamsError') { io.err(`sonomics: ${(e as Error).message}`); return 2; }
    io.err(`sonomics: ${(e as Error).message}`);
    return 1;
  }
}
