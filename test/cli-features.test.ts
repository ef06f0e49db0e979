// `sonomics features` end to end, and the image reading it relies on. The engine (core/radiomics.ts)
// is imported inside the tests that need it, so the PGM and option tests run without it.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import t, { type Test } from 'tap';
import { decodePgm, readGrayImage } from '../core/imageio.js';
import { native } from '../core/native.js';
import type { RadiomicsSettings } from '../core/radiomics.js';
import { runCli } from './helpers.js';

const run = runCli;

const W = 64, H = 48;

/** A gradient with a periodic texture, so every texture class has something to count. */
function syntheticImage(w = W, h = H): Uint8Array {
  const img = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) img[y * w + x] = (x * 3 + y * 2 + ((x * y) % 7) * 9) & 255;
  return img;
}

/** An ellipse (0/255) centred at (30, 24) with radii 14 x 10 px. */
function ellipseMask(w = W, h = H): Uint8Array {
  const m = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (((x - 30) / 14) ** 2 + ((y - 24) / 10) ** 2 <= 1) m[y * w + x] = 255;
  return m;
}

function pgm(data: Uint8Array, w: number, h: number, header = `P5\n# sonomics test image\n${w} ${h}\n255\n`): Buffer {
  return Buffer.concat([Buffer.from(header, 'latin1'), Buffer.from(data)]);
}

async function writePng(path: string, data: Uint8Array, w: number, h: number): Promise<string> {
  await sharp(Buffer.from(data), { raw: { width: w, height: h, channels: 1 } }).png().toFile(path);
  return path;
}

/** Image (PGM) and mask (PNG) files of the synthetic case in a fresh test folder. */
async function files(t: Test, mask = ellipseMask()) {
  const dir = t.testdir();
  const image = join(dir, 'image.pgm');
  writeFileSync(image, pgm(syntheticImage(), W, H));
  return { dir, image, mask: await writePng(join(dir, 'mask.png'), mask, W, H) };
}

/** What the command must print for a feature vector: the named features, null for NaN/Infinity. */
function expected(f: Record<string, number>, names: readonly string[]): Record<string, number | null> {
  return Object.fromEntries(names.map((n) => [n, Number.isFinite(f[n]) ? f[n] : null]));
}

t.test('PGM: binary 8-bit with header comments reads exactly', async (t) => {
  const data = new Uint8Array([0, 1, 2, 127, 128, 254, 255, 9, 10, 13, 32, 35]);
  const g = decodePgm(pgm(data, 4, 3, 'P5 # magic\n#comment line\n4\t3 # size\n255\r'));
  t.equal(g.width, 4);
  t.equal(g.height, 3);
  t.strictSame([...g.data], [...data], 'bytes that look like whitespace or "#" are pixels after the header');
  const dir = t.testdir();
  const p = join(dir, 'g.pgm');
  writeFileSync(p, pgm(data, 6, 2));
  const r = await readGrayImage(p);
  t.strictSame([r.width, r.height, [...r.data]], [6, 2, [...data]]);
  const low = decodePgm(pgm(new Uint8Array([0, 15, 7, 3]), 2, 2, 'P5 2 2 15\n'));
  t.strictSame([...low.data], [0, 15, 7, 3], 'maxval < 255: values are kept as stored, not rescaled');
});

