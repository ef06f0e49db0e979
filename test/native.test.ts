import t from 'tap';
import { native } from '../core/native.js';
import { seededRandom } from '../core/random.js';

t.test('bad input throws errors that name the problem', async (t) => {
  const img = new Uint8Array(16 * 16);
  const rect = { x: 0, y: 0, width: 16, height: 16 };
  t.throws(() => native.radiomics(img, 16, 15, [rect], img, 0, {}), /radiomics: image: buffer has 256 bytes, expected width\*height = 240/);
  t.throws(() => native.radiomics(new Float32Array(256) as unknown as Uint8Array, 16, 16, [rect], img, 0, {}), /must be a Buffer or Uint8Array/);
  t.throws(() => native.radiomics(img, 16, 16, [{ ...rect, width: 17 }], img, 0, {}), /panes\[0\].*outside/);
  t.throws(() => native.radiomics(img, 16, 16, [rect], img, 0, { binWidth: NaN }), /binWidth must be finite/);
  t.throws(() => native.radiomics(img, 16, 16, [rect], img, 0, { binWidth: 0 }), /binWidth must be > 0/);
  t.throws(() => native.radiomics(img, 16, 16, [rect], new Uint8Array(10), 0, {}), /codes/);
  t.throws(() => native.ringCodes(img, 16, 16, { spacingX: 1, spacingY: 1, radiiMm: [3, 2] }, new Uint8Array(256)), /strictly increasing/);
  t.throws(() => native.ringCodes(img, 16, 16, { spacingX: 0, spacingY: 1, radiiMm: [3] }, new Uint8Array(256)), /spacing/);
  t.throws(() => native.ringCodes(img, 16, 16, { spacingX: 1, spacingY: 1, radiiMm: [3] }, new Uint8Array(255)), /out must hold/);
  t.throws(() => new native.TemplateTracker(img, 16, 16, { x: 0, y: 0, width: 4, height: 4 }), /at least 16x16/);
  t.throws(() => new native.TemplateTracker(img, 16, 16, { x: 0, y: 0, width: 16, height: 16 }), /flat/);
  t.throws(() => native.warpMask(img, 16, 16, { fromX: 0, fromY: 0, toX: 0, toY: 0, scale: 0 }, new Uint8Array(256)), /scale/);
  t.throws(() => native.contour(img, 16, 16, 0, 1), /minCode/);
  t.throws(() => (native.radiomics as unknown as () => void)(), /radiomics\(image, width, height, panes, codes, nRings, settings\): expected 7 arguments/);
});

t.test('rings: exact Euclidean distance with anisotropic spacing, brute force check', async (t) => {
  const w = 60, h = 50, sx = 0.1, sy = 0.15;
  const mask = new Uint8Array(w * h);
  const rnd = seededRandom(5);
  for (let y = 20; y < 28; y++) for (let x = 25; x < 36; x++) if (rnd() > 0.2) mask[y * w + x] = 255;
  mask[10 * w + 10] = 255; // a second component
  const radii = [0.5, 1.2, 2.0];
  const codes = new Uint8Array(w * h);
  const counts = native.ringCodes(mask, w, h, { spacingX: sx, spacingY: sy, radiiMm: radii }, codes);
  const want = new Array(radii.length + 1).fill(0);
  let mismatches = 0;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    let best = Infinity;
    for (let yy = 0; yy < h; yy++) for (let xx = 0; xx < w; xx++) if (mask[yy * w + xx]) best = Math.min(best, Math.hypot((x - xx) * sx, (y - yy) * sy));
    const code = best === 0 ? 1 : (() => { const k = radii.findIndex((r) => best <= r * (1 + 1e-9)); return k < 0 ? 0 : k + 2; })();
    if (code !== codes[y * w + x]) mismatches++;
    if (code === 1) want[0]++;
    for (let k = 0; k < radii.length; k++) if (code >= 2 && code <= k + 2) want[k + 1]++;
  }
  t.equal(mismatches, 0, 'every pixel in the right region');
  t.same(counts, want, 'counts: lesion, then cumulative rings');
  const sector = new Uint8Array(w * h).fill(255);
  for (let y = 0; y < h; y++) for (let x = 0; x < 30; x++) sector[y * w + x] = 0;
  const clipped = new Uint8Array(w * h);
  native.ringCodes(mask, w, h, { spacingX: sx, spacingY: sy, radiiMm: radii }, clipped, sector);
  t.ok(clipped.every((c, i) => (sector[i] ? c === codes[i] : c === 0)), 'sector mask clips every region');
});

