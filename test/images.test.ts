// A folder of PGM/PNG frames as an input: natural name order, gray/colour PNG and PGM mixed,
// stamping, duplicates, realtime pacing, files read when due, inputKind and openInput, probe and
// frames (functions and the real CLI), and every bad input (missing folder, no frame file,
// undecodable file, size change) with an error that names the folder or file and the problem.
// Fixtures are written here into temp folders (PGM bytes directly, PNG through sharp) and removed
// afterwards; every wait is bounded.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import sharp from 'sharp';
import t, { type Test } from 'tap';
import { probe, writeFrames } from '../cli/capture.js';
import type { Frame } from '../core/frame.js';
import { readGrayImage } from '../core/imageio.js';
import { ImageFolderError, ImageFolderSource, naturalCompare, type ImageFolderSourceOptions } from '../device/images.js';
import { inputKind, layoutFor, openInput } from '../device/open.js';
import { RecordingError } from '../device/recording.js';
import type { FrameSource } from '../device/source.js';
import { readPgm, runCli, runSource, sha, sleep, within } from './helpers.js';

// ---- fixtures -----------------------------------------------------------------------------------

/** A fresh temp folder, removed when the test ends. */
function tempDir(t: Test, name = 'frames'): string {
  const root = mkdtempSync(join(tmpdir(), 'sonomics-images-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, name);
  mkdirSync(dir);
  return dir;
}

/** Frame k: a ramp that shifts with k (every block differs from frame k±1), with k in pixel 0. */
function picture(w: number, h: number, k: number): Uint8Array {
  const f = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) f[y * w + x] = (x * 3 + y * 5 + k * 37) & 255;
  f[0] = k;
  return f;
}

const pgmBytes = (data: Uint8Array, w: number, h: number) => Buffer.concat([Buffer.from(`P5\n# test frame\n${w} ${h}\n255\n`, 'latin1'), data]);
const writePgm = (path: string, data: Uint8Array, w: number, h: number) => writeFileSync(path, pgmBytes(data, w, h));
const writeGrayPng = (path: string, data: Uint8Array, w: number, h: number) =>
  sharp(Buffer.from(data), { raw: { width: w, height: h, channels: 1 } }).png().toFile(path);
const writeRgbPng = (path: string, rgb: Uint8Array, w: number, h: number) =>
  sharp(Buffer.from(rgb), { raw: { width: w, height: h, channels: 3 } }).png().toFile(path);

const W = 48, H = 32;

// ---- running a source -----------------------------------------------------------------------------


const play = async (opts: ImageFolderSourceOptions, limitMs = 20000) => {
  const source = await ImageFolderSource.open(opts);
  return { ...(await runSource(source, limitMs)), source };
};

/** The error `p` rejects with (it must reject). */
async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('resolved, a rejection was expected');
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// ---- order, formats, stamping ------------------------------------------------------------------------

t.test('natural name order over mixed .pgm/.png (any case); other files, hidden files and folders ignored', async (t) => {
  t.same(['frame-10.png', 'frame-2.pgm', 'frame-1.pgm', 'Frame-3.PNG'].sort(naturalCompare), ['frame-1.pgm', 'frame-2.pgm', 'Frame-3.PNG', 'frame-10.png']);
  const dir = tempDir(t, 'cine-01');
  // k = the frame's position in natural order.
  const files: Array<[string, 'pgm' | 'png']> = [
    ['frame-1.pgm', 'pgm'], ['frame-2.png', 'png'], ['Frame-3.PNG', 'png'], ['frame-9.pgm', 'pgm'], ['frame-10.PGM', 'pgm'], ['frame-11.png', 'png'], ['frame-100.pgm', 'pgm'],
  ];
  const pics = files.map((_, k) => picture(W, H, k));
  // Written out of order, so neither creation order nor directory order can pass for name order.
  for (const k of [4, 0, 6, 2, 5, 1, 3]) {
    const [name, kind] = files[k];
    if (kind === 'pgm') writePgm(join(dir, name), pics[k], W, H);
    else await writeGrayPng(join(dir, name), pics[k], W, H);
  }
  writeFileSync(join(dir, 'notes.txt'), 'not a frame\n');
  writeFileSync(join(dir, 'frame-5.jpg'), 'not a frame either\n');
  writeFileSync(join(dir, '._frame-4.png'), 'macOS resource fork\n');
  mkdirSync(join(dir, 'frame-6.png'));

  const r = await play({ path: dir });
  t.same(r.errors, []);
  t.ok(r.ended, "'end' after the last frame");
  t.equal(r.frames.length, 7, 'seven frames: the .txt, .jpg, hidden file and folder are ignored');
  t.same(r.source.files, files.map(([n]) => n), 'files in natural name order');
  t.same(r.frames.map((f) => f.data[0]), [0, 1, 2, 3, 4, 5, 6], 'frames delivered in that order');
  t.ok(r.frames.every((f, k) => sha(f.data) === sha(pics[k])), 'PGM and gray PNG pixels exactly as written');
  t.ok(r.frames.every((f) => f.width === W && f.height === H && f.rgb === undefined), '8-bit gray frames of the first frame size');
  t.equal(r.source.id, 'images:cine-01');
  t.same([r.source.width, r.source.height, r.source.fps], [W, H, 30], 'size from the first frame; fps 30 by default');
  t.equal((r.source as FrameSource).layout, undefined, 'no screen layout');
  t.throws(() => layoutFor(r.source), /images:cine-01 does not know its screen layout/, 'a layout profile is needed');
});

t.test('colour PNGs become gray; colour and gray PNGs and PGMs mix in one folder', async (t) => {
  const dir = tempDir(t);
  const rgb = new Uint8Array(W * H * 3);
  for (let i = 0; i < W * H; i++) {
    const left = i % W < W / 2;
    // Left half neutral gray 120, right half pure red.
    rgb.set(left ? [120, 120, 120] : [255, 0, 0], 3 * i);
  }
  await writeRgbPng(join(dir, 'a1.png'), rgb, W, H);
  const gray = picture(W, H, 7);
  writePgm(join(dir, 'a2.pgm'), gray, W, H);
  await writeGrayPng(join(dir, 'a3.png'), gray, W, H);
  // A colour PNG with an alpha channel too.
  const rgba = new Uint8Array(W * H * 4);
  for (let i = 0; i < W * H; i++) rgba.set([200, 200, 200, 255], 4 * i);
  await sharp(Buffer.from(rgba), { raw: { width: W, height: H, channels: 4 } }).png().toFile(join(dir, 'a4.png'));

  const r = await play({ path: dir });
  t.same(r.errors, []);
  t.equal(r.frames.length, 4);
  const c = r.frames[0];
  t.equal(c.rgb, undefined, 'a colour PNG is delivered as gray');
  t.equal(c.data.length, W * H, 'one byte per pixel');
  t.ok(Math.abs(c.data[H / 2 * W + 2] - 120) <= 1, `neutral gray stays gray (${c.data[H / 2 * W + 2]})`);
  const red = c.data[H / 2 * W + W - 2];
  // sharp (libvips) weighs colour by lightness, not by BT.601 as the native converter does: red is ~127, not 76.
  t.ok(red > 30 && red < 225, `pure red becomes an intermediate gray (${red})`);
  t.same(sha(c.data), sha((await readGrayImage(join(dir, 'a1.png'))).data), 'the gray of core/imageio readGrayImage');
  t.equal(sha(r.frames[1].data), sha(gray), 'PGM');
  t.equal(sha(r.frames[2].data), sha(gray), 'gray PNG');
  t.ok(r.frames[3].data.every((v) => Math.abs(v - 200) <= 1), 'RGBA PNG: gray, alpha dropped');
});

t.test('stamping: seq, source id, stats, nominal source time; frame count and end; restart after end', async (t) => {
  const dir = tempDir(t);
  for (let k = 0; k < 12; k++) writePgm(join(dir, `f${k}.pgm`), picture(W, H, k), W, H);
  const source = await ImageFolderSource.open({ path: dir, fps: 25 });
  t.same(source.stats, { delivered: 0, unique: 0, duplicates: 0, gaps: 0, dropped: 0 }, 'stats before start');
  const r = await runSource(source, 20000);
  t.ok(r.ended);
  t.same(r.frames.map((f) => f.seq), [...Array(12).keys()], 'seq 0..11');
  t.ok(r.frames.every((f, i) => f.sourceId === 'images:' + basename(dir) && f.sourceTimeMs === i * 40 && !f.duplicate), 'source id; the nominal clock (index at 25 fps); no repeats');
  t.ok(r.frames.every((f, i) => i === 0 || f.timestampMs >= r.frames[i - 1].timestampMs), 'arrival stamps increase');
  t.match(source.stats, { delivered: 12, unique: 12, duplicates: 0, dropped: 0 }, 'stats');
  t.equal(source.fps, 25);

  // start() again after 'end' plays the folder again; seq continues (one stamper per source).
  const again = await runSource(source, 20000);
  t.ok(again.ended);
  t.same(again.frames.map((f) => f.seq), [...Array(12).keys()].map((k) => k + 12), 'seq continues on a second run');
  t.same(again.frames.map((f) => f.data[0]), [...Array(12).keys()], 'the same frames, read again');
  t.equal(source.stats.delivered, 24);
});

t.test('duplicates: two identical frames in a row are marked when detection is on', async (t) => {
  const dir = tempDir(t);
  const a = picture(64, 48, 1), b = picture(64, 48, 2);
  writePgm(join(dir, 'img1.pgm'), a, 64, 48);
  await writeGrayPng(join(dir, 'img2.png'), a, 64, 48); // the same picture, other format
  writePgm(join(dir, 'img3.pgm'), b, 64, 48);
  writePgm(join(dir, 'img4.pgm'), a, 64, 48);
  writePgm(join(dir, 'img5.pgm'), a, 64, 48);

  const on = await play({ path: dir, duplicates: { threshold: 8, blockSize: 16 } });
  t.same(on.frames.map((f) => !!f.duplicate), [false, true, false, false, true], 'each repeat of the previous frame is marked');
  t.match(on.source.stats, { delivered: 5, unique: 3, duplicates: 2 });
  const dflt = await play({ path: dir });
  t.same(dflt.frames.map((f) => !!f.duplicate), [false, true, false, false, true], 'detection is on by default, as for the other sources');
  const off = await play({ path: dir, duplicates: false });
  t.same(off.frames.map((f) => !!f.duplicate), [false, false, false, false, false], 'duplicates: false turns it off');
  t.match(off.source.stats, { delivered: 5, unique: 5, duplicates: 0 });
});

// ---- delivery -----------------------------------------------------------------------------------

t.test('realtime paces frames at fps; fast mode yields to the event loop; stop() stops', async (t) => {
  const dir = tempDir(t);
  for (let k = 0; k < 20; k++) writePgm(join(dir, `f${k}.pgm`), picture(W, H, k), W, H);

  // 20 frames at 40 fps: 19 intervals of 25 ms = 475 ms.
  const paced = await play({ path: dir, realtime: true, fps: 40 });
  t.ok(paced.ended && paced.frames.length === 20);
  const span = paced.frames[19].timestampMs - paced.frames[0].timestampMs;
  t.ok(span >= 0.8 * 475, `arrivals span ${span.toFixed(0)} ms for 19 intervals of 25 ms`);
  t.ok(span < 10000, 'and not wildly more');

  // Fast: other work runs between frames (an immediate queued at the first frame runs before the last).
  const fast = await ImageFolderSource.open({ path: dir });
  let ranAt: number | undefined;
  let n = 0;
  fast.on('frame', () => { if (n++ === 0) setImmediate(() => { ranAt = n; }); });
  const r = await runSource(fast, 20000);
  t.ok(r.ended && r.frames.length === 20, 'fast mode delivers every frame');
  t.ok(ranAt !== undefined && ranAt < 20, `the event loop ran between frames (after frame ${ranAt} of 20)`);

  // stop() during pacing: prompt, and nothing more arrives.
  const slow = await ImageFolderSource.open({ path: dir, realtime: true, fps: 5 });
  const got = await runSource(slow, 5000, 2);
  t.equal(got.frames.length, 2);
  await sleep(500);
  t.equal(got.frames.length, 2, 'no frames after stop()');
  t.ok(got.elapsedMs < 3000, `two frames at 5 fps, then stopped (${got.elapsedMs.toFixed(0)} ms)`);
});

t.test('files are read when due, not at open()', async (t) => {
  const dir = tempDir(t);
  for (let k = 0; k < 4; k++) writePgm(join(dir, `f${k}.pgm`), picture(W, H, k), W, H);
  const source = await ImageFolderSource.open({ path: dir });
  writePgm(join(dir, 'f2.pgm'), picture(W, H, 99), W, H); // replaced after open()
  const r = await runSource(source, 20000);
  t.same(r.frames.map((f) => f.data[0]), [0, 1, 99, 3], 'the file as it is when its frame is due');
});

// ---- open.ts ------------------------------------------------------------------------------------

t.test('inputKind and openInput: a folder of frames, a recording, any other folder', async (t) => {
  const images = tempDir(t, 'shots');
  for (let k = 0; k < 3; k++) writePgm(join(images, `s${k}.pgm`), picture(W, H, k), W, H);
  writeFileSync(join(images, 'readme.txt'), 'x');
  t.equal(inputKind(images), 'images', 'a folder holding .pgm/.png files and no session.json');

  const rec = tempDir(t, 'exam.sonrec');
  writeFileSync(join(rec, 'session.json'), '{}');
  writePgm(join(rec, 'thumb.pgm'), picture(W, H, 0), W, H);
  t.equal(inputKind(rec), 'recording', 'session.json makes it a recording, frame files or not');

  const other = tempDir(t, 'damaged.sonrec');
  writeFileSync(join(other, 'frames.jsonl'), '');
  writeFileSync(join(other, '.hidden.png'), 'x');
  t.equal(inputKind(other), 'recording', 'no session.json and no frame file: still a recording');
  const empty = tempDir(t, 'empty');
  t.equal(inputKind(empty), 'recording', 'an empty folder too');
  const e = await rejection(openInput(other));
  t.ok(e instanceof RecordingError, 'which fails with the recording error');
  t.match(e.message, /damaged\.sonrec: cannot read session\.json: missing/);
  t.equal(inputKind(images, 'rawvideo'), 'media', '--format still forces ffmpeg');

  const s = await openInput(images);
  t.ok(s instanceof ImageFolderSource, 'openInput opens an ImageFolderSource');
  t.same([s.id, s.width, s.height, s.fps], ['images:shots', W, H, 30]);
  const r = await runSource(s, 20000);
  t.ok(r.ended && r.frames.length === 3, 'it plays (fast by default)');

  // o.realtime, o.duplicates and --fps (o.ffmpeg.fps) are respected.
  const dups = tempDir(t, 'dups');
  for (const n of ['d1', 'd2', 'd3', 'd4']) writePgm(join(dups, `${n}.pgm`), picture(W, H, 5), W, H);
  const paced = await openInput(dups, { realtime: true, ffmpeg: { fps: 20 }, duplicates: false });
  t.equal(paced.fps, 20, '--fps sets the rate');
  const pr = await runSource(paced, 20000);
  t.ok(pr.ended && pr.frames.length === 4);
  const span = pr.frames[3].timestampMs - pr.frames[0].timestampMs;
  t.ok(span >= 0.8 * 150, `realtime: true paces (${span.toFixed(0)} ms for 3 intervals of 50 ms)`);
  t.same(pr.frames.map((f) => !!f.duplicate), [false, false, false, false], 'duplicates: false passed through');
  const dr = await runSource(await openInput(dups, { duplicates: { threshold: 8 } }), 20000);
  t.same(dr.frames.map((f) => !!f.duplicate), [false, true, true, true], 'duplicate options passed through');
});

// ---- capture commands -------------------------------------------------------------------------------

t.test('probe and frames on a folder of frames (functions and the CLI)', async (t) => {
  const dir = tempDir(t, 'clip');
  const pics = Array.from({ length: 5 }, (_, k) => picture(W, H, k));
  for (let k = 0; k < 5; k++) {
    if (k % 2) await writeGrayPng(join(dir, `im${k + 1}.png`), pics[k], W, H);
    else writePgm(join(dir, `im${k + 1}.pgm`), pics[k], W, H);
  }
  const p = await probe({ input: dir, ffmpeg: {} });
  t.match(p, { kind: 'images', input: dir, width: W, height: H, frames: 5, fps: 30, pixelSpacingMm: null, colourModel: 'gray', firstFile: 'im1.pgm', lastFile: 'im5.pgm' });
  t.match(await probe({ input: dir, ffmpeg: { fps: 12.5 } }), { fps: 12.5, durationS: 0.4 }, '--fps');

  const out = join(dir, '..', 'out');
  const w = await writeFrames({ input: dir, ffmpeg: {}, out, every: 1 });
  t.match(w, { frames: 5, written: 5, width: W, height: H });
  const written = readdirSync(out).sort();
  t.same(written, [0, 1, 2, 3, 4].map((k) => `frame-${String(k).padStart(6, '0')}.pgm`));
  t.ok(written.every((f, k) => sha(readPgm(join(out, f)).data) === sha(pics[k])), 'every frame written back exactly, in order');
  const every2 = await writeFrames({ input: dir, ffmpeg: {}, out: join(dir, '..', 'out2'), every: 2, max: 2 });
  t.match(every2, { written: 2 }, '--every 2 --max 2');

  // Through the real CLI.
  const cp = await runCli(['probe', dir], 30000);
  t.equal(cp.code, 0, cp.stderr);
  t.match(JSON.parse(cp.stdout), { kind: 'images', width: W, height: H, frames: 5, fps: 30, pixelSpacingMm: null });
  const cf = await runCli(['frames', dir, '--out', join(dir, '..', 'out3')], 30000);
  t.equal(cf.code, 0, cf.stderr);
  t.equal(readdirSync(join(dir, '..', 'out3')).length, 5, 'frames writes every frame');
  const bad = join(dir, '..', 'notes');
  mkdirSync(bad);
  writeFileSync(join(bad, 'a.txt'), 'x');
  const cb = await runCli(['probe', bad], 30000);
  t.not(cb.code, 0, 'a folder without frames or session.json: probe fails');
  t.match(cb.stderr, /session\.json/, "with the recording's error");
  const help = await runCli(['--help'], 30000);
  t.match(help.stdout, /folder of PGM\/PNG frames/, 'the help names the input');
});

// ---- bad input ------------------------------------------------------------------------------------

t.test('folder-level problems: open() rejects with an error naming the folder and the problem', async (t) => {
  const dir = tempDir(t, 'base');
  const missing = join(dir, 'nope');
  let e = await rejection(ImageFolderSource.open({ path: missing }));
  t.ok(e instanceof ImageFolderError);
  t.equal(e.message, `${missing}: no such folder`);

  const file = join(dir, 'a.pgm');
  writePgm(file, picture(W, H, 0), W, H);
  e = await rejection(ImageFolderSource.open({ path: file }));
  t.match(e.message, new RegExp(`^${esc(file)}: not a folder`));

  const none = join(dir, 'none');
  mkdirSync(none);
  e = await rejection(ImageFolderSource.open({ path: none }));
  t.equal(e.message, `${none}: no .pgm or .png frame file in the folder (it is empty)`);
  for (const n of ['a.txt', 'b.jpg', '.c.png', 'd.tif', 'e.bmp', 'f.gif']) writeFileSync(join(none, n), 'x');
  e = await rejection(ImageFolderSource.open({ path: none }));
  t.equal(e.message, `${none}: no .pgm or .png frame file in the folder (it holds .c.png, a.txt, b.jpg, d.tif, e.bmp, ... (6 in all))`);

  // The first frame cannot be decoded: the size is unknown, so open() fails, naming the file.
  const badFirst = join(dir, 'badfirst');
  mkdirSync(badFirst);
  writeFileSync(join(badFirst, 'f1.pgm'), Buffer.from('P5\n48 32\n255\n' + 'x'.repeat(100), 'latin1'));
  writePgm(join(badFirst, 'f2.pgm'), picture(W, H, 1), W, H);
  e = await rejection(ImageFolderSource.open({ path: badFirst }));
  t.ok(e instanceof ImageFolderError);
  t.equal(e.message, `${join(badFirst, 'f1.pgm')}: frame 1 of 2 could not be decoded: truncated PGM: 48x32 needs 1536 bytes of pixel data, the file has 100`);
  t.equal((e as ImageFolderError).path, join(badFirst, 'f1.pgm'));
  // The same through new + start(): an 'error' event, not a throw.
  const lazy = await runSource(new ImageFolderSource({ path: badFirst }), 10000);
  t.same(lazy.frames, []);
  t.match(lazy.errors[0]?.message, /f1\.pgm: frame 1 of 2 could not be decoded: truncated PGM/);
  const gone = await runSource(new ImageFolderSource({ path: missing }), 10000);
  t.equal(gone.errors[0]?.message, `${missing}: no such folder`);

  t.throws(() => new ImageFolderSource({ path: '' }), /options\.path/);
  t.throws(() => new ImageFolderSource({ path: dir, fps: 0 }), /fps must be in \(0, 1000\]/);
});

t.test('a bad frame mid-folder: the frames before it, then one error naming the file and the frame; no end', async (t) => {
  const dir = tempDir(t);
  for (let k = 0; k < 5; k++) writePgm(join(dir, `f${k + 1}.pgm`), picture(W, H, k), W, H);

  // An undecodable PNG (not a PNG at all).
  rmSync(join(dir, 'f3.pgm'));
  writeFileSync(join(dir, 'f3.png'), Buffer.from('this is not a PNG file at all'));
  const png = await play({ path: dir });
  t.same(png.frames.map((f) => f.seq), [0, 1], 'frames before the bad one delivered');
  t.equal(png.errors.length, 1, "one 'error' event");
  t.ok(png.errors[0] instanceof ImageFolderError);
  t.match(png.errors[0].message, new RegExp(`^${esc(join(dir, 'f3.png'))}: frame 3 of 5 could not be decoded: .+`));
  t.notOk(png.ended, 'no end after an error');

  // An unsupported PGM (ASCII P2).
  rmSync(join(dir, 'f3.png'));
  writeFileSync(join(dir, 'f3.pgm'), `P2\n${W} ${H}\n255\n` + '0 '.repeat(W * H));
  const p2 = await play({ path: dir });
  t.same(p2.frames.map((f) => f.seq), [0, 1]);
  t.equal(p2.errors[0]?.message, `${join(dir, 'f3.pgm')}: frame 3 of 5 could not be decoded: P2 (ASCII PGM) is not supported: only binary 8-bit PGM (P5) is read`);

  // A frame of another size: both sizes and the first frame are named.
  writePgm(join(dir, 'f3.pgm'), picture(W, H, 2), W, H);
  await writeGrayPng(join(dir, 'f4.png'), picture(40, 30, 3), 40, 30);
  rmSync(join(dir, 'f4.pgm'));
  const size = await play({ path: dir });
  t.same(size.frames.map((f) => f.seq), [0, 1, 2]);
  t.equal(size.errors[0]?.message,
    `${join(dir, 'f4.png')}: frame 4 of 5 is 40x30, the first frame (f1.pgm) is ${W}x${H}: every frame must have the first frame's size`);
  t.notOk(size.ended);

  // A file removed after open(): the same, naming it.
  await writeGrayPng(join(dir, 'f4.png'), picture(W, H, 3), W, H);
  const src = await ImageFolderSource.open({ path: dir });
  rmSync(join(dir, 'f5.pgm'));
  const removed = await runSource(src, 20000);
  t.same(removed.frames.map((f) => f.seq), [0, 1, 2, 3]);
  t.match(removed.errors[0]?.message, new RegExp(`^${esc(join(dir, 'f5.pgm'))}: frame 5 of 5 could not be decoded: ENOENT`));

  // Without an 'error' listener the failure becomes a process warning, not an exception.
  writeFileSync(join(dir, 'f5.pgm'), 'P5\n1 1\n255\n');
  const warned = within(new Promise<Error>((resolve) => process.once('warning', resolve)), 10000, 'the warning');
  const silent = await ImageFolderSource.open({ path: dir });
  silent.start();
  const w = await warned;
  silent.stop();
  t.match(w.message, /f5\.pgm: frame 5 of 5 could not be decoded: truncated PGM/, 'reported as a warning');

  // And the process carries on: a good folder still plays.
  writePgm(join(dir, 'f5.pgm'), picture(W, H, 4), W, H);
  const good = await play({ path: dir });
  t.ok(good.ended && good.frames.length === 5, 'a good folder plays after the failures');
});
