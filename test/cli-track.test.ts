// `sonomics track`: CSV per frame from a folder of frames and from a recording, against the
// phantom's truth; usage errors and bad masks by name.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { CSV_HEADER } from '../cli/track.js';
import { PhantomScanner, type PhantomTruth } from '../device/phantom.js';
import { SessionRecorder } from '../device/recording.js';
import { runCli, sleep } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'sonomics-cli-track-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const phantom = new PhantomScanner({ width: 640, height: 480, fps: 10 });
const pane = phantom.layout.panes.bmode.rect;
const FRAMES = 30;
const truths: PhantomTruth[] = [];
const screens: Uint8Array[] = [];
for (let i = 0; i < FRAMES; i++) {
  const { data, truth } = phantom.render(i);
  screens.push(data.slice());
  truths.push({ ...truth, lesionMask: truth.lesionMask.slice() });
}

const png = (path: string, data: Uint8Array, width: number, height: number) => sharp(Buffer.from(data), { raw: { width, height, channels: 1 } }).png().toFile(path);
const pgm = (path: string, data: Uint8Array, width: number, height: number) => writeFileSync(path, Buffer.concat([Buffer.from(`P5\n${width} ${height}\n255\n`), data]));
const crop = (screen: Uint8Array) => {
  const out = new Uint8Array(pane.width * pane.height);
  for (let y = 0; y < pane.height; y++) out.set(screen.subarray((pane.y + y) * 640 + pane.x, (pane.y + y) * 640 + pane.x + pane.width), y * pane.width);
  return out;
};

function parseCsv(stdout: string) {
  const lines = stdout.trim().split('\n');
  return { header: lines[0], rows: lines.slice(1).map((l) => l.split(',')) };
}

t.test('a folder of B-mode frames: one row per frame, on the lesion', async (t) => {
  const frames = join(dir, 'frames');
  mkdirSync(frames);
  // Natural order: frame-2 before frame-10.
  screens.forEach((s, i) => pgm(join(frames, `frame-${i}.pgm`), crop(s), pane.width, pane.height));
  const init = join(dir, 'init-pane.png');
  await png(init, truths[0].lesionMask, pane.width, pane.height);
  const r = await runCli(['track', '--input', frames, '--init', init]);
  t.equal(r.code, 0, r.stderr);
  const { header, rows } = parseCsv(r.stdout);
  t.equal(header, CSV_HEADER);
  t.equal(rows.length, FRAMES);
  t.same(rows.map((row) => Number(row[0])), [...Array(FRAMES).keys()], 'frame indices in input order');
  const errs = rows.map((row, k) => Math.hypot(Number(row[1]) - truths[k].center.x, Number(row[2]) - truths[k].center.y));
  t.ok(Math.max(...errs) < 1.5, `centre within 1.5 px of the truth (max ${Math.max(...errs).toFixed(2)})`);
  t.ok(rows.every((row) => row[5] === 'tracking' && Number(row[4]) > 0.5 && Math.abs(Number(row[3]) - 1) < 0.1), 'tracking, confident, scale near 1');
  const summary = JSON.parse(r.stderr.trim().split('\n').at(-1)!);
  t.equal(summary.frames, FRAMES);
  t.same(summary.states, { tracking: FRAMES });
  t.same(summary.pane, { width: pane.width, height: pane.height }, 'the whole frame is the pane');
  t.ok(summary.trackMs.median > 0 && summary.trackMs.median < 50, `time per frame reported (${summary.trackMs.median.toFixed(2)} ms)`);
  t.match(summary.notice, /not for diagnosis/);
});

t.test('a recording keeps its layout: screen coordinates, and a screen-sized mask works', async (t) => {
  const path = join(dir, 'session.sonrec');
  const rec = new SessionRecorder({ path, width: 640, height: 480, fps: 10, sourceId: phantom.id, layout: phantom.layout });
  for (let i = 0; i < FRAMES; i++) {
    const { frame } = phantom.frameAt(i);
    for (let k = 0; !rec.write(frame) && k < 2000; k++) await sleep(2);
  }
  t.equal((await rec.close()).written, FRAMES);
  const screenMask = new Uint8Array(640 * 480);
  for (let y = 0; y < pane.height; y++) screenMask.set(truths[0].lesionMask.subarray(y * pane.width, (y + 1) * pane.width), (pane.y + y) * 640 + pane.x);
  const init = join(dir, 'init-screen.png');
  await png(init, screenMask, 640, 480);
  const r = await runCli(['track', '--input', path, '--init', init]);
  t.equal(r.code, 0, r.stderr);
  const { rows } = parseCsv(r.stdout);
  t.equal(rows.length, FRAMES);
  const errs = rows.map((row, k) => Math.hypot(Number(row[1]) - truths[k].frameCenters.bmode.x, Number(row[2]) - truths[k].frameCenters.bmode.y));
  t.ok(Math.max(...errs) < 1.5, `screen coordinates of the B-mode pane (max error ${Math.max(...errs).toFixed(2)} px)`);
});

