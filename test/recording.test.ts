// Session recordings (device/recording.ts): lossless round trips (gray and colour, layout with a
// sector mask, duplicate flags, recorded times, realtime and fast replay), crash safety of
// `sonomics record` killed with SIGKILL (alone, and together with its ffmpeg), damaged
// recordings refused with a RecordingError naming the problem, and export (trim to .sonrec,
// H.264 video). Every process started here is stopped by its PID; every wait is bounded.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { FrameStamper } from '../core/arrival.js';
import type { Frame } from '../core/frame.js';
import type { Layout } from '../core/layout.js';
import { native } from '../core/native.js';
import { probeMedia } from '../device/ffmpeg.js';
import { PhantomScanner } from '../device/phantom.js';
import {
  exportRecording, frameRange, openRecording, RecordingError, ReplaySource, SessionRecorder, type Recording, type RecordedFrame,
} from '../device/recording.js';
import { fromRoot, gone, sha, sleep, waitFor, within } from './helpers.js';

// ---------------------------------------------------------------------------------------------
// Helpers


/** Rejects when `p` does not settle within ms. */



function killIfAlive(pid: number | undefined): boolean {
  if (pid === undefined || gone(pid)) return false;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return false;
  }
  return true;
}

/** The PIDs of the live children of `pid` (ps), with their command names. */
function childrenOf(pid: number): Array<{ pid: number; comm: string }> {
  const r = spawnSync('ps', ['-o', 'pid=,comm=', '--ppid', String(pid)], { encoding: 'utf8', timeout: 5000 });
  return (r.stdout ?? '').split('\n').map((l) => l.trim()).filter(Boolean)
    .map((l) => { const [p, ...c] = l.split(/\s+/); return { pid: Number(p), comm: c.join(' ') }; })
    .filter((c) => c.comm !== 'ps' && !gone(c.pid));
}

/** After each test: no ffmpeg/ffprobe child of this process may be left running (killed by PID if so). */
t.afterEach(async (t) => {
  // A child killed a moment ago may still be on its way out.
  await waitFor(() => childrenOf(process.pid).every((c) => !/^ff(mpeg|probe)$/.test(c.comm)), 3000);
  for (const c of childrenOf(process.pid)) {
    if (!/^ff(mpeg|probe)$/.test(c.comm)) continue;
    killIfAlive(c.pid);
    t.fail(`${c.comm} (pid ${c.pid}) was still running after the test`);
  }
});

const W = 320, H = 240;

interface Input {
  data: Uint8Array;
  rgb?: Uint8Array;
  arrivalMs: number;
  duplicate?: boolean;
  sourceTimeMs?: number;
}

/**
 * Records `inputs` through SessionRecorder, stamped by a FrameStamper with the given arrival
 * times. write() drops a frame while the encoder still holds the previous one; the test wants
 * every frame, so a dropped write is retried (bounded).
 */
async function recordInputs(path: string, inputs: Input[], o: { colour?: boolean; layout?: Layout; fps?: number; width?: number; height?: number } = {}) {
  const width = o.width ?? W, height = o.height ?? H;
  const rec = new SessionRecorder({ path, width, height, fps: o.fps ?? 25, sourceId: 'test:recording', colour: o.colour, layout: o.layout });
  const errors: Error[] = [];
  rec.on('error', (e: Error) => errors.push(e));
  const stamper = new FrameStamper({ sourceId: 'test:recording', width, height, fps: o.fps ?? 25, duplicates: false });
  const frames: Frame[] = [];
  let failure: unknown;
  try {
    for (const inp of inputs) {
      const f = stamper.stamp(inp.data, { arrivalMs: inp.arrivalMs, duplicate: inp.duplicate ?? false, sourceTimeMs: inp.sourceTimeMs, rgb: inp.rgb });
      frames.push(f);
      const end = performance.now() + 10000;
      while (!rec.write(f)) {
        if (errors.length) throw errors[0];
        if (performance.now() > end) throw new Error(`the recorder did not take frame ${f.seq} within 10 s`);
        await sleep(2);
      }
    }
  } catch (e) {
    failure = e;
  }
  // close() ends ffmpeg (it has its own bounded kill) even after a failure; bounded here too.
  const stats = await within(rec.close(), 40000, 'SessionRecorder.close()');
  if (failure) throw failure;
  if (errors.length) throw errors[0];
  return { stats, frames, pid: rec.pid };
}