t.test('PGM: bad files give errors naming the file and the problem', async (t) => {
  const dir = t.testdir();
  const cases: Array<[string, Buffer, RegExp]> = [
    ['truncated.pgm', pgm(new Uint8Array(10), 4, 3), /truncated PGM: 4x3 needs 12 bytes of pixel data, the file has 10/],
    ['header.pgm', Buffer.from('P5\n4 3\n'), /truncated PGM header: maxval is missing/],
    ['nodata.pgm', Buffer.from('P5\n4 3\n255'), /truncated PGM: no pixel data/],
    ['ascii.pgm', Buffer.from('P2\n2 1\n255\n0 1\n'), /P2 \(ASCII PGM\) is not supported: only binary 8-bit PGM \(P5\)/],
    ['color.ppm', Buffer.from('P6\n1 1\n255\n\x01\x02\x03', 'latin1'), /P6 \(binary PPM\) is not supported/],
    ['magic.pgm', Buffer.from('GIF89a'), /not a PGM file: it must start with "P5" \(starts with "GI"\)/],
    ['deep.pgm', pgm(new Uint8Array(8), 2, 2, 'P5 2 2 65535\n'), /maxval 65535 > 255 \(16-bit PGM\) is not supported/],
    ['size.pgm', Buffer.from('P5\n0 3\n255\n'), /bad PGM header: size 0x3/],
    ['word.pgm', Buffer.from('P5\nfour 3\n255\n'), /bad PGM header: width must be a decimal number \(found "f"\)/],
    ['extra.pgm', pgm(new Uint8Array(5), 2, 2), /1 bytes after the 2x2 pixel data/],
    ['above.pgm', pgm(new Uint8Array([1, 2, 200, 3]), 2, 2, 'P5 2 2 100\n'), /pixel \(0, 1\) is 200, above maxval 100/],
  ];
  for (const [name, bytes, re] of cases) {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    await t.rejects(readGrayImage(p), new RegExp(`^cannot read image ${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ${re.source}`), name);
  }
  await t.rejects(readGrayImage(join(dir, 'missing.png')), /cannot read image .*missing\.png: ENOENT/);
});

t.test('PNG still reads through sharp', async (t) => {
  const dir = t.testdir();
  const img = syntheticImage();
  const r = await readGrayImage(await writePng(join(dir, 'i.png'), img, W, H));
  t.strictSame([r.width, r.height], [W, H]);
  t.ok(Buffer.from(r.data).equals(Buffer.from(img)), 'same pixels');
});

t.test('the JSON replacer writes NaN and infinities as null', async (t) => {
  const { formatFeatures, nonFiniteToNull } = await import('../cli/features.js');
  t.equal(nonFiniteToNull('x', NaN), null);
  t.equal(nonFiniteToNull('x', Infinity), null);
  t.equal(nonFiniteToNull('x', -Infinity), null);
  t.equal(nonFiniteToNull('x', -0.5), -0.5);
  t.equal(nonFiniteToNull('x', 'text'), 'text');
  const s = formatFeatures({ a: NaN, b: Infinity, c: 1.25, ring3mm: { d: -Infinity, e: 0 }, ring5mm: { error: 'too small' } });
  t.strictSame(JSON.parse(s), { a: null, b: null, c: 1.25, ring3mm: { d: null, e: 0 }, ring5mm: { error: 'too small' } });
});

t.test('help', async (t) => {
  const g = await run(['--help']);
  t.match(g.stdout, /^ {2}features {4}/m, 'the global help lists the command');
  const r = await run(['features', '--help']);
  t.equal(r.code, 0);
  for (const o of ['--image FILE', '--mask FILE', '--bin-width W', '--bin-count N', '--params FILE', '--spacing SX,SY', '--rings', '--ibsi', '--all']) t.match(r.stdout, o);
});

t.test('bad options exit 2 with a clear message and print nothing', async (t) => {
  const { image, mask } = await files(t);
  const cases: Array<[string[], RegExp]> = [
    [['--image', image, '--mask', mask, '--bogus'], /Unknown option '--bogus'/],
    [['--image', image, '--mask', mask, '--bin-width', '5', '--bin-count', '8'], /--bin-width and --bin-count exclude each other/],
    [['--image', image, '--mask', mask, '--bin-count', '8', '--params', 'p.yaml'], /--bin-count and --params exclude each other/],
    [['--mask', mask], /--image FILE is required/],
    [['--image', image], /--mask FILE is required/],
    [['--image', image, '--mask', mask, '--bin-width', '0'], /--bin-width must be a number/],
    [['--image', image, '--mask', mask, '--bin-count', '2.5'], /--bin-count must be an integer/],
    [['--image', image, '--mask', mask, '--spacing', '0.1'], /--spacing must be two numbers "SX,SY"/],
    [['--image', image, '--mask', mask, '--spacing', '0.1,x'], /--spacing must be two numbers/],
    [['--image', image, '--mask', mask, '--rings', '5,3'], /--rings radii must increase/],
    [['--image', image, '--mask', mask, '--rings', '3,,5'], /--rings must be ring radii in mm/],
    [['--image', image, '--mask', mask, 'extra'], /Unexpected argument 'extra'/],
  ];
  for (const [args, re] of cases) {
    const r = await run(['features', ...args]);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, re, args.join(' '));
    t.equal(r.stdout, '', 'nothing on stdout');
  }
});

