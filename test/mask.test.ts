// Mask builders for the sonographer's outline: polygonMask and ellipseMask (core/mask.ts), and
// shrinkAndGrow, the score's mask sensitivity.
import t from 'tap';
import { ellipseMask, maskStats, MAX_POLYGON_POINTS, polygonMask, shrinkAndGrow, type LesionMask } from '../core/mask.js';
import { errorOf } from './helpers.js';

const count = (m: LesionMask) => m.data.reduce((a, v) => a + (v ? 1 : 0), 0);
const at = (m: LesionMask, x: number, y: number) => m.data[y * m.width + x];

function shoelace(p: number[]): number {
  let a = 0;
  for (let i = 0, n = p.length / 2; i < n; i++) {
    const j = (i + 1) % n;
    a += p[2 * i] * p[2 * j + 1] - p[2 * j] * p[2 * i + 1];
  }
  return Math.abs(a) / 2;
}

function perimeter(p: number[]): number {
  let s = 0;
  for (let i = 0, n = p.length / 2; i < n; i++) {
    const j = (i + 1) % n;
    s += Math.hypot(p[2 * j] - p[2 * i], p[2 * j + 1] - p[2 * i + 1]);
  }
  return s;
}

/** Reference: per-pixel even-odd point-in-polygon test at every pixel centre (slow, obviously right). */
function bruteForce(width: number, height: number, p: number[]): Uint8Array {
  const out = new Uint8Array(width * height);
  const n = p.length / 2;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let inside = false;
      for (let i = 0, j = n - 1; i < n; j = i++) {
        const xi = p[2 * i], yi = p[2 * i + 1], xj = p[2 * j], yj = p[2 * j + 1];
        if ((yi > y) !== (yj > y) && x < xj + ((y - yj) * (xi - xj)) / (yi - yj)) inside = !inside;
      }
      if (inside) out[y * width + x] = 255;
    }
  }
  return out;
}

function mismatches(a: Uint8Array, b: Uint8Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) if ((a[i] !== 0) !== (b[i] !== 0)) d++;
  return d;
}

t.test('polygonMask: a square covers exactly its pixel centres (left/top edges in, right/bottom out)', async (t) => {
  const sq = [10, 10, 20, 10, 20, 20, 10, 20];
  const m = polygonMask(40, 30, sq);
  t.equal(m.width, 40);
  t.equal(m.height, 30);
  t.equal(count(m), 100, '10x10 square: 100 pixels, its area');
  t.ok(m.data.every((v) => v === 0 || v === 255), 'values are 0/255');
  t.equal(at(m, 10, 10), 255);
  t.equal(at(m, 19, 19), 255);
  t.equal(at(m, 20, 15), 0);
  t.equal(at(m, 15, 20), 0);
  t.equal(at(m, 9, 15), 0);
  const s = maskStats(m);
  t.same([s.x0, s.y0, s.x1, s.y1], [10, 10, 19, 19]);
  // Orientation does not matter; nor does the input type.
  t.same(polygonMask(40, 30, [10, 20, 20, 20, 20, 10, 10, 10]).data, m.data, 'clockwise = counter-clockwise');
  t.same(polygonMask(40, 30, Float32Array.from(sq)).data, m.data, 'typed array input');
  t.same(polygonMask(40, 30, [...sq, 10, 10]).data, m.data, 'a repeated closing point changes nothing');
});

t.test('polygonMask: triangle area matches the analytic area within a pixel-boundary tolerance', async (t) => {
  const tris = [
    [5.3, 4.1, 60.7, 10.2, 20.5, 50.8],
    [100.25, 3.6, 140.9, 90.35, 7.15, 60.45],
    [30.4, 30.3, 31.8, 80.6, 90.1, 55.55],
  ];
  for (const tri of tris) {
    const m = polygonMask(160, 100, tri);
    const area = shoelace(tri), got = count(m);
    t.ok(Math.abs(got - area) <= perimeter(tri) / 2, `${got} pixels vs ${area.toFixed(1)} analytic (perimeter ${perimeter(tri).toFixed(0)})`);
    t.equal(mismatches(m.data, bruteForce(160, 100, tri)), 0, 'same pixels as a per-pixel point-in-polygon test');
    const s = maskStats(m);
    const cx = (tri[0] + tri[2] + tri[4]) / 3, cy = (tri[1] + tri[3] + tri[5]) / 3;
    t.ok(Math.hypot(s.cx - cx, s.cy - cy) < 0.5, `centroid (${s.cx.toFixed(2)}, ${s.cy.toFixed(2)}) vs (${cx.toFixed(2)}, ${cy.toFixed(2)})`);
  }
});