/** Plays a recording to its end; rejects on error or after ms. */
async function replayAll(path: string, o: { realtime?: boolean; speed?: number } = {}, ms = 30000): Promise<{ frames: Frame[]; elapsedMs: number; src: ReplaySource }> {
  const src = await ReplaySource.open({ path, realtime: o.realtime ?? false, speed: o.speed });
  const frames: Frame[] = [];
  let t0 = 0, tEnd = 0;
  try {
    await within(new Promise<void>((resolve, reject) => {
      src.on('frame', (f: Frame) => { frames.push(f); tEnd = performance.now(); });
      src.once('end', () => resolve());
      src.once('error', reject);
      t0 = performance.now();
      src.start();
    }), ms, `replay of ${path}`);
  } finally {
    src.stop();
  }
  return { frames, elapsedMs: tEnd - t0, src };
}

/** `count` phantom frames at 320x240: frames 5 and 6 repeat frame 4 (flagged), jittered arrival, some source times. */
function phantomInputs(count: number, phantom = new PhantomScanner({ width: W, height: H, seed: 7 })): Input[] {
  const out: Input[] = [];
  let last: Uint8Array | undefined;
  for (let k = 0; k < count; k++) {
    const dup = k === 5 || k === 6;
    const data = dup ? last!.slice() : phantom.render(k).data;
    last = data;
    out.push({ data, arrivalMs: 5000 + k * 40 + (k % 3) * 3.25, duplicate: dup, sourceTimeMs: k % 2 === 0 ? k * 40 : undefined });
  }
  return out;
}

async function recordingError(t: Test, p: Promise<unknown>): Promise<RecordingError> {
  try {
    await p;
  } catch (e) {
    t.type(e, RecordingError, `a RecordingError (got ${(e as Error).name}: ${(e as Error).message})`);
    return e as RecordingError;
  }
  t.fail('expected a RecordingError');
  return new RecordingError('', '(none)');
}

const indexLines = (path: string) => {
  try {
    return readFileSync(join(path, 'frames.jsonl'), 'utf8').split('\n').filter((l) => l !== '').length;
  } catch {
    return 0;
  }
};

// ---------------------------------------------------------------------------------------------
// Round trips

t.test('round trip: header, index and video agree; fast replay is byte-identical with recorded times and duplicate flags', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'rt.sonrec');
  const N = 24;
  const inputs = phantomInputs(N);
  const { stats, frames: written, pid } = await recordInputs(path, inputs);
  t.equal(stats.written, N, 'every frame written');
  t.ok(pid !== undefined && gone(pid), 'the encoder (ffmpeg) has ended after close()');
  t.same(readdirSync(path).sort(), ['frames.jsonl', 'session.json', 'video.nut']);

  const rec = await openRecording(path);
  t.match(rec.header, { format: 'sonomics-recording', version: 1, width: W, height: H, pixelFormat: 'gray', fps: 25, source: { id: 'test:recording' }, video: { file: 'video.nut', codec: 'ffv1' } });
  t.match(rec.header.notice, /not for diagnosis/);
  t.equal(rec.layout, undefined, 'no layout recorded, none read');
  t.equal(rec.videoFrames, N, 'ffprobe counts N frames in video.nut');
  t.equal(rec.frames.length, N);
  t.same(rec.notes, []);
  const t0 = inputs[0].arrivalMs;
  t.same(rec.frames, inputs.map((inp, k): RecordedFrame => ({
    i: k, seq: written[k].seq, t: Math.round((inp.arrivalMs - t0) * 1000) / 1000, src: inp.sourceTimeMs ?? null, dup: inp.duplicate ? 1 : 0,
  })), 'index: frame number, seq, arrival from the first frame, source time, duplicate flag');

  const { frames, src } = await replayAll(path);
  t.equal(frames.length, N, 'fast replay delivers every frame');
  t.same(frames.map((f) => sha(f.data)), inputs.map((i) => sha(i.data)), 'pixels byte-identical (sha256)');
  t.same(frames.map((f) => f.sourceTimeMs), rec.frames.map((e) => e.t), 'sourceTimeMs = recorded arrival time');
  t.same(frames.map((f) => Boolean(f.duplicate)), inputs.map((i) => Boolean(i.duplicate)), 'duplicate flags as recorded');
  t.same(frames.map((f) => f.seq), frames.map((_, k) => k), 'replay stamps its own sequence');
  t.ok(frames.every((f) => f.width === W && f.height === H && f.rgb === undefined && f.sourceId === 'replay:rt.sonrec'));
  t.match(src.stats, { delivered: N, duplicates: 2, unique: N - 2 });
  t.equal(src.fps, 25);
});

