// `sonomics perfusion`: on the phantom (with motion, speckle noise, repeated frames and a stretch
// where tracking is lost) every lesion parameter lands within 5 % of the phantom's truth, which
// the JSON carries; the CSV holds the curve; a recording works with --init and --reference; bad
// input gets a clear message and exit code, never a fabricated fit.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { PARAMETER_NAMES } from '../core/perfusion/parameters.js';
import type { PerfusionReport } from '../cli/perfusion.js';
import { PhantomScanner } from '../device/phantom.js';
import { SessionRecorder } from '../device/recording.js';
import { runCli, sleep } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'sonomics-cli-perfusion-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('the phantom: fitted parameters per region, the truth beside them, every lesion parameter within 5 %', async (t) => {
  const csv = join(dir, 'curve.csv');
  const r = await runCli(['perfusion', '--fps', '15', '--seconds', '60', '--repeat-every', '3', '--lose', '30,4', '--json', '--csv', csv], 170_000);
  t.equal(r.code, 0, r.stderr);
  const rep = JSON.parse(r.stdout) as PerfusionReport;
  t.match(rep.notice, /not for diagnosis/);
  t.equal(rep.analysis.state, 'fitted', rep.analysis.message);
  t.equal(rep.frames.read, 900 + 300, 'every third frame came twice');
  t.equal(rep.frames.duplicates, 300, 'the repeats were spotted and left out');
  t.ok(rep.frames.lost + rep.frames.uncertain > 20, `the lost stretch is excluded (lost ${rep.frames.lost}, uncertain ${rep.frames.uncertain})`);
  t.equal(rep.frames.samples + rep.frames.lost + rep.frames.uncertain, 900, 'one sample per unique tracked frame');
  t.same(rep.linearisation, { dynamicRangeDb: 40, offsetDb: -34 }, 'the phantom\'s own display compression undone');
  const names = rep.analysis.regions.map((g) => g.name);
  t.same(names, ['lesion', 'ring3mm', 'ring5mm', 'ring8mm', 'reference']);
  for (const g of rep.analysis.regions) {
    t.equal(g.state, 'fitted', `${g.name}: ${g.message}`);
    t.ok(g.fits.lognormal!.rSquared > 0.98 && g.fits.gammaVariate!.rSquared > 0.95, `${g.name}: both models fitted (R² ${g.fits.lognormal!.rSquared.toFixed(4)} / ${g.fits.gammaVariate!.rSquared.toFixed(4)})`);
  }
  const truth = rep.truth!;
  t.ok(truth.regions.lesion.parameters && truth.regions.reference.parameters, 'truth for the lesion and the reference');
  t.equal(truth.regions.lesion.parameters!.AT, 8, 'the lesion bolus arrives at 8 s');
  for (const p of PARAMETER_NAMES) t.ok(Math.abs(truth.errors.lesion[p]) < 0.05, `lesion ${p}: ${(100 * truth.errors.lesion[p]).toFixed(2)} % from the truth`);
  for (const p of PARAMETER_NAMES) t.ok(Math.abs(truth.errors.reference[p]) < 0.12, `reference ${p}: ${(100 * truth.errors.reference[p]).toFixed(2)} %`);
  const lesion = rep.analysis.regions[0];
  t.ok(lesion.relative!.rPE! > 5, `the lesion enhances far more than the reference (rPE ${lesion.relative!.rPE})`);
  t.ok(rep.analysis.phases!.pre[1] < rep.analysis.phases!.early[0] && rep.analysis.phases!.peak[1] < rep.analysis.phases!.late[0], 'phases in order');
  const lines = readFileSync(csv, 'utf8').trim().split('\n');
  t.equal(lines[0], 't_s,lesion,ring3mm,ring5mm,ring8mm,reference,lesion_fit_lognormal,ring3mm_fit_lognormal,ring5mm_fit_lognormal,ring8mm_fit_lognormal,reference_fit_lognormal');
  t.equal(lines.length - 1, rep.frames.samples, 'one CSV row per sample');
  const table = await runCli(['perfusion', '--fps', '10', '--seconds', '40', '--size', '640x360']);
  t.equal(table.code, 0, table.stderr);
  t.match(table.stdout, /^perfusion of phantom:42: fitted/);
  t.match(table.stdout, /\n {2}truth\t/);
  t.match(table.stdout, /not for diagnosis/);
});

t.test('a recording with --init and --reference; no bolus in it gives "no wash-in detected", no parameters', async (t) => {
  const phantom = new PhantomScanner({ width: 640, height: 360, fps: 10, contrast: { lesion: { peak: 0 }, tissue: { peak: 0 } } });
  const path = join(dir, 'flat.sonrec');
  const rec = new SessionRecorder({ path, width: 640, height: 360, fps: 10, sourceId: phantom.id, layout: phantom.layout });
  let mask: Uint8Array | undefined;
  for (let i = 0; i < 150; i++) {
    const { frame, truth } = phantom.frameAt(i);
    mask ??= truth.lesionMask.slice();
    for (let k = 0; !rec.write(frame) && k < 2000; k++) await sleep(2);
  }
  await rec.close();
  const pane = phantom.layout.panes.bmode.rect;
  const init = join(dir, 'init.png');
  await sharp(Buffer.from(mask!), { raw: { width: pane.width, height: pane.height, channels: 1 } }).png().toFile(init);
  const r = await runCli(['perfusion', '--input', path, '--init', init, '--reference', '200,80,3', '--dynamic-range', '40', '--json']);
  t.equal(r.code, 0, r.stderr);
  const rep = JSON.parse(r.stdout) as PerfusionReport;
  t.equal(rep.analysis.state, 'no-wash-in');
  t.match(rep.analysis.message, /no wash-in detected/);
  t.ok(rep.analysis.regions.every((g) => g.parameters === null && g.relative === null), 'no region has parameters');
  t.equal(rep.truth, undefined, 'no truth outside the phantom');
  t.same(rep.linearisation, { dynamicRangeDb: 40 });
  t.ok(rep.analysis.regions.some((g) => g.name === 'reference' && g.n > 100), 'the reference disc was measured');
});

t.test('usage errors are named and nothing runs', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['perfusion', '--input', join(dir, 'flat.sonrec')], /--init MASK\.png is required/],
    [['perfusion', '--reference', '1,2'], /--reference 1,2 must be 3 comma-separated numbers/],
    [['perfusion', '--reference', '10,20,40'], /radius 40 mm must be in \[0\.5, 20\]/],
    [['perfusion', '--lose', '5,-1'], /--lose START,DUR needs START >= 0 and DUR > 0/],
    [['perfusion', '--model', 'spline'], /--model spline must be lognormal or gammaVariate/],
    [['perfusion', '--no-linearise', '--dynamic-range', '40'], /contradict/],
    [['perfusion', '--input', join(dir, 'flat.sonrec'), '--init', join(dir, 'init.png'), '--repeat-every', '2'], /--repeat-every applies to the phantom only/],
  ];
  for (const [args, re] of cases) {
    const r = await runCli(args);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.match(r.stderr, re);
  }
  const help = await runCli(['perfusion', '--help']);
  t.match(help.stdout, /Usage: sonomics perfusion/);
});