t.test('polygonMask: concave and self-crossing outlines', async (t) => {
  // A U: the notch between the arms stays empty.
  const u = [10, 10, 50, 10, 50, 40, 40, 40, 40, 20, 20, 20, 20, 40, 10, 40];
  const m = polygonMask(60, 50, u);
  t.equal(count(m), shoelace(u), 'U: integer vertices, exact area (800)');
  t.equal(at(m, 30, 30), 0, 'the notch is outside');
  t.equal(at(m, 15, 35), 255, 'left arm');
  t.equal(at(m, 45, 35), 255, 'right arm');
  t.equal(at(m, 30, 15), 255, 'the bar');
  // A concave outline with fractional vertices, as clicked by hand: same pixels as the reference.
  const star: number[] = [];
  for (let k = 0; k < 14; k++) {
    const r = k % 2 ? 9.3 : 21.7, a = (2 * Math.PI * k) / 14 + 0.05;
    star.push(40.2 + r * Math.cos(a), 30.4 + r * Math.sin(a));
  }
  const ms = polygonMask(80, 60, star);
  t.equal(mismatches(ms.data, bruteForce(80, 60, star)), 0, 'star: same pixels as a per-pixel point-in-polygon test');
  t.ok(Math.abs(count(ms) - shoelace(star)) <= perimeter(star) / 2, 'star: area');
  // Self-crossing: a pentagram is filled as a whole (nonzero), centre included.
  const penta: number[] = [];
  for (let k = 0; k < 5; k++) { const a = -Math.PI / 2 + (4 * Math.PI * k) / 5; penta.push(50.3 + 30 * Math.cos(a), 50.3 + 30 * Math.sin(a)); }
  const mp = polygonMask(100, 100, penta);
  t.equal(at(mp, 50, 50), 255, 'pentagram centre is inside (nonzero winding)');
  t.ok(count(mp) > 900, `pentagram covers its points and centre (${count(mp)} px)`);
});

t.test('polygonMask: outlines reaching past the pane are clipped to it', async (t) => {
  const tl = polygonMask(40, 30, [-10, -10, 10, -10, 10, 10, -10, 10]);
  t.equal(count(tl), 100, 'top-left corner: 10x10 pixels remain');
  t.same((({ x0, y0, x1, y1 }) => [x0, y0, x1, y1])(maskStats(tl)), [0, 0, 9, 9]);
  const br = polygonMask(40, 30, [30, 20, 500, 20, 500, 400, 30, 400]);
  t.equal(count(br), 10 * 10, 'bottom-right: x 30..39, y 20..29');
  const all = polygonMask(40, 30, [-1e5, -1e5, 1e5, -1e5, 1e5, 1e5, -1e5, 1e5]);
  t.equal(count(all), 40 * 30, 'an outline around the whole pane fills it');
});

t.test('polygonMask: the largest outline accepted is quick and right', async (t) => {
  const n = MAX_POLYGON_POINTS, p: number[] = [];
  for (let k = 0; k < n; k++) { const a = (2 * Math.PI * k) / n; p.push(288 + 250 * Math.cos(a), 280 + 250 * Math.sin(a)); }
  const m = polygonMask(576, 561, p);
  t.ok(Math.abs(count(m) - shoelace(p)) <= perimeter(p) / 2, `${count(m)} px vs ${shoelace(p).toFixed(0)}`);
});

t.test('polygonMask: bad input throws a RangeError naming the problem', async (t) => {
  const cases: Array<[string, number, number, ArrayLike<number>, RegExp]> = [
    ['odd length', 40, 30, [1, 2, 3, 4, 5, 6, 7], /odd length 7/],
    ['fewer than 3 points', 40, 30, [1, 2, 30, 4], /2 points: at least 3/],
    ['no points', 40, 30, [], /0 points: at least 3/],
    ['more than 1024 points', 40, 30, new Array(2 * (MAX_POLYGON_POINTS + 1)).fill(0).map((_, i) => i % 7), /1025 points: at most 1024/],
    ['NaN', 40, 30, [1, 2, 30, NaN, 5, 20], /value 3 \(y of point 1\) is not a finite number \(got NaN\)/],
    ['Infinity', 40, 30, [1, 2, 30, 4, Infinity, 20], /value 4 \(x of point 2\) is not a finite number/],
    ['a string', 40, 30, [1, 2, '30', 4, 5, 20] as unknown as number[], /value 2 \(x of point 1\) is not a finite number/],
    ['absurd coordinate', 40, 30, [1, 2, 30, 4, 5, 1e300], /out of range/],
    ['outside the pane', 40, 30, [50, 50, 90, 50, 90, 90], /covers no pixel centre of the 40x30 pane/],
    ['left of the pane', 40, 30, [-20, 5, -5, 5, -5, 20], /covers no pixel centre/],
    ['no area (collinear)', 40, 30, [1, 1, 10, 10, 20, 20], /covers no pixel centre/],
    ['between pixel centres', 40, 30, [3.1, 3.1, 3.9, 3.1, 3.5, 3.9], /covers no pixel centre/],
    ['bad pane size', 0, 30, [1, 1, 10, 1, 10, 10], /width and height must be positive integers/],
  ];
  for (const [what, w, h, p, re] of cases) {
    const e = errorOf(() => polygonMask(w, h, p));
    t.ok(e instanceof RangeError, `${what}: RangeError`);
    t.match(e?.message, re, `${what}: ${e?.message}`);
  }
});