t.test('realtime replay at speed 4 takes at least the recorded span / 4', async (t) => {
  const path = join(t.testdir(), 'slow.sonrec');
  // 12 frames 100 ms apart: a span of 1.1 s, 275 ms at speed 4.
  const phantom = new PhantomScanner({ width: W, height: H });
  await recordInputs(path, Array.from({ length: 12 }, (_, k) => ({ data: phantom.render(k).data, arrivalMs: 100 * k })));
  const fast = await replayAll(path);
  const real = await replayAll(path, { realtime: true, speed: 4 });
  t.equal(real.frames.length, 12);
  t.same(real.frames.map((f) => sha(f.data)), fast.frames.map((f) => sha(f.data)), 'the same frames either way');
  t.ok(real.elapsedMs >= 0.9 * (1100 / 4), `paced: ${real.elapsedMs.toFixed(0)} ms for a 1100 ms span at speed 4`);
  await t.rejects(ReplaySource.open({ path, speed: 0 }), RecordingError, 'speed 0 refused');
  await t.rejects(ReplaySource.open({ path, speed: 1000 }), /replay speed must be in \(0, 100\]/);
});

t.test('the layout, with a sector mask, survives the round trip', async (t) => {
  const path = join(t.testdir(), 'layout.sonrec');
  const phantom = new PhantomScanner({ width: W, height: H, seed: 3 });
  const r = phantom.layout.panes.bmode.rect;
  // A fan-like mask: pixels below a diagonal boundary and inside a circle (not symmetric, not all 255).
  const sector = new Uint8Array(r.width * r.height);
  for (let y = 0; y < r.height; y++)
    for (let x = 0; x < r.width; x++) if (Math.hypot(x - r.width / 2, y + 30) < r.height + 10 && y > (x * 0.3)) sector[y * r.width + x] = 255;
  const layout: Layout = { ...phantom.layout, sector };
  await recordInputs(path, Array.from({ length: 3 }, (_, k) => ({ data: phantom.render(k).data, arrivalMs: 33 * k })), { layout });
  const rec = await openRecording(path);
  t.ok(rec.layout, 'layout read back');
  t.same(rec.layout!.panes, phantom.layout.panes, 'panes and spacing');
  t.same([rec.layout!.width, rec.layout!.height], [W, H]);
  t.ok(rec.layout!.sector, 'sector read back');
  t.equal(sha(rec.layout!.sector!), sha(sector), 'sector mask byte-identical');
  const src = await ReplaySource.open({ path, realtime: false });
  t.same(src.layout?.panes, phantom.layout.panes, 'the replay source knows the layout');
  t.equal(sha(src.layout!.sector!), sha(sector));
  // A damaged sector in the header is a RecordingError naming session.json's layout.
  const hdr = JSON.parse(readFileSync(join(path, 'session.json'), 'utf8'));
  hdr.layout.panes.contrast.rect.width = 9;
  writeFileSync(join(path, 'session.json'), JSON.stringify(hdr));
  const e = await recordingError(t, openRecording(path));
  t.match(e.message, /layout\.sonrec: session\.json: layout: .*same size/);
});

t.test('colour (rgb24) round trip: frame.rgb identical, gray derived from it', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'colour.sonrec');
  const phantom = new PhantomScanner({ width: W, height: H, seed: 11 });
  const inputs: Input[] = [];
  for (let k = 0; k < 8; k++) {
    const g = phantom.render(k).data;
    const rgb = new Uint8Array(W * H * 3);
    for (let i = 0; i < W * H; i++) { rgb[3 * i] = g[i]; rgb[3 * i + 1] = 255 - g[i]; rgb[3 * i + 2] = (g[i] * 7 + i) & 255; }
    const gray = new Uint8Array(W * H);
    native.rgbToGray(rgb, W, H, 'interleaved', gray);
    inputs.push({ data: gray, rgb, arrivalMs: 40 * k });
  }
  await recordInputs(path, inputs, { colour: true });
  const rec = await openRecording(path);
  t.equal(rec.header.pixelFormat, 'rgb24');
  t.equal(rec.videoFrames, 8);
  const { frames } = await replayAll(path);
  t.equal(frames.length, 8);
  t.same(frames.map((f) => f.rgb && sha(f.rgb)), inputs.map((i) => sha(i.rgb!)), 'rgb byte-identical');
  t.same(frames.map((f) => sha(f.data)), inputs.map((i) => sha(i.data)), 'gray = native rgbToGray of the rgb');
  // A colour recording needs RGB frames.
  const p2 = join(dir, 'nocolour.sonrec');
  const r2 = new SessionRecorder({ path: p2, width: W, height: H, fps: 25, sourceId: 'x', colour: true });
  const st = new FrameStamper({ sourceId: 'x', width: W, height: H, duplicates: false });
  t.throws(() => r2.write(st.stamp(inputs[0].data)), /frame 0 has no RGB pixels but the recording is in colour/);
  t.throws(() => r2.write(new PhantomScanner({ width: 400, height: 300 }).frameAt(0).frame), /frame 0 is 400x300, the recording is 320x240/);
  await within(r2.close(), 20000, 'close');
});

