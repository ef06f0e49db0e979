// The capture commands through the real CLI (node bin/sonomics.js): probe, frames, record,
// replay, export, layout, and run with a DICOM source from the config. Inputs: the DICOM files
// of ../shared/data/dicom_us, the phantom, recordings and ffmpeg files made here. Every CLI
// process is stopped by its PID if it outlives its limit, and so is any ffmpeg/ffprobe it
// started that is still alive when it ends.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import sharp from 'sharp';
import t, { type Test } from 'tap';
import { DicomFile } from '../device/dicom.js';
import { probeMedia } from '../device/ffmpeg.js';
import { PhantomScanner } from '../device/phantom.js';
import { openRecording } from '../device/recording.js';
import { fromRoot, gone, readPgm, sha, sharedDir, sleep } from './helpers.js';

// ---------------------------------------------------------------------------------------------
// Helpers



/** Live processes of process group `pgid` (ps), with their command names. */
function groupMembers(pgid: number): Array<{ pid: number; comm: string }> {
  const r = spawnSync('ps', ['-e', '-o', 'pid=,pgid=,comm='], { encoding: 'utf8', timeout: 5000 });
  return (r.stdout ?? '').split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 3 && Number(f[1]) === pgid)
    .map(([p, , ...c]) => ({ pid: Number(p), comm: c.join(' ') })).filter((c) => !gone(c.pid));
}

interface CliResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/**
 * Runs the CLI in its own process group (so every process it starts, ffmpeg and ffprobe
 * included, can be found afterwards); SIGKILLed by its PID after limitMs. Any process of the
 * group still alive shortly after the CLI ended is killed by its PID and fails the test.
 */
async function cli(t: Test, args: string[], limitMs = 60000): Promise<CliResult> {
  const child = spawn(process.execPath, [fromRoot('bin', 'sonomics.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '', stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const timer = setTimeout(() => { if (child.pid && !gone(child.pid)) { t.fail(`sonomics ${args.join(' ')} ran over ${limitMs} ms; killed`); process.kill(child.pid, 'SIGKILL'); } }, limitMs);
  const { code, signal } = await done;
  clearTimeout(timer);
  const pgid = child.pid!;
  const end = performance.now() + 3000;
  while (groupMembers(pgid).length && performance.now() < end) await sleep(50);
  for (const p of groupMembers(pgid)) {
    process.kill(p.pid, 'SIGKILL');
    t.fail(`sonomics ${args.join(' ')} left ${p.comm} ${p.pid} running; killed`);
  }
  return { code, signal, stdout, stderr };
}

/** Runs ffmpeg to make a test input (killed by PID after the limit). */
function ffmpeg(args: string[], stdin?: Buffer, limitMs = 20000): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', ...args], { stdio: [stdin ? 'pipe' : 'ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => { if (child.pid) process.kill(child.pid, 'SIGKILL'); }, limitMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => { clearTimeout(timer); if (code === 0) resolve(); else reject(new Error(`ffmpeg: ${signal ?? `exit ${code}`}: ${stderr}`)); });
    if (stdin) { child.stdin!.on('error', () => undefined); child.stdin!.end(stdin); }
  });
}

/** 12 gray 160x120 frames, each different, losslessly in FFV1/Matroska at 10 fps. */
async function grayVideo(path: string): Promise<Uint8Array[]> {
  const w = 160, h = 120;
  const frames = Array.from({ length: 12 }, (_, k) => {
    const f = new Uint8Array(w * h);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) f[y * w + x] = (x * 2 + y * 3 + k * 17 + ((x ^ y) & 15)) & 255;
    return f;
  });
  await ffmpeg(['-f', 'rawvideo', '-pixel_format', 'gray', '-video_size', `${w}x${h}`, '-framerate', '10', '-i', 'pipe:0', '-c:v', 'ffv1', '-pix_fmt', 'gray', path], Buffer.concat(frames));
  return frames;
}