t.test('unusable inputs exit 1 and name the problem', async (t) => {
  const { dir, image } = await files(t);
  const small = await writePng(join(dir, 'small.png'), new Uint8Array(W * 50).fill(255), W, 50);
  const sizes = await run(['features', '--image', image, '--mask', small]);
  t.equal(sizes.code, 1);
  t.match(sizes.stderr, /image .*image\.pgm is 64x48 but mask .*small\.png is 64x50/);
  const empty = await run(['features', '--image', image, '--mask', await writePng(join(dir, 'empty.png'), new Uint8Array(W * H), W, H)]);
  t.equal(empty.code, 1);
  t.match(empty.stderr, /mask .*empty\.png is empty: no non-zero pixel/);
  const bad = join(dir, 'bad.pgm');
  writeFileSync(bad, pgm(new Uint8Array(100), W, H));
  const truncated = await run(['features', '--image', bad, '--mask', image]);
  t.equal(truncated.code, 1);
  t.match(truncated.stderr, /cannot read image .*bad\.pgm: truncated PGM/);
  t.equal(sizes.stdout + empty.stdout + truncated.stdout, '');
});

t.test('a parameter file sonomics cannot honour exits 2 naming the file and the key', async (t) => {
  const { dir, image, mask } = await files(t);
  const p = join(dir, 'resample.yaml');
  writeFileSync(p, 'setting:\n  resampledPixelSpacing: [1, 1, 0]\n');
  const r = await run(['features', '--image', image, '--mask', mask, '--params', p]);
  t.equal(r.code, 2);
  t.match(r.stderr, `${p}: setting resampledPixelSpacing is not supported by sonomics (no resampling on live frames)`);
  const missing = await run(['features', '--image', image, '--mask', mask, '--params', join(dir, 'none.yaml')]);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /none\.yaml: cannot read the parameter file/);
});

t.test('default output: the 102 default features of the ROI, equal to extractFeatures()', async (t) => {
  const { extractFeatures, FEATURE_NAMES } = await import('../core/radiomics.js');
  const { image, mask } = await files(t);
  const r = await run(['features', '--image', image, '--mask', mask]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stderr, '');
  const out = JSON.parse(r.stdout) as Record<string, unknown>;
  t.strictSame(Object.keys(out), [...FEATURE_NAMES], 'flat, PyRadiomics names, engine order');
  t.equal(Object.keys(out).length, 102);
  t.strictSame(out, expected(extractFeatures(syntheticImage(), W, H, ellipseMask()), FEATURE_NAMES));
});

t.test('--bin-width, --bin-count, --spacing, --ibsi and --all reach the engine', async (t) => {
  const { extractFeatures, FEATURE_NAMES, ALL_FEATURE_NAMES } = await import('../core/radiomics.js');
  const { image, mask } = await files(t);
  const img = syntheticImage(), m = ellipseMask();
  const cases: Array<[string[], RadiomicsSettings, readonly string[]]> = [
    [['--bin-width', '10', '--spacing', '0.5,0.25'], { binWidth: 10, spacingX: 0.5, spacingY: 0.25 }, FEATURE_NAMES],
    [['--bin-count', '16'], { binCount: 16 }, FEATURE_NAMES],
    [['--ibsi'], { ibsi: true }, FEATURE_NAMES],
    [['--all'], {}, ALL_FEATURE_NAMES],
  ];
  let base: Record<string, unknown> | undefined;
  for (const [args, settings, names] of cases) {
    const r = await run(['features', '--image', image, '--mask', mask, ...args]);
    t.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    t.strictSame(out, expected(extractFeatures(img, W, H, m, settings), names), args.join(' '));
    base ??= out;
  }
  const plain = expected(extractFeatures(img, W, H, m), FEATURE_NAMES);
  t.equal(base!.shape2D_PixelSurface, (plain.shape2D_PixelSurface as number) * 0.125, 'spacing 0.5 x 0.25 mm scales the pixel surface');
  t.not(base!.firstorder_Entropy, plain.firstorder_Entropy, 'bin width 10 changes the entropy');
});

