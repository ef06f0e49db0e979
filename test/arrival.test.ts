// Arrival stamping, repeated-frame detection and the pixel kernels behind the sources.
import t from 'tap';
import { DEFAULT_DUPLICATE_THRESHOLD, FrameStamper } from '../core/arrival.js';
import { createFrame } from '../core/frame.js';
import { native } from '../core/native.js';
import { Pipeline, type DisplayFrame } from '../core/pipeline.js';
import { seededRandom } from '../core/random.js';
import { PhantomScanner } from '../device/phantom.js';
import { sleep } from './helpers.js';

const W = 96, H = 64;

function noisy(src: Uint8Array, sigma: number, rnd: () => number): Uint8Array {
  const out = new Uint8Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const g = Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());
    out[i] = Math.max(0, Math.min(255, Math.round(src[i] + sigma * g)));
  }
  return out;
}

function speckle(seed: number): Uint8Array {
  const rnd = seededRandom(seed);
  const a = new Uint8Array(W * H);
  for (let i = 0; i < a.length; i++) a[i] = Math.floor(rnd() * 256);
  return a;
}

t.test('frameDifference: the largest block mean absolute difference, over rects, with early exit', async (t) => {
  const a = new Uint8Array(W * H).fill(100);
  const b = a.slice();
  t.equal(native.frameDifference(a, b, W, H), 0, 'identical frames');
  // One 16x16 block (x 32..47, y 16..31) raised by 40: its mean difference is 40.
  for (let y = 16; y < 32; y++) for (let x = 32; x < 48; x++) b[y * W + x] = 140;
  t.equal(native.frameDifference(a, b, W, H), 40, 'the changed block');
  t.equal(native.frameDifference(a, b, W, H, null, { blockSize: 32 }), 10, 'diluted in a 32x32 block');
  t.equal(native.frameDifference(a, b, W, H, [{ x: 0, y: 0, width: 32, height: H }]), 0, 'a rect that excludes the change');
  // A partial block at a rect edge counts with its own area.
  t.equal(native.frameDifference(a, b, W, H, [{ x: 40, y: 16, width: 8, height: 8 }]), 40, 'partial block');
  t.ok(native.frameDifference(a, b, W, H, null, { stopAbove: 5 }) > 5, 'early exit still reports a value above the threshold');
  t.throws(() => native.frameDifference(a, b.subarray(1), W, H), /cur: buffer has/);
  t.throws(() => native.frameDifference(a, b, W, H, [{ x: 90, y: 0, width: 16, height: 8 }]), /lies outside the 96x64 frame/);
  t.throws(() => native.frameDifference(a, b, W, H, null, { blockSize: 1 }), /blockSize must be an integer in \[2, 256\]/);
});

t.test('colour kernels: RGB, planar, YBR_FULL, palette and monochrome to gray', async (t) => {
  const rgb = Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]);
  const gray = new Uint8Array(4);
  native.rgbToGray(rgb, 2, 2, 'interleaved', gray);
  const luma = (r: number, g: number, b: number) => (77 * r + 150 * g + 29 * b + 128) >> 8;
  t.same([...gray], [luma(255, 0, 0), luma(0, 255, 0), luma(0, 0, 255), luma(10, 20, 30)], 'BT.601 luma');
  const planar = Uint8Array.from([255, 0, 0, 10, 0, 255, 0, 20, 0, 0, 255, 30]);
  const out = new Uint8Array(12);
  native.rgbToGray(planar, 2, 2, 'planar', gray, out);
  t.same([...out], [...rgb], 'planar to interleaved');
  const ybr = Uint8Array.from([128, 128, 128, 0, 128, 128, 255, 128, 128, 76, 85, 255]);
  native.rgbToGray(ybr, 2, 2, 'ybr_full', gray, out);
  t.same([...gray], [128, 0, 255, 76], 'gray is Y');
  t.same([...out.subarray(0, 9)], [128, 128, 128, 0, 0, 0, 255, 255, 255], 'neutral chroma stays gray');
  t.ok(out[9] > 200 && out[10] < 30 && out[11] < 30, 'high Cr is red');
  t.throws(() => native.rgbToGray(rgb, 2, 2, 'cmyk' as 'planar', gray), /layout must be/);

  const lut = { red: Uint16Array.from([0, 65535, 0]), green: Uint16Array.from([0, 0, 65535]), blue: Uint16Array.from([65535, 0, 0]), firstMapped: 10, bits: 16 };
  const idx = Uint8Array.from([10, 11, 12, 200]);
  native.applyPalette(idx, 2, 2, lut, gray, out);
  t.same([...out], [0, 0, 255, 255, 0, 0, 0, 255, 0, 0, 255, 0], 'entries, and values past the end map to the last');
  const idx16 = Uint16Array.from([0, 10, 11, 12]);
  native.applyPalette(idx16, 2, 2, lut, gray);
  t.same([...gray], [luma(0, 0, 255), luma(0, 0, 255), luma(255, 0, 0), luma(0, 255, 0)], '16-bit indices; below the first maps to the first');
  t.throws(() => native.applyPalette(idx, 2, 2, { ...lut, green: Uint16Array.from([1]) }, gray), /differ in length/);

  native.monochromeTo8(Uint16Array.from([0, 4095, 2048, 1024]), 2, 2, { bitsStored: 12, invert: false }, gray);
  t.same([...gray], [0, 255, 128, 64], '12 bits to 8');
  native.monochromeTo8(Uint8Array.from([0, 255, 1, 254]), 2, 2, { bitsStored: 8, invert: true }, gray);
  t.same([...gray], [255, 0, 254, 1], 'MONOCHROME1 inverted');
});