const json = (t: Test, r: CliResult): Record<string, any> => {
  try {
    return JSON.parse(r.stdout);
  } catch {
    t.fail(`stdout is not one JSON document: ${r.stdout.slice(0, 300)} / stderr: ${r.stderr.slice(-500)}`);
    return {};
  }
};

const dicomDir = (t: Test) => sharedDir(t, 'data', 'dicom_us');

// ---------------------------------------------------------------------------------------------
// probe

t.test('probe: DICOM, phantom, ffmpeg file and pattern; missing files and bad options', async (t) => {
  const dir = t.testdir();
  const dd = dicomDir(t);
  const file = join(dir, 'gray.mkv');
  await grayVideo(file);
  writeFileSync(join(dir, 'junk.bin'), Buffer.alloc(3000, 7));
  const bad: Array<[string[], RegExp]> = [
    [['probe'], /probe: give exactly one INPUT \(got 0\)/],
    [['probe', 'a', 'b'], /probe: give exactly one INPUT \(got 2\)/],
    [['probe', 'phantom', '--size', '640'], /--size must be WxH/],
  ];
  // The commands are independent: run them side by side (each still bounded and checked).
  const [echo, alokaRun, ph, m, lavfi, missing, junk, ...bads] = await Promise.all([
    ...(dd ? [join(dd, 'US-PAL-8-10x-echo.dcm'), join(dd, 'gdcm-US-ALOKA-16.dcm')] : ['', '']).map((f) => (f ? cli(t, ['probe', f]) : undefined)),
    cli(t, ['probe', 'phantom:7']),
    cli(t, ['probe', file]),
    cli(t, ['probe', 'testsrc=size=64x48:rate=5', '--format', 'lavfi']),
    cli(t, ['probe', join(dir, 'nothing-here.mp4')]),
    cli(t, ['probe', join(dir, 'junk.bin')]),
    ...bad.map(([args]) => cli(t, args)),
  ]);
  if (echo && alokaRun) {
    t.equal(echo.code, 0, echo.stderr);
    t.match(json(t, echo), { kind: 'dicom', width: 600, height: 430, frames: 10, frameTimeMs: 76, pixelSpacingMm: null, colourModel: 'palette', transferSyntax: { uid: '1.2.840.10008.1.2.5' } });
    t.ok(Math.abs(json(t, echo).fps - 1000 / 76) < 1e-9, 'fps = 1000 / Frame Time');
    const aloka = json(t, alokaRun);
    t.match(aloka, { kind: 'dicom', width: 640, height: 480, frames: 1, fps: null, manufacturer: 'ALOKA CO., LTD.' });
    t.ok(Math.abs(aloka.pixelSpacingMm.x - 0.382653) < 1e-5 && Math.abs(aloka.pixelSpacingMm.y - 0.382653) < 1e-5, `spacing from the ultrasound regions (${JSON.stringify(aloka.pixelSpacingMm)})`);
    t.ok(aloka.regions.length >= 2, 'the regions are listed');
  }

  t.equal(ph!.code, 0, ph!.stderr);
  t.match(json(t, ph!), { kind: 'phantom', width: 1280, height: 720, frames: null, fps: 30, colourModel: 'gray', seed: 7, panes: { bmode: { x: 38, y: 79, width: 576, height: 561 }, sector: false } });
  t.ok(Math.abs(json(t, ph!).pixelSpacingMm.x - 40 / 561) < 1e-12);

  t.equal(m!.code, 0, m!.stderr);
  t.match(json(t, m!), { kind: 'media', width: 160, height: 120, frames: 12, fps: 10, colourModel: 'gray', codec: 'ffv1', pixelSpacingMm: null });
  t.equal(lavfi!.code, 0, lavfi!.stderr);
  t.match(json(t, lavfi!), { kind: 'media', width: 64, height: 48, frames: null, fps: 5 }, 'a pattern never ends: frames null');

  t.equal(missing!.code, 1);
  t.match(missing!.stderr, /^sonomics: .*nothing-here\.mp4: ffprobe cannot read it: .*No such file or directory/);
  t.equal(missing!.stdout, '');
  t.equal(junk!.code, 1);
  t.match(junk!.stderr, /^sonomics: .*junk\.bin: ffprobe cannot read it/);
  for (const [k, [args, re]] of bad.entries()) {
    t.equal(bads[k]!.code, 2, args.join(' '));
    t.match(bads[k]!.stderr, re);
    t.equal(bads[k]!.stdout, '');
  }
});