t.test('--params applies the settings and the feature selection', async (t) => {
  const { extractFeatures } = await import('../core/radiomics.js');
  const { dir, image, mask } = await files(t);
  const p = join(dir, 'params.yaml');
  writeFileSync(p, [
    'setting:', '  binWidth: 10', '  distances: [1, 2]', '  force2D: true', '  label: 1',
    'imageType:', '  Original: {}',
    'featureClass:', '  glcm: [JointEnergy, Contrast]', '  firstorder: [StandardDeviation]', '',
  ].join('\n'));
  const r = await run(['features', '--image', image, '--mask', mask, '--params', p]);
  t.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<string, unknown>;
  const f = extractFeatures(syntheticImage(), W, H, ellipseMask(), { binWidth: 10, distances: [1, 2] });
  const names = Object.keys(f).filter((n) => ['glcm_JointEnergy', 'glcm_Contrast', 'firstorder_StandardDeviation'].includes(n));
  t.equal(names.length, 3);
  t.strictSame(Object.keys(out), names, 'only the selected features, in engine order');
  t.strictSame(out, expected(f, names));
});

t.test('--rings adds one object per ring, named as the pipeline names rings', async (t) => {
  const { extractFeatures, FEATURE_NAMES } = await import('../core/radiomics.js');
  const { image, mask } = await files(t);
  const r = await run(['features', '--image', image, '--mask', mask, '--rings', '3,5', '--spacing', '0.8,0.8']);
  t.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<string, unknown>;
  t.strictSame(Object.keys(out), [...FEATURE_NAMES, 'ring3mm', 'ring5mm']);
  const img = syntheticImage(), m = ellipseMask();
  const spacing = { spacingX: 0.8, spacingY: 0.8 };
  t.strictSame(Object.fromEntries(FEATURE_NAMES.map((n) => [n, out[n]])), expected(extractFeatures(img, W, H, m, spacing), FEATURE_NAMES),
    'the lesion is the same with rings');
  const codes = new Uint8Array(W * H);
  native.ringCodes(m, W, H, { ...spacing, radiiMm: [3, 5] }, codes, null);
  for (const [k, key] of ['ring3mm', 'ring5mm'].entries()) {
    const ring = codes.map((c) => (c >= 2 && c <= k + 2 ? 255 : 0));
    t.strictSame(out[key], expected(extractFeatures(img, W, H, ring, spacing), FEATURE_NAMES), `${key} = the band out to ${key}, lesion excluded`);
  }
});

t.test('a ring that fails the mask checks gets {error}; a lesion that fails is exit 1', async (t) => {
  const { dir, image, mask } = await files(t);
  const p = join(dir, 'minsize.yaml');
  writeFileSync(p, 'setting:\n  minimumROISize: 200\nfeatureClass:\n  firstorder:\n');
  const r = await run(['features', '--image', image, '--mask', mask, '--params', p, '--rings', '1,8']);
  t.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<string, Record<string, unknown>>;
  t.strictSame(Object.keys(out.ring1mm), ['error'], 'the 1 mm band (about 80 pixels) is below minimumROISize 200');
  t.type(out.ring1mm.error, 'string');
  t.type(out.ring8mm.firstorder_Mean, 'number', 'the 8 mm band is large enough');
  t.type(out.firstorder_Mean, 'number');

  const dot = new Uint8Array(W * H);
  dot[24 * W + 30] = 255;
  const single = await run(['features', '--image', image, '--mask', await writePng(join(dir, 'dot.png'), dot, W, H)]);
  t.equal(single.code, 1);
  t.match(single.stderr, /the ROI of mask .*dot\.png fails PyRadiomics' checks: /);
  t.equal(single.stdout, '');
});