t.test('usage errors and bad masks are named; nothing is tracked', async (t) => {
  const init = join(dir, 'init-pane.png');
  const noInit = await runCli(['track', '--input', 'phantom', '--max', '3']);
  t.equal(noInit.code, 2);
  t.match(noInit.stderr, /--init MASK\.png is required/);
  const endless = await runCli(['track', '--input', 'phantom', '--init', init]);
  t.equal(endless.code, 2);
  t.match(endless.stderr, /never ends: give --max N/);
  const empty = join(dir, 'empty.png');
  await png(empty, new Uint8Array(pane.width * pane.height), pane.width, pane.height);
  const e1 = await runCli(['track', '--input', join(dir, 'frames'), '--init', empty]);
  t.equal(e1.code, 1);
  t.match(e1.stderr, /lesion mask is empty/);
  const wrong = join(dir, 'wrong.png');
  await png(wrong, new Uint8Array(100 * 80).fill(255), 100, 80);
  const e2 = await runCli(['track', '--input', join(dir, 'frames'), '--init', wrong]);
  t.equal(e2.code, 1);
  t.match(e2.stderr, /100x80 is neither the screen \(288x374\) nor the B-mode pane/);
  // A screen-sized mask whose lesion lies outside the B-mode pane (on the contrast pane).
  const outside = new Uint8Array(640 * 480);
  const c = phantom.layout.panes.contrast.rect;
  for (let y = c.y + 50; y < c.y + 90; y++) outside.fill(255, y * 640 + c.x + 50, y * 640 + c.x + 90);
  const outPng = join(dir, 'outside.png');
  await png(outPng, outside, 640, 480);
  const e3 = await runCli(['track', '--input', join(dir, 'session.sonrec'), '--init', outPng]);
  t.equal(e3.code, 1);
  t.match(e3.stderr, /no lesion pixel inside the B-mode pane/);
  t.equal(e3.stdout, '', 'no CSV when nothing can be tracked');
});

t.test('a frame of the wrong size in a folder stops the input with its name; rows before it stand', async (t) => {
  const frames = join(dir, 'mixed');
  mkdirSync(frames);
  for (let i = 0; i < 5; i++) pgm(join(frames, `f${i}.pgm`), crop(screens[i]), pane.width, pane.height);
  pgm(join(frames, 'f5.pgm'), new Uint8Array(100 * 100), 100, 100);
  const r = await runCli(['track', '--input', frames, '--init', join(dir, 'init-pane.png')]);
  t.equal(r.code, 1);
  t.match(r.stderr, /f5\.pgm/);
  t.match(r.stderr, /100x100/);
  t.equal(parseCsv(r.stdout).rows.length, 5, 'the five good frames were tracked');
});

t.test('track --model scores every tracked frame in order, none dropped (the batch mode for research)', async (t) => {
  const path = join(dir, 'session.sonrec');   // written by the recording test above
  const init = join(dir, 'init-screen.png');
  const r = await runCli(['track', '--input', path, '--init', init, '--model', 'busi-malignancy']);
  t.equal(r.code, 0, r.stderr);
  const { header, rows } = parseCsv(r.stdout);
  t.equal(header, `${CSV_HEADER},busi-malignancy_value,busi-malignancy_live,busi-malignancy_status`);
  t.equal(rows.length, FRAMES, 'one row per frame');
  t.equal(rows.filter((row) => row[5] === 'tracking').length, FRAMES, 'every frame tracked, so every frame is scored below');
  for (const [k, row] of rows.entries()) {
    t.equal(row.length, 9, `frame ${k}: nine columns`);
    if (row[5] !== 'tracking') { t.equal(row[8], row[5], 'not tracking: the state, no value'); continue; }
    const v = Number(row[6]);
    t.ok(v > 0 && v < 1, `frame ${k}: probability ${row[6]}`);
    t.equal(row[8], k < 2 ? 'warming-up' : 'ok');
    if (k >= 2) t.ok(Number(row[7]) > 0 && Number(row[7]) < 1, `frame ${k}: live value ${row[7]}`);
  }
  const bad = await runCli(['track', '--input', path, '--init', init, '--model', 'busi-malignancy', '--clinical', 'age=50']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /clinical age: no loaded model reads it/);
  const noModel = await runCli(['track', '--input', path, '--init', init, '--clinical', 'age=50']);
  t.match(noModel.stderr, /--clinical needs --model/);
});