// ---------------------------------------------------------------------------------------------
// frames

t.test('frames: a DICOM cine as colour PNGs with --every; gray inputs as exact PGMs; endless inputs need --max', async (t) => {
  const dir = t.testdir();
  const dd = dicomDir(t);
  const video = join(dir, 'gray.mkv');
  const raw = await grayVideo(video);
  const out = (name: string) => join(dir, name);
  // Independent commands, side by side.
  const [echo, echoMax, grayDicom, v, p, endless, endlessPhantom, every0] = await Promise.all([
    dd ? cli(t, ['frames', join(dd, 'US-PAL-8-10x-echo.dcm'), '--out', out('echo'), '--every', '3']) : undefined,
    dd ? cli(t, ['frames', join(dd, 'US-PAL-8-10x-echo.dcm'), '--out', out('echo2'), '--every', '4', '--max', '2']) : undefined,
    dd ? cli(t, ['frames', join(dd, 'JPGLosslessP14SV1_1s_1f_8b.dcm'), '--out', out('gray-dicom')]) : undefined,
    cli(t, ['frames', video, '--out', out('gray-video')]),
    cli(t, ['frames', 'phantom', '--out', out('phantom'), '--max', '3']),
    cli(t, ['frames', 'testsrc=size=64x48:rate=5', '--format', 'lavfi', '--out', out('x')]),
    cli(t, ['frames', 'phantom', '--out', out('y')]),
    cli(t, ['frames', video, '--out', out('z'), '--every', '0']),
  ]);

  if (dd && echo && echoMax && grayDicom) {
    t.equal(echo.code, 0, echo.stderr);
    t.match(json(t, echo), { frames: 10, written: 4, every: 3, width: 600, height: 430 });
    t.same(readdirSync(out('echo')).sort(), ['frame-000000.png', 'frame-000003.png', 'frame-000006.png', 'frame-000009.png']);
    const file = await DicomFile.open(join(dd, 'US-PAL-8-10x-echo.dcm'));
    for (const k of [0, 3, 6, 9]) {
      const { data, info } = await sharp(join(out('echo'), `frame-${String(k).padStart(6, '0')}.png`)).raw().toBuffer({ resolveWithObject: true });
      t.same([info.width, info.height, info.channels], [600, 430, 3], `frame ${k}: 600x430 RGB`);
      t.equal(sha(data), sha((await file.decodeFrame(k)).rgb!), `frame ${k}: the palette colours, exactly`);
    }
    t.equal(echoMax.code, 0, echoMax.stderr);
    t.same(readdirSync(out('echo2')).sort(), ['frame-000000.png', 'frame-000004.png'], '--max counts written frames');

    t.equal(grayDicom.code, 0, grayDicom.stderr);
    t.same(readdirSync(out('gray-dicom')), ['frame-000000.pgm']);
    const buf = readFileSync(join(out('gray-dicom'), 'frame-000000.pgm'));
    const head = 'P5\n1024 768\n255\n';
    t.equal(buf.subarray(0, head.length).toString('latin1'), head, 'PGM header');
    t.equal(buf.length, head.length + 1024 * 768);
    const gf = await DicomFile.open(join(dd, 'JPGLosslessP14SV1_1s_1f_8b.dcm'));
    t.equal(sha(buf.subarray(head.length)), sha((await gf.decodeFrame(0)).gray), 'PGM pixels = the decoded gray frame');
  }

  // A gray video made here: every frame exactly as encoded.
  t.equal(v.code, 0, v.stderr);
  t.match(json(t, v), { frames: 12, written: 12, width: 160, height: 120 });
  const names = readdirSync(out('gray-video')).sort();
  t.equal(names.length, 12);
  for (const [k, name] of names.entries()) {
    t.equal(name, `frame-${String(k).padStart(6, '0')}.pgm`);
    const buf = readFileSync(join(out('gray-video'), name));
    const head = 'P5\n160 120\n255\n';
    t.equal(buf.subarray(0, head.length).toString('latin1'), head);
    t.equal(buf.length, head.length + 160 * 120);
    t.equal(sha(buf.subarray(head.length)), sha(raw[k]), `frame ${k} byte-identical`);
  }

  // The phantom (live, endless): --max frames, each one of the phantom's own renderings, in order
  // (a busy process may skip phantom frames, never reorder them).
  t.equal(p.code, 0, p.stderr);
  t.same(readdirSync(out('phantom')).sort(), ['frame-000000.pgm', 'frame-000001.pgm', 'frame-000002.pgm']);
  const phantom = new PhantomScanner({});
  let k = 0;
  for (const name of readdirSync(out('phantom')).sort()) {
    const img = readPgm(join(out('phantom'), name));
    t.same([img.width, img.height], [1280, 720]);
    const want = sha(img.data);
    let found = -1;
    for (let c = k; c < k + 60 && found < 0; c++) if (sha(phantom.render(c).data) === want) found = c;
    t.ok(found >= 0, `${name} is the phantom's frame ${found}`);
    k = found + 1;
  }

  t.equal(endless.code, 2, 'an endless input without --max');
  t.match(endless.stderr, /^sonomics: frames: testsrc=size=64x48:rate=5 never ends: give --max N/);
  t.equal(endlessPhantom.code, 2, 'the phantom without --max');
  t.match(endlessPhantom.stderr, /^sonomics: frames: phantom never ends: give --max N/);
  t.notOk(existsSync(out('x')) || existsSync(out('y')), 'nothing written for a refused command');
  t.equal(every0.code, 2);
  t.match(every0.stderr, /--every must be an integer in \[1, /);
});

// ---------------------------------------------------------------------------------------------
// record, replay, export, layout

t.test('record the phantom for ~2 s; replay it headless with and without a lesion outline; export; layout', async (t) => {
  const dir = t.testdir();
  const rec = join(dir, 'session.sonrec');
  // Two seconds: on a loaded machine FFV1 at 1280x720 falls behind and drops frames (counted), so
  // one second can leave too few for the trims below.
  const r = await cli(t, ['record', '--input', 'phantom', '--out', rec, '--seconds', '2']);
  t.equal(r.code, 0, r.stderr);
  const summary = json(t, r);
  t.match(summary, { out: rec, width: 1280, height: 720, fps: 30, layout: true });
  t.ok(summary.recorded.written >= 5, `${summary.recorded.written} frames recorded (${summary.recorded.dropped} dropped while the encoder was busy)`);
  t.equal(summary.recorded.written + summary.recorded.dropped, summary.source.delivered, 'every delivered frame written or counted as dropped');
  t.match(r.stderr, /recording phantom:42 \(1280x720 @ 30 fps\)/);
  const opened = await openRecording(rec);
  const n = opened.frames.length;
  t.equal(n, summary.recorded.written);
  t.equal(opened.videoFrames, n);
  t.same(opened.notes, []);

  // The lesion outline of the phantom's first frame, pane-sized, and a mask of the wrong size.
  const truth = new PhantomScanner({}).render(0).truth;
  const mask = join(dir, 'lesion.png');
  await sharp(Buffer.from(truth.lesionMask), { raw: { width: 576, height: 561, channels: 1 } }).png().toFile(mask);
  const wrongMask = join(dir, 'wrong.png');
  await sharp(Buffer.alloc(100 * 80), { raw: { width: 100, height: 80, channels: 1 } }).png().toFile(wrongMask);
  const mp4 = join(dir, 'session.mp4');
  const trim = join(dir, 'trim.sonrec');
  const png = join(dir, 'layout.png');
  // A copy that lost its session.json.
  const damaged = join(dir, 'damaged.sonrec');
  cpSync(rec, damaged, { recursive: true });
  rmSync(join(damaged, 'session.json'));
  // The commands below only read the recordings: run them side by side.
  const [probe, probeDamaged, locked, idle, wm, e, tr, badRange, noOut, l] = await Promise.all([
    cli(t, ['probe', rec]),
    cli(t, ['probe', damaged]),
    cli(t, ['replay', rec, '--fast', '--headless', '--port', '0', '--json', '--lesion', mask]),
    cli(t, ['replay', rec, '--fast', '--headless', '--port', '0', '--json']),
    cli(t, ['replay', rec, '--fast', '--headless', '--port', '0', '--json', '--lesion', wrongMask]),
    cli(t, ['export', rec, '--out', mp4]),
    cli(t, ['export', rec, '--out', trim, '--from', '0.4', '--to', '1.6']),
    cli(t, ['export', rec, '--out', join(dir, 'bad.sonrec'), '--from', '30']),
    cli(t, ['export', rec]),
    cli(t, ['layout', rec, '--out', png]),
  ]);

  t.equal(probe.code, 0, probe.stderr);
  t.match(json(t, probe), { kind: 'recording', width: 1280, height: 720, frames: n, fps: 30, colourModel: 'gray', source: { id: 'phantom:42' }, notes: [], panes: { bmode: { width: 576, height: 561 } } });
  t.ok(json(t, probe).durationS > 0.5, `lasts ${json(t, probe).durationS} s`);
  t.equal(probeDamaged.code, 1);
  t.match(probeDamaged.stderr, /^sonomics: damaged\.sonrec: cannot read session\.json: missing \(is this a sonomics recording\?\)/, 'a damaged recording is named as one');

  t.equal(locked.code, 0, locked.stderr);
  const ls = json(t, locked);
  t.equal(ls.frames, n, 'every recorded frame replayed');
  t.equal(ls.source.id, 'replay:session.sonrec');
  const states = ls.tracking.states as Record<string, number>;
  t.equal(Object.values(states).reduce((a, b) => a + b, 0), ls.pipeline.displayed, 'a tracking state per displayed frame');
  t.ok(Object.entries(states).some(([s, c]) => s !== 'idle' && c > 0), `tracking follows the outline: ${JSON.stringify(states)}`);
  t.match(locked.stderr, /sonomics overlay: http:\/\/127\.0\.0\.1:\d+\//);

  t.equal(idle.code, 0, idle.stderr);
  const is = json(t, idle);
  t.equal(is.frames, n);
  t.same(Object.keys(is.tracking.states), ['idle'], 'without an outline tracking waits');

  t.equal(wm.code, 1);
  t.match(wm.stderr, /--lesion .*wrong\.png: 100x80 is neither the screen \(1280x720\) nor the B-mode pane \(576x561\)/);

  // export: a video, and a trimmed recording.
  t.equal(e.code, 0, e.stderr);
  t.match(json(t, e), { first: 0, last: n - 1, frames: n });
  t.match(await probeMedia({ input: mp4, countFrames: true }), { codec: 'h264', width: 1280, height: 720, frames: n });
  t.equal(tr.code, 0, tr.stderr);
  const inRange = opened.frames.filter((f) => f.t >= 400 && f.t <= 1600).length;
  t.equal(json(t, tr).frames, inRange, `${inRange} frames between 0.4 and 1.6 s`);
  t.equal((await openRecording(trim)).videoFrames, inRange);
  t.equal(badRange.code, 1);
  t.match(badRange.stderr, /^sonomics: session\.sonrec: no frame from 30 s on \(the recording lasts \d+\.\d{3} s\)/);
  t.notOk(existsSync(join(dir, 'bad.sonrec')));
  t.equal(noOut.code, 2);
  t.match(noOut.stderr, /export: --out FILE is required/);

  // layout: the recording's own layout drawn over its first frame.
  t.equal(l.code, 0, l.stderr);
  t.match(json(t, l), { frame: 0, panes: { bmode: { x: 38, y: 79, width: 576, height: 561 } } });
  const meta = await sharp(png).metadata();
  t.same([meta.format, meta.width, meta.height], ['png', 1280, 720]);
});

t.test('record: a named profile is stored or, when it does not fit, refused; a source failing mid-way ends the recording cleanly', async (t) => {
  const dir = t.testdir();
  const dd = dicomDir(t);
  const config = join(dir, 'profiles.json');
  const pane = (x: number) => ({ x, y: 79, width: 576, height: 561 });
  writeFileSync(config, JSON.stringify({
    layouts: {
      'phantom-rect': { screen: { width: 1280, height: 720 }, panes: { bmode: pane(38), contrast: pane(665) }, sector: { type: 'rect', x: 10, y: 20, width: 100, height: 50 }, calibration: { mmPerPixel: 0.08 } },
      'other-screen': { screen: { width: 600, height: 430 }, panes: { bmode: { x: 0, y: 0, width: 290, height: 400 }, contrast: { x: 300, y: 0, width: 290, height: 400 } }, calibration: { mmPerPixel: 0.2 } },
    },
  }));
  // A DICOM cine whose fourth frame cannot be decoded (its RLE header is damaged).
  let bad: string | undefined;
  if (dd) {
    const dicomParser = createRequire(import.meta.url)('dicom-parser') as typeof import('dicom-parser');
    const b = Buffer.from(readFileSync(join(dd, 'US-PAL-8-10x-echo.dcm')));
    b.writeUInt32LE(7, dicomParser.parseDicom(b).elements.x7fe00010.fragments![3].position);
    bad = join(dir, 'bad-rle.dcm');
    writeFileSync(bad, b);
  }
  const [fits, misfit, failing] = await Promise.all([
    cli(t, ['record', '--input', 'phantom', '--out', join(dir, 'rect.sonrec'), '--frames', '4', '--layout', 'phantom-rect', '--config', config]),
    cli(t, ['record', '--input', 'phantom', '--out', join(dir, 'misfit.sonrec'), '--frames', '4', '--layout', 'other-screen', '--config', config]),
    bad ? cli(t, ['record', '--input', bad, '--out', join(dir, 'bad.sonrec')], 30000) : undefined,
  ]);
  t.equal(fits.code, 0, fits.stderr);
  t.match(json(t, fits), { layout: true });
  const rect = await openRecording(join(dir, 'rect.sonrec'));
  t.same(rect.layout?.panes.bmode, { name: 'bmode', rect: pane(38), spacingX: 0.08, spacingY: 0.08 }, 'the named profile is stored');
  t.equal(rect.layout?.sector?.filter((v) => v !== 0).length, 100 * 50, 'with its sector mask');

  t.equal(misfit.code, 1, 'a named profile that does not fit the source is an error, not silently dropped');
  t.match(misfit.stderr, /layout profile "other-screen" is for a 600x430 screen, phantom:42 delivers 1280x720/);
  t.notOk(existsSync(join(dir, 'misfit.sonrec')), 'nothing recorded');

  if (failing) {
    t.equal(failing.code, 1, 'the command ends (it does not wait for ffmpeg forever)');
    t.match(failing.stderr, /^sonomics: bad-rle\.dcm: frame 4 of 10 \(index 3\) could not be decoded/m);
    const r = await openRecording(join(dir, 'bad.sonrec'));
    t.ok(r.frames.length >= 1 && r.frames.length <= 3, `the frames before the bad one are kept (${r.frames.length})`);
    t.equal(r.videoFrames, r.frames.length, 'and the video was closed properly');
    t.same(r.notes, []);
  }
});

t.test('layout: a DICOM with two regions needs no profile; --layout without --config is a usage error', async (t) => {
  const dir = t.testdir();
  const dd = dicomDir(t);
  if (dd) {
    const png = join(dir, 'aloka.png');
    const r = await cli(t, ['layout', join(dd, 'gdcm-US-ALOKA-16.dcm'), '--out', png]);
    t.equal(r.code, 0, r.stderr);
    t.match(json(t, r), { layout: '(from dicom:gdcm-US-ALOKA-16.dcm)', panes: { bmode: { x: 32, y: 24, width: 304, height: 392 }, contrast: { x: 336, y: 24, width: 304, height: 392 } } });
    const meta = await sharp(png).metadata();
    t.same([meta.width, meta.height], [640, 480]);
    // One region, no profile: the command says to name one.
    const one = await cli(t, ['layout', join(dd, 'US-PAL-8-10x-echo.dcm'), '--out', join(dir, 'echo.png')]);
    t.equal(one.code, 1);
    t.match(one.stderr, /name a layout profile/);
    t.notOk(existsSync(join(dir, 'echo.png')));
  }
  const noConfig = await cli(t, ['layout', 'phantom', '--out', join(dir, 'n.png'), '--layout', 'sonomics-phantom']);
  t.equal(noConfig.code, 2);
  t.match(noConfig.stderr, /--layout NAME needs --config FILE/);
  t.notOk(existsSync(join(dir, 'n.png')));
});

// ---------------------------------------------------------------------------------------------
// run with a DICOM source from the config

t.test('run --config with source.type dicom (no loop) and an inline 600x430 profile ends after the file', async (t) => {
  const dir = t.testdir();
  const dd = dicomDir(t);
  if (!dd) return;
  const profile = {
    description: 'US-PAL-8-10x-echo test export, split in two equal panes',
    screen: { width: 600, height: 430 },
    panes: { bmode: { x: 0, y: 10, width: 290, height: 400 }, contrast: { x: 300, y: 10, width: 290, height: 400 } },
    calibration: { mmPerPixel: 0.25 },
  };
  const config = join(dir, 'echo.json');
  writeFileSync(config, JSON.stringify({
    source: { type: 'dicom', layout: 'echo-split', dicom: { path: join(dd, 'US-PAL-8-10x-echo.dcm'), loop: false } },
    layouts: { 'echo-split': profile },
  }, null, 2));
  const r = await cli(t, ['run', '--config', config, '--headless', '--port', '0', '--json']);
  t.equal(r.code, 0, r.stderr);
  const s = json(t, r);
  t.equal(s.frames, 10, 'the ten frames of the file, then the end');
  t.match(s.source, { id: 'dicom:US-PAL-8-10x-echo.dcm', width: 600, height: 430, delivered: 10 });
  t.equal(s.pipeline.received, 10);
  t.match(s.notice, /not for diagnosis/);

  // A profile for another screen size is refused before anything runs.
  writeFileSync(config, JSON.stringify({
    source: { type: 'dicom', layout: 'echo-split', dicom: { path: join(dd, 'US-PAL-8-10x-echo.dcm'), loop: false } },
    layouts: { 'echo-split': { ...profile, screen: { width: 640, height: 430 } } },
  }));
  const wrong = await cli(t, ['run', '--config', config, '--headless', '--port', '0', '--json']);
  t.equal(wrong.code, 1);
  t.match(wrong.stderr, /layout profile "echo-split" is for a 640x430 screen, dicom:US-PAL-8-10x-echo\.dcm delivers 600x430/);
});