t.test('contour traces the outer boundary of the largest component', async (t) => {
  const m = new Uint8Array(100);
  for (let y = 3; y < 7; y++) for (let x = 2; x < 8; x++) m[y * 10 + x] = 1;
  m[0] = 1; // a smaller component
  const c = Array.from(native.contour(m, 10, 10, 1, 1));
  t.equal(c.length / 2, 16, '4x6 rectangle: 16 boundary pixels');
  t.same(c.slice(0, 2), [2, 3], 'starts at the top-left pixel');
  t.equal(native.contour(new Uint8Array(100), 10, 10, 1, 1).length, 0, 'empty mask: no contour');
  const one = new Uint8Array(100); one[55] = 1;
  t.same(Array.from(native.contour(one, 10, 10, 1, 1)), [5, 5], 'single pixel');
});

t.test('warpMask moves and scales a mask', async (t) => {
  const w = 40, h = 40, src = new Uint8Array(w * h), dst = new Uint8Array(w * h);
  for (let y = 10; y < 20; y++) for (let x = 10; x < 20; x++) src[y * w + x] = 255;
  t.equal(native.warpMask(src, w, h, { fromX: 15, fromY: 15, toX: 18, toY: 13, scale: 1 }, dst), 100);
  t.equal(dst[13 * w + 18], 255);
  t.equal(dst[(8) * w + (13)], 255, 'top-left moved by (3, -2)');
  t.equal(dst[(7) * w + (13)], 0);
  const n = native.warpMask(src, w, h, { fromX: 14.5, fromY: 14.5, toX: 14.5, toY: 14.5, scale: 2 }, dst);
  t.ok(Math.abs(n - 400) <= 40, `scale 2 quadruples the area (${n})`);
});

t.test('template tracker finds a known sub-pixel shift', async (t) => {
  const w = 200, h = 160;
  const rnd = seededRandom(9);
  const base = new Float32Array(w * h).map(() => rnd());
  // Smooth texture so bilinear shifts are meaningful.
  const tex = (x: number, y: number) => {
    const ix = Math.floor(x), iy = Math.floor(y), fx = x - ix, fy = y - iy;
    const at = (a: number, b: number) => { let s = 0; for (let j = -2; j <= 2; j++) for (let i = -2; i <= 2; i++) s += base[Math.min(h - 1, Math.max(0, b + j)) * w + Math.min(w - 1, Math.max(0, a + i))]; return s / 25; };
    return (1 - fy) * ((1 - fx) * at(ix, iy) + fx * at(ix + 1, iy)) + fy * ((1 - fx) * at(ix, iy + 1) + fx * at(ix + 1, iy + 1));
  };
  const render = (dx: number, dy: number) => { const f = new Uint8Array(w * h); for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) f[y * w + x] = Math.round(255 * tex(x - dx, y - dy)); return f; };
  const f0 = render(0, 0), f1 = render(3.4, -2.3);
  const k = new native.TemplateTracker(f0, w, h, { x: 70, y: 50, width: 60, height: 60 });
  const r = k.track(f1, w, h, { x: 0, y: 0, width: w, height: h }, { x: k.centerX, y: k.centerY, scale: 1 }, { searchRadius: 8 });
  t.ok(Math.abs(r.x - k.centerX - 3.4) < 0.25 && Math.abs(r.y - k.centerY + 2.3) < 0.25, `shift (${(r.x - k.centerX).toFixed(2)}, ${(r.y - k.centerY).toFixed(2)})`);
  t.ok(r.score > 0.9, 'high correlation');
  t.ok(r.anchored, 'the initial template confirmed the frame-to-frame result');
  t.ok(Math.abs(r.scale - 1) < 0.02, 'no scale change');
  // The lost-lesion search finds the shifted texture from far away, and skips an excluded zone.
  const found = k.search(f1, w, h, { x: 0, y: 0, width: w, height: h }, { x: 40, y: 40, scale: 1 }, { radius: 150 });
  t.ok(Math.hypot(found.x - k.centerX - 3.4, found.y - k.centerY + 2.3) < 0.5, `search found (${found.x.toFixed(2)}, ${found.y.toFixed(2)})`);
  const away = k.search(f1, w, h, { x: 0, y: 0, width: w, height: h }, { x: r.x, y: r.y, scale: 1 }, { radius: 150, excludeRadius: 45 });
  t.ok(Math.hypot(away.x - r.x, away.y - r.y) > 45 && away.score < found.score - 0.2, `excluded: best elsewhere ${away.score.toFixed(2)}`);
  t.throws(() => k.track(f1, w, h, { x: 0, y: 0, width: w, height: h }, { x: NaN, y: 0, scale: 1 }), /finite/);
  t.throws(() => k.track(f1, w, h, { x: 0, y: 0, width: w, height: h }, { x: 0, y: 0, scale: 9 }), /scale/);
  t.throws(() => k.track(f1, w, h, { x: 0, y: 0, width: w, height: h }, { x: 0, y: 0, scale: 1 }, { searchRadius: 0 }), /searchRadius/);
});