// ---------------------------------------------------------------------------------------------
// Crash safety: `sonomics record` killed with SIGKILL

interface Crashed { dir: string; path: string; lines: number; ffmpegPid: number }

/**
 * Starts `sonomics record --input phantom` (1280x720 at 30 fps), waits until frames.jsonl has at
 * least `minLines` lines, then SIGKILLs node (and its ffmpeg too when `both`). Returns how many
 * index lines there were right after the kill.
 */
async function crashRecord(t: Test, both: boolean, minLines = 20): Promise<Crashed | undefined> {
  // t.testdir() is called once per test: a second call would empty the folder.
  const dir = t.testdir();
  const path = join(dir, 'crash.sonrec');
  const node = spawn(process.execPath, [fromRoot('bin', 'sonomics.js'), 'record', '--input', 'phantom', '--out', path, '--frames', '100000'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  node.stderr!.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  const closed = new Promise<void>((resolve) => node.on('close', () => resolve()));
  let ffmpegPid: number | undefined;
  try {
    const started = await waitFor(() => indexLines(path) >= minLines, 30000);
    if (!t.ok(started, `frames.jsonl reached ${minLines} lines (has ${indexLines(path)}); stderr: ${stderr}`)) return undefined;
    const ff = childrenOf(node.pid!).filter((c) => c.comm === 'ffmpeg');
    if (!t.equal(ff.length, 1, 'one ffmpeg child of the recording node')) return undefined;
    ffmpegPid = ff[0].pid;
    if (both) {
      // Kill right after a new frame was indexed: the encoder most likely still has it in hand.
      const n = indexLines(path);
      await waitFor(() => indexLines(path) > n, 2000);
      process.kill(node.pid!, 'SIGKILL');
      process.kill(ffmpegPid, 'SIGKILL');
    } else {
      process.kill(node.pid!, 'SIGKILL');
    }
    await within(closed, 10000, 'the killed node to close');
    const lines = indexLines(path);
    if (!both) {
      // ffmpeg sees the end of its input and closes the file by itself.
      const ended = await waitFor(() => gone(ffmpegPid!), 15000);
      t.ok(ended, 'ffmpeg ends by itself after node is killed');
    } else {
      t.ok(await waitFor(() => gone(ffmpegPid!), 5000), 'ffmpeg killed');
    }
    return { dir, path, lines, ffmpegPid };
  } finally {
    killIfAlive(node.pid);
    if (killIfAlive(ffmpegPid)) t.fail(`ffmpeg ${ffmpegPid} was still alive at the end; killed`);
    await within(closed, 10000, 'node to close').catch(() => undefined);
  }
}

/**
 * Replays a crashed recording and matches every frame to the phantom's own rendering: the index's
 * seq is the phantom's delivery count, so its frame index is seq plus the frames the phantom
 * skipped so far (never fewer): search upward from there.
 */
async function checkAgainstPhantom(t: Test, rec: Recording): Promise<void> {
  const { frames } = await replayAll(rec.path, {}, 60000);
  t.equal(frames.length, rec.frames.length, 'replay delivers every frame in the video');
  const phantom = new PhantomScanner({});
  let k = -1, prevSeq = -1, matched = 0;
  const buf = new Uint8Array(phantom.width * phantom.height);
  for (let j = 0; j < frames.length; j++) {
    const seq = rec.frames[j].seq;
    const want = sha(frames[j].data);
    let found = -1;
    for (let c = Math.max(k + (seq - prevSeq), seq); c < seq + 120 && found < 0; c++) if (sha(phantom.render(c, buf).data) === want) found = c;
    if (!t.ok(found >= 0, `frame ${j} (seq ${seq}) is byte-identical to a phantom frame at index >= ${Math.max(k + (seq - prevSeq), seq)}`)) break;
    k = found;
    prevSeq = seq;
    matched++;
  }
  t.equal(matched, frames.length, 'every replayed frame is the phantom\'s own rendering');
}

t.test('crash: node killed with SIGKILL while recording; ffmpeg finishes the file; all but at most the last frame survive', async (t) => {
  const c = await crashRecord(t, false);
  if (!c) return;
  const rec = await openRecording(c.path);
  t.ok(rec.frames.length >= 19, `${rec.frames.length} frames readable of ${c.lines} indexed`);
  t.ok(rec.videoFrames >= c.lines - 1, `video holds ${rec.videoFrames} of ${c.lines} indexed frames (at most the last one lost)`);
  t.ok(rec.videoFrames <= c.lines, 'the video holds no frame the index does not know');
  t.equal(rec.notes.some((n) => /video\.nut holds \d+ of the \d+ indexed frames/.test(n)), rec.videoFrames < c.lines, 'a note says the video is short exactly when it is');
  t.comment(`indexed ${c.lines}, in the video ${rec.videoFrames}; notes: ${JSON.stringify(rec.notes)}`);
  t.ok(rec.frames.every((e, i) => e.i === i), 'index numbering intact');
  await checkAgainstPhantom(t, rec);
});

t.test('crash: node and ffmpeg killed at once; the recording still opens, at most two frames lost, replay works', async (t) => {
  const c = await crashRecord(t, true);
  if (!c) return;
  const rec = await openRecording(c.path);
  t.comment(`indexed ${c.lines}, in the video ${rec.videoFrames}; notes: ${JSON.stringify(rec.notes)}`);
  // Killed right after a frame was indexed, at worst two indexed frames are not in the file:
  // that one (in the pipe) and the one being encoded. NUT writes every encoded frame at once.
  t.ok(rec.videoFrames >= c.lines - 2, `video holds ${rec.videoFrames} of ${c.lines} indexed frames (at most two lost)`);
  t.ok(rec.videoFrames <= c.lines, 'the video holds no frame the index does not know');
  t.equal(rec.notes.some((n) => n.startsWith(`video.nut holds ${rec.videoFrames} of the ${c.lines} indexed frames (the recording was cut short)`)), rec.videoFrames < c.lines,
    'a note says the video is short exactly when it is');
  t.equal(rec.frames.length, Math.min(rec.videoFrames, c.lines));
  await checkAgainstPhantom(t, rec);
  // The cut file can be trimmed and exported like any other.
  const out = join(c.dir, 'cut-trim.sonrec');
  const r = await exportRecording(rec, out);
  t.equal(r.frames, rec.frames.length);
  t.equal((await openRecording(out)).videoFrames, rec.frames.length);
});

// ---------------------------------------------------------------------------------------------
// Damaged recordings

t.test('damaged recordings: a RecordingError naming the problem; a good recording still opens', async (t) => {
  const dir = t.testdir();
  const good = join(dir, 'good.sonrec');
  const N = 6;
  await recordInputs(good, phantomInputs(N));
  const goodLines = readFileSync(join(good, 'frames.jsonl'), 'utf8').split('\n').slice(0, -1);
  t.equal(goodLines.length, N);

  let n = 0;
  /** A copy of the good recording, damaged by `damage`. */
  const damaged = (damage: (p: string) => void) => {
    const p = join(dir, `bad${n++}.sonrec`);
    cpSync(good, p, { recursive: true });
    damage(p);
    return p;
  };
  const header = (p: string, edit: (h: Record<string, unknown>) => void) => {
    const h = JSON.parse(readFileSync(join(p, 'session.json'), 'utf8'));
    edit(h);
    writeFileSync(join(p, 'session.json'), JSON.stringify(h));
  };
  const index = (p: string, lines: string[], end = '\n') => writeFileSync(join(p, 'frames.jsonl'), lines.join('\n') + end);
  const stillGood = async (what: string) => {
    const r = await openRecording(good);
    t.ok(r.frames.length === N && r.videoFrames === N && r.notes.length === 0, `the good recording still opens after: ${what}`);
  };

  const cases: Array<[string, (p: string) => void, RegExp]> = [
    ['session.json missing', (p) => rmSync(join(p, 'session.json')), /^bad\d+\.sonrec: cannot read session\.json: missing \(is this a sonomics recording\?\)$/],
    ['session.json not JSON', (p) => writeFileSync(join(p, 'session.json'), '{"format": "sonomics-recording", '), /^bad\d+\.sonrec: session\.json is not valid JSON: /],
    ['session.json an array', (p) => writeFileSync(join(p, 'session.json'), '[]'), /session\.json: format: must be "sonomics-recording"/],
    ['wrong format', (p) => header(p, (h) => { h.format = 'something-else'; }), /session\.json: format: must be "sonomics-recording" \(got "something-else"\)/],
    ['wrong version', (p) => header(p, (h) => { h.version = 2; }), /session\.json: version: this sonomics reads version 1 \(got 2\)/],
    ['bad width', (p) => header(p, (h) => { h.width = 0; }), /session\.json: width: must be an integer in \[1, 16384\]/],
    ['width a string', (p) => header(p, (h) => { h.width = '320'; }), /session\.json: width: must be an integer/],
    ['bad pixel format', (p) => header(p, (h) => { h.pixelFormat = 'yuv420p'; }), /session\.json: pixelFormat: must be "gray" or "rgb24"/],
    ['bad fps', (p) => header(p, (h) => { h.fps = 0; }), /session\.json: fps: must be a number in \(0, 1000\]/],
    ['no source id', (p) => header(p, (h) => { delete h.source; }), /session\.json: source\.id: must be a string/],
    ['wrong size for the video', (p) => header(p, (h) => { h.width = 322; }), /video\.nut is 320x240, session\.json says 322x240/],
    ['frames.jsonl missing', (p) => rmSync(join(p, 'frames.jsonl')), /cannot read frames\.jsonl: missing/],
    ['bad middle line', (p) => index(p, [...goodLines.slice(0, 2), '{"i": 2, "seq": 2, "t": 8', ...goodLines.slice(3)]), /^bad\d+\.sonrec: frames\.jsonl line 3: not valid JSON$/],
    ['a field missing', (p) => index(p, [...goodLines.slice(0, 3), '{"i":3,"seq":3,"src":null,"dup":0}', ...goodLines.slice(4)]), /frames\.jsonl line 4: needs numbers i, seq, t, src \(or null\) and dup 0\|1/],
    ['frame numbers skip', (p) => index(p, [...goodLines.slice(0, 4), ...goodLines.slice(5)]), /frames\.jsonl line 5: frame number 5, expected 4/],
    ['time going backwards', (p) => index(p, goodLines.map((l, k) => (k === 4 ? JSON.stringify({ ...JSON.parse(l), t: 1 }) : l))), /frames\.jsonl line 5: time goes backwards/],
    ['video.nut missing', (p) => rmSync(join(p, 'video.nut')), /^bad\d+\.sonrec: video\.nut is missing$/],
    ['video.nut garbage', (p) => writeFileSync(join(p, 'video.nut'), Buffer.alloc(5000, 0x5a)), /^bad\d+\.sonrec: video\.nut cannot be read: /],
    ['video.nut empty', (p) => writeFileSync(join(p, 'video.nut'), ''), /video\.nut cannot be read: /],
  ];
  for (const [what, damage, re] of cases) {
    const p = damaged(damage);
    const e = await recordingError(t, openRecording(p));
    t.match(e.message, re, what);
    t.equal(e.path, p, `${what}: the error names the recording`);
    await t.rejects(ReplaySource.open({ path: p }), RecordingError, `${what}: replay refuses it too`);
    await stillGood(what);
  }

  // A cut last line (the process stopped while writing it) is a note, not an error.
  const cut = damaged((p) => writeFileSync(join(p, 'frames.jsonl'), goodLines.join('\n') + '\n' + '{"i":6,"seq":6,"t":2'));
  const rc = await openRecording(cut);
  t.equal(rc.frames.length, N, 'the complete lines are read');
  t.match(rc.notes, [/frames\.jsonl: the last line is incomplete .*ignored/]);
  const cut2 = damaged((p) => index(p, [...goodLines.slice(0, -1), goodLines[N - 1].slice(0, 10)], ''));
  const rc2 = await openRecording(cut2);
  t.equal(rc2.frames.length, N - 1, 'a last line without its newline is dropped');
  t.equal(rc2.videoFrames, N, 'the video still holds all frames');
  t.equal((await replayAll(cut2)).frames.length, N - 1, 'replay plays the indexed frames');

  // A video shorter than the index (cut file): a note; the frames in it replay exactly.
  const short = damaged((p) => truncateSync(join(p, 'video.nut'), Math.floor(statSync(join(p, 'video.nut')).size * 0.6)));
  const rs = await openRecording(short);
  t.ok(rs.videoFrames > 0 && rs.videoFrames < N, `a cut video holds fewer frames (${rs.videoFrames} of ${N})`);
  t.match(rs.notes, [new RegExp(`video\\.nut holds ${rs.videoFrames} of the ${N} indexed frames \\(the recording was cut short\\)`)]);
  t.equal(rs.frames.length, Math.min(rs.videoFrames, N));
  const inputs = phantomInputs(N);
  const { frames } = await replayAll(short);
  t.ok(frames.length >= rs.frames.length - 1 && frames.length > 0, `replay of the cut video delivers ${frames.length} frames`);
  // The last frame of a cut file may be partly damaged; all before it are exact.
  t.same(frames.slice(0, rs.frames.length - 1).map((f) => sha(f.data)), inputs.slice(0, rs.frames.length - 1).map((i) => sha(i.data)), 'frames before the cut are exact');
  // A video holding more frames than the index: the index rules.
  const longer = damaged((p) => index(p, goodLines.slice(0, 3)));
  const rl = await openRecording(longer);
  t.same([rl.frames.length, rl.videoFrames, rl.notes], [3, N, []]);

  // An empty recording (no frame yet) opens, and replays to an immediate end.
  const empty = damaged((p) => { writeFileSync(join(p, 'frames.jsonl'), ''); });
  const re = await openRecording(empty);
  t.same([re.frames.length, re.videoFrames], [0, 0]);
  t.equal((await replayAll(empty)).frames.length, 0);
  await stillGood('all of the above');
});

// ---------------------------------------------------------------------------------------------
// Export

t.test('export: trim to .sonrec (lossless, times rebased), to .mp4 (H.264); bad ranges and types refused', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'src.sonrec');
  const N = 20;
  const inputs = phantomInputs(N);
  await recordInputs(path, inputs);
  const rec = await openRecording(path);
  // t = k*40 + (k%3)*3.25: frames 5 (203.25 ms) to 12 (480 ms) lie in [0.2 s, 0.5 s].
  t.same(frameRange(rec, 0.2, 0.5), { first: 5, last: 12 });
  const trimmed = join(dir, 'trim.sonrec');
  t.same(await exportRecording(rec, trimmed, { fromS: 0.2, toS: 0.5 }), { first: 5, last: 12, frames: 8 });
  const tr = await openRecording(trimmed);
  t.equal(tr.frames.length, 8);
  t.equal(tr.videoFrames, 8, 'the trimmed video holds exactly the frames of the range');
  t.same(tr.notes, []);
  const t0 = rec.frames[5].t;
  t.same(tr.frames, rec.frames.slice(5, 13).map((e, k) => ({ ...e, i: k, t: Math.round((e.t - t0) * 1000) / 1000 })), 'times rebased to the first frame; seq, src, dup kept');
  t.equal(tr.frames[0].t, 0);
  t.same(tr.header.trimmedFrom, { recording: 'src.sonrec', firstFrame: 5, lastFrame: 12 });
  t.equal(tr.header.frames, 8, 'the trimmed header says how many frames it holds');
  t.same({ ...tr.header, createdAt: 0, trimmedFrom: 0, frames: 0 }, { ...rec.header, createdAt: 0, trimmedFrom: 0, frames: 0 }, 'otherwise the same header');
  const { frames } = await replayAll(trimmed);
  t.same(frames.map((f) => sha(f.data)), inputs.slice(5, 13).map((i) => sha(i.data)), 'pixels identical to the original frames 5..12');
  t.same(frames.map((f) => Boolean(f.duplicate)), [true, true, false, false, false, false, false, false], 'duplicate flags kept');

  // Whole recording to H.264.
  const mp4 = join(dir, 'all.mp4');
  t.same(await exportRecording(rec, mp4), { first: 0, last: N - 1, frames: N });
  const m = await probeMedia({ input: mp4, countFrames: true });
  t.match(m, { codec: 'h264', width: W, height: H, frames: N });
  t.equal(Math.round(m.fps!), 25, 'at the nominal rate');
  const mkv = join(dir, 'part.mkv');
  t.same(await exportRecording(rec, mkv, { fromS: 0.4 }), { first: 10, last: N - 1, frames: N - 10 });
  t.match(await probeMedia({ input: mkv, countFrames: true }), { codec: 'h264', frames: N - 10 });

  // Refusals.
  const bad: Array<[Promise<unknown>, RegExp]> = [
    [exportRecording(rec, join(dir, 'x.sonrec'), { fromS: 0.5, toS: 0.5 }), /src\.sonrec: the time range must have 0 <= from < to \(got 0\.5\.\.0\.5 s\)/],
    [exportRecording(rec, join(dir, 'x.sonrec'), { fromS: -1 }), /the time range must have 0 <= from < to/],
    [exportRecording(rec, join(dir, 'x.sonrec'), { fromS: Number.NaN }), /the time range must have 0 <= from < to/],
    [exportRecording(rec, join(dir, 'x.sonrec'), { fromS: 5, toS: 6 }), /no frame between 5 s and 6 s \(the recording lasts 0\.763 s\)/],
    [exportRecording(rec, join(dir, 'x.sonrec'), { fromS: 0.21, toS: 0.22 }), /no frame between 0\.21 s and 0\.22 s/],
    [exportRecording(rec, join(dir, 'x.sonrec'), { fromS: 0.77 }), /no frame from 0\.77 s on \(the recording lasts 0\.763 s\)/],
    [exportRecording(rec, join(dir, 'x.txt')), /x\.txt: unsupported export type "\.txt" \(use \.sonrec for a recording, or \.mp4, \.mkv, \.mov, \.avi for a video\)/],
    [exportRecording(rec, join(dir, 'noext')), /unsupported export type ""/],
    [exportRecording(rec, trimmed), /trim\.sonrec: already exists and is not empty; choose a new name/],
  ];
  for (const [p, re] of bad) {
    const e = await recordingError(t, p);
    t.match(e.message, re);
  }
  t.notOk(existsSync(join(dir, 'x.sonrec')), 'a refused export leaves nothing behind');
  t.notOk(existsSync(join(dir, 'x.txt')));
  t.equal((await openRecording(trimmed)).frames.length, 8, 'the existing trimmed recording is untouched');
});