t.test('FrameStamper: sequence, arrival, repeats (with capture noise), gaps and drops', async (t) => {
  const rnd = seededRandom(7);
  const s = new FrameStamper({ sourceId: 'test', width: W, height: H, fps: 60 });
  const img = [speckle(1), speckle(2), speckle(3)];
  // A 20 Hz image in a 60 Hz signal, each capture with sigma-2 noise, at 60 Hz arrival times.
  const flags: boolean[] = [];
  for (let k = 0; k < 9; k++) {
    const f = s.stamp(noisy(img[Math.floor(k / 3)], 2, rnd), { arrivalMs: 1000 + (k * 1000) / 60 });
    t.equal(f.seq, k);
    flags.push(Boolean(f.duplicate));
  }
  t.same(flags, [false, true, true, false, true, true, false, true, true], 'repeats marked, new images not');
  t.match(s.stats, { delivered: 9, unique: 3, duplicates: 6, gaps: 0, dropped: 0 });
  // Five frame periods with nothing: one gap, four frames lost.
  s.stamp(speckle(4), { arrivalMs: 1000 + (13 * 1000) / 60 });
  t.match(s.stats, { delivered: 10, gaps: 1, dropped: 4 });
  // A lost signal starts a new run: the outage is not counted as drops.
  s.resetSignal();
  const f = s.stamp(speckle(4), { arrivalMs: 60000 });
  t.notOk(f.duplicate, 'after a signal loss the first frame is new even if it repeats the last');
  s.stamp(speckle(5), { arrivalMs: 60000 + 1000 / 60 });
  t.match(s.stats, { delivered: 12, gaps: 1, dropped: 4 });
  // A source that knows (a recording) overrides the comparison.
  t.ok(s.stamp(speckle(6), { duplicate: true }).duplicate);
  t.notOk(s.stamp(speckle(6), { duplicate: false }).duplicate);

  const off = new FrameStamper({ sourceId: 'x', width: W, height: H, duplicates: false });
  off.stamp(img[0]);
  t.notOk(off.stamp(img[0]).duplicate, 'detection off');
  const strict = new FrameStamper({ sourceId: 'x', width: W, height: H, duplicates: { threshold: 0 } });
  strict.stamp(img[0]);
  t.ok(strict.stamp(img[0].slice()).duplicate, 'threshold 0: exact repeats only');
  t.notOk(strict.stamp(noisy(img[0], 2, rnd)).duplicate);
  t.throws(() => new FrameStamper({ sourceId: 'x', width: W, height: H, duplicates: { threshold: 300 } }), /duplicates.threshold must be in/);
  t.throws(() => new FrameStamper({ sourceId: 'x', width: W, height: H, duplicates: { rects: [{ x: 90, y: 0, width: 10, height: 10 }] } }), /lies outside/);
  t.throws(() => new FrameStamper({ sourceId: 'x', width: 0, height: H }), /positive integers/);
  t.ok(DEFAULT_DUPLICATE_THRESHOLD > 6.5 && DEFAULT_DUPLICATE_THRESHOLD < 9.8, 'between repeats with sigma-4 noise and real successive images');
});

t.test('the pipeline tracks each image once: repeated frames are counted and skipped', async (t) => {
  const phantom = new PhantomScanner({ seed: 3, width: 640, height: 360 });
  const p = new Pipeline({ layout: phantom.layout }).start();
  const shown: number[] = [];
  p.on('display', (d: DisplayFrame) => shown.push(d.frame.seq));
  const { frame } = phantom.frameAt(0);
  for (let k = 0; k < 6; k++) {
    p.push(createFrame(frame.data, frame.width, frame.height, k, 'test', performance.now(), { duplicate: k % 3 !== 0 }));
    await sleep(30);
  }
  await p.stop();
  t.same(shown, [0, 3], 'only the new images reach the display path');
  t.match(p.stats(), { received: 6, duplicates: 4, displayed: 2 });
});