t.test('ellipseMask: area close to pi*rx*ry; pixel centres inside or on the ellipse', async (t) => {
  const cases = [
    { cx: 50, cy: 40, rx: 20, ry: 12 },
    { cx: 60.3, cy: 45.7, rx: 33.4, ry: 25.1 },
    { cx: 30, cy: 30, rx: 70.1, ry: 56.1 }, // 5 x 4 mm at 0.0713 mm/px, clipped by the pane
    { cx: 10.5, cy: 10.5, rx: 0.75, ry: 0.75 }, // the 4 pixels around the centre
  ];
  for (const e of cases) {
    const m = ellipseMask(120, 100, e);
    let bad = 0;
    for (let y = 0; y < 100; y++) for (let x = 0; x < 120; x++) {
      const inside = ((x - e.cx) / e.rx) ** 2 + ((y - e.cy) / e.ry) ** 2 <= 1;
      if (inside !== (at(m, x, y) === 255)) bad++;
    }
    t.equal(bad, 0, `(${e.cx}, ${e.cy}) r ${e.rx}x${e.ry}: every pixel centre classified by the equation`);
  }
  for (const e of cases.slice(0, 2)) {
    const m = ellipseMask(120, 100, e);
    const area = Math.PI * e.rx * e.ry, perim = Math.PI * (e.rx + e.ry);
    t.ok(Math.abs(count(m) - area) <= perim / 2, `${count(m)} px vs pi*rx*ry ${area.toFixed(1)}`);
    const s = maskStats(m);
    t.ok(Math.hypot(s.cx - e.cx, s.cy - e.cy) < 0.5, 'centroid at the centre');
  }
  const corner = ellipseMask(120, 100, { cx: 0, cy: 0, rx: 20, ry: 20 });
  t.ok(Math.abs(count(corner) - (Math.PI * 400) / 4) < 30, `a circle at the corner keeps about a quarter (${count(corner)} px)`);
});

t.test('ellipseMask: bad input throws a RangeError naming the problem', async (t) => {
  const cases: Array<[string, { cx: number; cy: number; rx: number; ry: number }, RegExp]> = [
    ['rx 0', { cx: 5, cy: 5, rx: 0, ry: 3 }, /rx must be a finite number > 0 \(got 0\)/],
    ['ry negative', { cx: 5, cy: 5, rx: 3, ry: -1 }, /ry must be a finite number > 0 \(got -1\)/],
    ['rx NaN', { cx: 5, cy: 5, rx: NaN, ry: 3 }, /rx must be a finite number > 0 \(got NaN\)/],
    ['ry Infinity', { cx: 5, cy: 5, rx: 3, ry: Infinity }, /ry must be a finite number > 0/],
    ['cx NaN', { cx: NaN, cy: 5, rx: 3, ry: 3 }, /cx must be a finite number/],
    ['cy Infinity', { cx: 5, cy: -Infinity, rx: 3, ry: 3 }, /cy must be a finite number/],
    ['outside the pane', { cx: 200, cy: 5, rx: 30, ry: 3 }, /no pixel centre of the 120x100 pane falls inside the ellipse/],
    ['between pixel centres', { cx: 5.5, cy: 5.5, rx: 0.3, ry: 0.3 }, /no pixel centre/],
  ];
  for (const [what, e, re] of cases) {
    const err = errorOf(() => ellipseMask(120, 100, e));
    t.ok(err instanceof RangeError, `${what}: RangeError`);
    t.match(err?.message, re, `${what}: ${err?.message}`);
  }
  t.match(errorOf(() => ellipseMask(120, 1.5, { cx: 5, cy: 5, rx: 3, ry: 3 }))?.message, /positive integers/);
});

t.test('shrinkAndGrow: a disc of radius 10 becomes discs of 8 and 12; a lesion too small to shrink gives nothing', async (t) => {
  const disc = ellipseMask(60, 60, { cx: 30, cy: 30, rx: 10, ry: 10 });
  const v = shrinkAndGrow(disc, 2);
  t.ok(v, 'both masks');
  if (!v) return;
  const a = count(disc), s = count(v.shrunk), g = count(v.grown);
  t.ok(Math.abs(s - Math.PI * 64) < 0.1 * Math.PI * 64, `shrunk ${s} px, about pi 8^2`);
  t.ok(Math.abs(g - Math.PI * 144) < 0.1 * Math.PI * 144, `grown ${g} px, about pi 12^2 (the disc ${a})`);
  t.equal(at(v.shrunk, 30, 30) && at(v.grown, 41, 30) ? 1 : 0, 1, 'the centre stays in, a point 11 px out is added');
  t.equal(at(v.shrunk, 39, 30), 0, 'a point 9 px out of the centre is taken off');
  t.equal(shrinkAndGrow(ellipseMask(20, 20, { cx: 10, cy: 10, rx: 2.5, ry: 2.5 }), 2), undefined, 'a 5 px disc shrunk by 2 px keeps under 16 pixels');
});