t.test('write() keeps at most one frame in its own buffer: a burst is dropped, not queued', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'burst.sonrec');
  // The kernel buffer between node and ffmpeg (a socket pair, about 208 KiB by default) takes
  // small frames whole; a 1280x720 frame is larger, so the rest of it waits in node's buffer.
  const w = 1280, h = 720;
  let kernel = 212992;
  try { kernel = Number(readFileSync('/proc/sys/net/core/wmem_default', 'utf8')); } catch { /* default */ }
  if (kernel * 2 >= w * h) { t.comment(`SKIP: socket buffers of ${kernel} bytes hold a whole ${w}x${h} frame`); return; }
  const rec = new SessionRecorder({ path, width: w, height: h, fps: 30, sourceId: 'burst' });
  const stamper = new FrameStamper({ sourceId: 'burst', width: w, height: h, duplicates: false });
  const frames = Array.from({ length: 10 }, (_, k) => stamper.stamp(new Uint8Array(w * h).fill(20 * k + 5), { arrivalMs: 10 * k }));
  // Ten frames in one go: the first is handed over, the other nine are dropped, not queued.
  t.same(frames.map((f) => rec.write(f)), [true, false, false, false, false, false, false, false, false, false]);
  t.same(rec.stats, { written: 1, dropped: 9 });
  t.equal(readFileSync(join(path, 'frames.jsonl'), 'utf8'), '{"i":0,"seq":0,"t":0,"src":null,"dup":0}\n', 'only the frame handed over is indexed');
  // Once ffmpeg has taken it, the next frame goes in.
  t.ok(await waitFor(() => rec.write(frames[9]), 10000), 'a later frame is taken once the encoder is free');
  const st = await within(rec.close(), 20000, 'close');
  t.equal(st.written, 2);
  t.ok(st.dropped >= 9, 'drops counted (retries while the encoder was busy included)');
  t.equal(rec.write(frames[0]), false, 'a closed recorder takes nothing');
  const r = await openRecording(path);
  t.same(r.frames.map((e) => e.seq), [0, 9]);
  t.equal(r.videoFrames, 2);
  const { frames: back } = await replayAll(path);
  t.same(back.map((f) => f.data[0]), [5, 185]);
});

t.test('SessionRecorder refuses an existing non-empty folder and bad sizes, leaving it untouched', async (t) => {
  const dir = t.testdir();
  const busy = join(dir, 'busy.sonrec');
  mkdirSync(busy);
  writeFileSync(join(busy, 'notes.txt'), 'keep me');
  t.throws(() => new SessionRecorder({ path: busy, width: W, height: H, fps: 25, sourceId: 'x' }), /busy\.sonrec: already exists and is not empty; choose a new name/);
  t.same(readdirSync(busy), ['notes.txt'], 'nothing written into it');
  t.equal(readFileSync(join(busy, 'notes.txt'), 'utf8'), 'keep me');
  t.throws(() => new SessionRecorder({ path: join(dir, 'a.sonrec'), width: 0, height: H, fps: 25, sourceId: 'x' }), /width and height must be positive integers \(got 0x240\)/);
  t.throws(() => new SessionRecorder({ path: join(dir, 'b.sonrec'), width: W, height: H, fps: 0, sourceId: 'x' }), /fps must be in \(0, 1000\]/);
  t.notOk(existsSync(join(dir, 'a.sonrec')) || existsSync(join(dir, 'b.sonrec')), 'refused recorders create nothing');
  // An empty existing folder is fine.
  const empty = join(dir, 'empty.sonrec');
  mkdirSync(empty);
  const r = new SessionRecorder({ path: empty, width: W, height: H, fps: 25, sourceId: 'x' });
  t.same(await within(r.close(), 20000, 'close'), { written: 0, dropped: 0 });
  t.ok(existsSync(join(empty, 'session.json')));
  // An ffmpeg that cannot start is an 'error' event, not a crash; writes then return false.
  const broken = new SessionRecorder({ path: join(dir, 'broken.sonrec'), width: W, height: H, fps: 25, sourceId: 'x', ffmpegPath: join(dir, 'no-such-ffmpeg') });
  const err = await within(new Promise<Error>((resolve) => broken.once('error', resolve)), 10000, "the recorder's error event");
  t.match(err.message, /broken\.sonrec: cannot start ffmpeg/);
  t.equal(broken.write(new FrameStamper({ sourceId: 'x', width: W, height: H }).stamp(new Uint8Array(W * H))), false);
  await within(broken.close().catch(() => undefined), 10000, 'close of a failed recorder');
});
