// Drives the native radiomics engine for scripts/sanitize.sh (AddressSanitizer + UBSan, or
// valgrind): the conformance cases of ../shared/radiomics-ref at binCount 32 and binWidth 25,
// sync and async, plus edge cases and bad-argument calls. It loads the addon given by --addon
// (an absolute path) directly, never through core/native.ts, so a sanitized build and the
// normal one are never mixed in one process.
//
//   node [--expose-gc] scripts/sanitize-driver.mjs --addon /abs/sonomics.node [--ref DIR] [--cases c1_64x64,c4_320x240] [--quick]
//
// Exit codes: 0 all calls done and every check held; 1 a check failed (a bad call did not throw,
// a result had the wrong shape, sync and async or repeated calls differ); 3 the addon has no
// radiomics engine (only the first-order baseline ran). Memory errors are the sanitizer's to
// report (sanitize.sh fails on any report, whatever this exit code is).
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt; };
const addonPath = opt('--addon');
if (!addonPath || !isAbsolute(addonPath) || !existsSync(addonPath)) {
  console.error(`sanitize-driver: --addon must be the absolute path of a built sonomics.node (got ${addonPath})`);
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const refDir = resolve(opt('--ref', process.env.SONOMICS_RADIOMICS_REF ?? join(here, '..', '..', 'shared', 'radiomics-ref')));
const onlyCases = opt('--cases') ? opt('--cases').split(',') : null;
const quick = args.includes('--quick');

const A = createRequire(import.meta.url)(addonPath);
const failures = [];
const notes = [];
const fail = (msg) => { failures.push(msg); console.log(`FAIL ${msg}`); };
const log = (msg) => console.log(msg);

// ---- inputs ------------------------------------------------------------------------------------

function readPgm(path) {
  const buf = readFileSync(path);
  const fields = [];
  let i = 0;
  const ws = (b) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
  while (fields.length < 4) {
    while (i < buf.length && ws(buf[i])) i++;
    if (buf[i] === 0x23) { while (i < buf.length && buf[i] !== 0x0a) i++; continue; }
    let tok = '';
    while (i < buf.length && !ws(buf[i])) tok += String.fromCharCode(buf[i++]);
    if (!tok) throw new Error(`${path}: truncated PGM header`);
    fields.push(tok);
  }
  const [magic, w, h, maxval] = [fields[0], +fields[1], +fields[2], +fields[3]];
  if (magic !== 'P5' || !(w > 0) || !(h > 0) || !(maxval > 0 && maxval <= 255)) throw new Error(`${path}: not an 8-bit binary PGM`);
  i++;
  return { data: new Uint8Array(buf.buffer, buf.byteOffset + i, w * h).slice(), width: w, height: h };
}

function loadCases() {
  if (!existsSync(join(refDir, 'manifest.json'))) {
    notes.push(`conformance cases not found at ${refDir}: only synthetic edge cases ran`);
    return [];
  }
  const manifest = JSON.parse(readFileSync(join(refDir, 'manifest.json'), 'utf8'));
  return manifest.cases.filter((c) => !onlyCases || onlyCases.includes(c.name)).map((c) => {
    const img = readPgm(join(refDir, c.image)), mask = readPgm(join(refDir, c.mask));
    const codes = new Uint8Array(mask.data.length);
    for (let i = 0; i < codes.length; i++) codes[i] = mask.data[i] ? 1 : 0;
    const refs = {};
    for (const [k, r] of Object.entries(c.references ?? {})) refs[k] = JSON.parse(readFileSync(join(refDir, r.file), 'utf8'));
    return { name: c.name, image: img.data, width: img.width, height: img.height, codes, refs };
  });
}

// Native settings exactly as core/radiomics.ts hands them over (resolved, classes as indices).
const DEFAULTS = { binWidth: 25, binCount: 0, distances: [1], symmetricalGLCM: true, gldm_a: 0, voxelArrayShift: 0, minimumROIDimensions: 2,
  minimumROISize: 0, spacingX: 1, spacingY: 1, ibsi: false, classes: [0, 1, 2, 3, 4, 5, 6] };
const S = (o = {}) => ({ ...DEFAULTS, ...o });

function sameValues(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!(Object.is(a[i], b[i]) || (Number.isNaN(a[i]) && Number.isNaN(b[i])))) return false;
  return true;
}

// ---- first-order baseline (the older kernel, when present; exercises the build and the driver) ----

async function baseline(cases) {
  if (typeof A.firstOrder !== 'function' || typeof A.firstOrderAsync !== 'function') { log('baseline: this addon has no firstOrder kernel, skipped'); return; }
  for (const c of cases) {
    const panes = [{ x: 0, y: 0, width: c.width, height: c.height }];
    const a = A.firstOrder(c.image, c.width, c.height, panes, c.codes, 0, { binWidth: 25 });
    const b = await A.firstOrderAsync(c.image, c.width, c.height, panes, c.codes, 0, { binWidth: 25 });
    if (!sameValues(a, b)) fail(`firstOrder ${c.name}: sync and async differ`);
  }
  log(`baseline: firstOrder/firstOrderAsync on ${cases.length} case(s) done`);
}

// ---- radiomics -------------------------------------------------------------------------------

let names = [];

/** One sync call; checks the result's shape; returns it (or the thrown error). */
function call(label, image, width, height, panes, codes, nRings, settings) {
  let r;
  try {
    r = A.radiomics(image, width, height, panes, codes, nRings, settings);
  } catch (e) {
    return { label, threw: e };
  }
  const regions = panes.length * (nRings + 1);
  if (!r || !(r.values instanceof Float64Array) || !Array.isArray(r.errors)) fail(`${label}: result is not {values: Float64Array, errors: []}`);
  else {
    if (r.values.length !== regions * names.length) fail(`${label}: ${r.values.length} values, expected ${regions} regions x ${names.length} features`);
    if (r.errors.length !== regions) fail(`${label}: ${r.errors.length} error slots, expected ${regions}`);
    for (const e of r.errors) if (e !== null && typeof e !== 'string') fail(`${label}: an error slot is neither null nor a string`);
  }
  return { label, r };
}

function describe(out) {
  if (out.threw) return `threw ${out.threw?.name}: ${out.threw?.message}`;
  const errs = out.r.errors.map((e, i) => (e ? `region ${i}: ${e}` : null)).filter(Boolean);
  const nan = out.r.values.filter((v) => Number.isNaN(v)).length;
  return errs.length ? `region errors: ${errs.join('; ')}` : `ok (${out.r.errors.length} region(s), ${nan} NaN values)`;
}

/** Sync twice and async once; all three must agree bit for bit. */
async function triple(label, image, width, height, panes, codes, nRings, settings) {
  const a = call(label, image, width, height, panes, codes, nRings, settings);
  if (a.threw) { log(`  ${label}: ${describe(a)}`); return a; }
  const b = call(label, image, width, height, panes, codes, nRings, settings);
  if (!b.threw && !sameValues(a.r.values, b.r.values)) fail(`${label}: two identical sync calls gave different values (uninitialised memory?)`);
  try {
    const c = await A.radiomicsAsync(image, width, height, panes, codes, nRings, settings);
    if (!sameValues(a.r.values, c.values)) fail(`${label}: sync and async values differ`);
    if (JSON.stringify(a.r.errors) !== JSON.stringify(c.errors)) fail(`${label}: sync and async region errors differ`);
  } catch (e) {
    fail(`${label}: async call threw (${e?.message}) but the sync call did not`);
  }
  log(`  ${label}: ${describe(a)}`);
  return a;
}

async function conformance(cases) {
  log(`conformance cases (${cases.length}), bc32 and bw25, sync x2 + async:`);
  for (const c of cases) {
    const panes = [{ x: 0, y: 0, width: c.width, height: c.height }];
    for (const [key, s] of [['bc32', { binCount: 32 }], ['bw25', { binWidth: 25 }]]) {
      const out = await triple(`${c.name} ${key}`, c.image, c.width, c.height, panes, c.codes, 0, S(s));
      const ref = c.refs[key];
      if (out.r && ref && !out.r.errors[0]) {
        let off = 0;
        for (const [n, want] of Object.entries(ref)) {
          const i = names.indexOf(n);
          if (i < 0 || want === null) continue;
          const got = out.r.values[i];
          if (!(Math.abs(got - want) <= 1e-6 * Math.max(1, Math.abs(want)))) off++;
        }
        if (off) notes.push(`${c.name} ${key}: ${off} feature(s) differ from the PyRadiomics reference beyond 1e-6 (values are not this script's concern)`);
      }
    }
  }
}

function syntheticImage(w, h, seed) {
  let a = seed >>> 0;
  const img = new Uint8Array(w * h);
  for (let i = 0; i < img.length; i++) { a = (Math.imul(a, 1664525) + 1013904223) >>> 0; img[i] = a >>> 24; }
  return img;
}

async function edgeCases(cases) {
  log('edge cases:');
  const W = 32, H = 24, img = syntheticImage(W, H, 7), full = [{ x: 0, y: 0, width: W, height: H }];
  const codesFrom = (pred) => { const c = new Uint8Array(W * H); for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) if (pred(x, y)) c[y * W + x] = 1; return c; };

  const onePx = codesFrom((x, y) => x === 5 && y === 7);
  await triple('one-pixel ROI', img, W, H, full, onePx, 0, S());
  await triple('one-pixel ROI, minimumROIDimensions 1', img, W, H, full, onePx, 0, S({ minimumROIDimensions: 1 }));
  await triple('one-pixel ROI at the corner (31,23), minimumROIDimensions 1', img, W, H, full, codesFrom((x, y) => x === W - 1 && y === H - 1), 0, S({ minimumROIDimensions: 1 }));
  const row = codesFrom((x, y) => y === 3 && x >= 2 && x < 30);
  await triple('one-row ROI (28 px), minimumROIDimensions 1', img, W, H, full, row, 0, S({ minimumROIDimensions: 1 }));
  await triple('one-row ROI (28 px), minimumROIDimensions 1, bc32', img, W, H, full, row, 0, S({ minimumROIDimensions: 1, binCount: 32 }));
  await triple('one-row ROI (28 px), default minimumROIDimensions 2', img, W, H, full, row, 0, S());
  await triple('one-column ROI on the left edge, minimumROIDimensions 1', img, W, H, full, codesFrom((x, y) => x === 0), 0, S({ minimumROIDimensions: 1 }));
  await triple('two pixels (diagonal), minimumROIDimensions 1', img, W, H, full, codesFrom((x, y) => (x === 3 && y === 3) || (x === 4 && y === 4)), 0, S({ minimumROIDimensions: 1 }));

  const flat = new Uint8Array(W * H).fill(100);
  const box = codesFrom((x, y) => x >= 4 && x < 24 && y >= 4 && y < 20);
  for (const s of [{}, { binCount: 32 }, { binCount: 256 }, { ibsi: true }, { binCount: 1 }])
    await triple(`flat region (all 100) ${JSON.stringify(s)}`, flat, W, H, full, box, 0, S(s));
  const flatIn = img.slice();
  for (let i = 0; i < flatIn.length; i++) if (box[i]) flatIn[i] = 0;
  await triple('flat region at intensity 0 inside a textured image', flatIn, W, H, full, box, 0, S({ binCount: 32 }));
  const two = new Uint8Array(W * H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) two[y * W + x] = (x + y) % 2 ? 255 : 0;
  await triple('checkerboard 0/255 (runs and zones of 1)', two, W, H, full, box, 0, S({ binCount: 32 }));

  await triple('whole image is ROI (touches all four edges) bw25', img, W, H, full, codesFrom(() => true), 0, S());
  await triple('whole image is ROI bc32 distances [1,2,3]', img, W, H, full, codesFrom(() => true), 0, S({ binCount: 32, distances: [1, 2, 3] }));
  await triple('L-shaped ROI along the top and right edges', img, W, H, full, codesFrom((x, y) => y === 0 || y === 1 || x === W - 1), 0, S({ binCount: 16 }));
  await triple('checker mask (8-connected only) bc32', img, W, H, full, codesFrom((x, y) => (x + y) % 2 === 0), 0, S({ binCount: 32 }));
  await triple('ROI with a hole', img, W, H, full, codesFrom((x, y) => x >= 2 && x < 30 && y >= 2 && y < 22 && !(x >= 10 && x < 20 && y >= 8 && y < 16)), 0, S({ binCount: 32 }));
  await triple('distance 40 > image size, distances [1, 40]', img, W, H, full, box, 0, S({ distances: [1, 40] }));
  await triple('distances [1,2,3] on the box', img, W, H, full, box, 0, S({ distances: [1, 2, 3] }));
  await triple('binCount 256 on the box', img, W, H, full, box, 0, S({ binCount: 256 }));
  await triple('binCount 1000 (more bins than intensities)', img, W, H, full, box, 0, S({ binCount: 1000 }));
  await triple('binWidth 0.5 (up to 511 levels)', img, W, H, full, box, 0, S({ binWidth: 0.5 }));
  await triple('binWidth 1000 (one level)', img, W, H, full, box, 0, S({ binWidth: 1000 }));
  await triple('symmetricalGLCM false, gldm_a 2, voxelArrayShift 1000, spacing 0.07 x 0.1', img, W, H, full, box, 0,
    S({ symmetricalGLCM: false, gldm_a: 2, voxelArrayShift: 1000, spacingX: 0.07, spacingY: 0.1 }));
  await triple('ibsi true, bc32', img, W, H, full, box, 0, S({ ibsi: true, binCount: 32 }));
  await triple('minimumROISize above the ROI size', img, W, H, full, box, 0, S({ minimumROISize: 100000 }));
  for (const k of [0, 1, 2, 3, 4, 5, 6]) await triple(`classes [${k}] only`, img, W, H, full, box, 0, S({ classes: [k] }));
  await triple('classes [6, 0] (out of order)', img, W, H, full, box, 0, S({ classes: [6, 0] }));
  await triple('empty ROI (no pixel)', img, W, H, full, new Uint8Array(W * H), 0, S());

  // Two panes with rings, the second touching the right and bottom image edges; ring 0 empty;
  // codes above nRings + 1 must be ignored.
  const FW = 200, FH = 100, frame = syntheticImage(FW, FH, 11);
  const panes = [{ x: 0, y: 0, width: 90, height: 90 }, { x: 110, y: 10, width: 90, height: 90 }];
  const rc = new Uint8Array(90 * 90);
  for (let y = 0; y < 90; y++) for (let x = 0; x < 90; x++) {
    const r = Math.hypot(x - 44.5, y - 44.5);
    rc[y * 90 + x] = r < 12 ? 1 : r < 20 ? 3 : r < 30 ? 5 : r < 40 ? 9 : 0; // no code 2 or 4: ring 0 empty
  }
  await triple('two panes, 3 rings, ring 0 empty, stray code 9', frame, FW, FH, panes, rc, 3, S());
  await triple('two panes, 0 rings', frame, FW, FH, panes, rc, 0, S({ binCount: 32 }));
  await triple('two panes, 250 rings', frame, FW, FH, panes, rc, 250, S({ classes: [0, 1] }));
  await triple('two panes, 3 rings, distances [1,2,3], bc32', frame, FW, FH, panes, rc, 3, S({ binCount: 32, distances: [1, 2, 3] }));

  // The image as a view at a non-zero byteOffset must give the same values as a copy.
  const big = new Uint8Array(FW * FH + 7);
  big.set(frame, 5);
  const view = big.subarray(5, 5 + FW * FH);
  const codesView = new Uint8Array(rc.length + 3).fill(1).subarray(3);
  codesView.set(rc);
  const x1 = call('offset views', view, FW, FH, panes, codesView, 3, S());
  const x2 = call('copies', frame, FW, FH, panes, rc, 3, S());
  if (!x1.threw && !x2.threw && !sameValues(x1.r.values, x2.r.values)) fail('image/codes views at a byteOffset give other values than copies (byteOffset ignored?)');
  else log('  byteOffset views: same values as copies');
  const nb = Buffer.from(frame);
  const x3 = call('Buffer image', nb, FW, FH, panes, rc, 3, S());
  if (!x3.threw && !x2.threw && !sameValues(x3.r.values, x2.r.values)) fail('a Buffer image gives other values than a Uint8Array');

  // Large case at binCount 256 and distances [1,2,3] (the biggest matrices of the run).
  const c5 = cases.find((c) => c.name === 'c5_512x512') ?? cases.at(-1);
  if (c5) {
    const p = [{ x: 0, y: 0, width: c5.width, height: c5.height }];
    await triple(`${c5.name} binCount 256`, c5.image, c5.width, c5.height, p, c5.codes, 0, S({ binCount: 256 }));
    await triple(`${c5.name} distances [1,2,3] bc32`, c5.image, c5.width, c5.height, p, c5.codes, 0, S({ binCount: 32, distances: [1, 2, 3] }));
  }
}

/** Many async calls in flight at once, with the caller's references dropped and GC forced. */
async function concurrency(cases) {
  if (!cases.length) return;
  const rounds = quick ? 1 : 3;
  for (let round = 0; round < rounds; round++) {
    const jobs = [];
    for (const c of cases) {
      for (const s of [S({ binCount: 32 }), S({ binWidth: 25 })]) {
        // Fresh copies that only the pending call still references.
        const image = c.image.slice(), codes = c.codes.slice();
        const panes = [{ x: 0, y: 0, width: c.width, height: c.height }];
        const expect = A.radiomics(c.image, c.width, c.height, panes, c.codes, 0, s).values;
        jobs.push(A.radiomicsAsync(image, c.width, c.height, panes, codes, 0, s).then((r) => {
          if (!sameValues(r.values, expect)) fail(`concurrent async ${c.name}: values differ from the sync call`);
        }));
      }
    }
    if (typeof globalThis.gc === 'function') { globalThis.gc(); globalThis.gc(); }
    await Promise.all(jobs);
  }
  log(`concurrency: ${rounds} round(s) of ${cases.length * 2} async calls in flight at once${typeof globalThis.gc === 'function' ? ', GC forced while pending' : ' (run node with --expose-gc to force GC while pending)'}`);
}

async function badArguments() {
  const W = 16, H = 16, img = syntheticImage(W, H, 3), codes = new Uint8Array(W * H).fill(1), panes = [{ x: 0, y: 0, width: W, height: H }];
  const ok = [img, W, H, panes, codes, 0, S()];
  const withArg = (i, v) => { const a = [...ok]; a[i] = v; return a; };
  const withSetting = (k, v) => withArg(6, { ...S(), [k]: v });
  const withoutSetting = (k) => { const s = S(); delete s[k]; return withArg(6, s); };
  // must: a call that must throw. may: must only not crash (throwing or computing are both fine).
  const cases = [
    ['must', 'no arguments', []],
    ['must', 'image is a string', withArg(0, 'pixels')],
    ['must', 'image is a Float32Array', withArg(0, new Float32Array(W * H))],
    ['must', 'image too short for width*height', withArg(0, img.subarray(1))],
    ['must', 'width 0', withArg(1, 0)],
    ['must', 'width -16', withArg(1, -16)],
    ['must', 'width NaN', withArg(1, NaN)],
    ['must', 'height is a string', withArg(2, '16')],
    ['must', 'panes not an array', withArg(3, { x: 0, y: 0, width: W, height: H })],
    ['must', 'panes empty', withArg(3, [])],
    ['must', 'pane outside the image', withArg(3, [{ x: 1, y: 0, width: W, height: H }])],
    ['must', 'pane at negative x', withArg(3, [{ x: -1, y: 0, width: W, height: H }])],
    ['must', 'pane without height', withArg(3, [{ x: 0, y: 0, width: W }])],
    ['must', 'panes of different sizes', withArg(3, [{ x: 0, y: 0, width: 8, height: 8 }, { x: 0, y: 0, width: 8, height: 7 }])],
    ['must', 'codes shorter than the pane', withArg(4, codes.subarray(1))],
    ['must', 'codes is an Int32Array', withArg(4, new Int32Array(W * H))],
    ['must', 'codes missing', withArg(4, undefined)],
    ['must', 'nRings -1', withArg(5, -1)],
    ['must', 'nRings is a string', withArg(5, '3')],
    ['must', 'settings missing', withArg(6, undefined)],
    ['must', 'settings null', withArg(6, null)],
    ['must', 'binWidth 0 (no binCount)', withSetting('binWidth', 0)],
    ['must', 'binWidth -25', withSetting('binWidth', -25)],
    ['must', 'binWidth NaN', withSetting('binWidth', NaN)],
    ['must', 'binWidth Infinity', withSetting('binWidth', Infinity)],
    ['must', 'binCount -1', withSetting('binCount', -1)],
    ['must', 'distances empty', withSetting('distances', [])],
    ['must', 'distances not an array', withSetting('distances', 1)],
    ['must', 'distances [0]', withSetting('distances', [0])],
    ['must', 'distances [-2]', withSetting('distances', [-2])],
    ['must', 'classes [7]', withSetting('classes', [7])],
    ['must', 'classes [-1]', withSetting('classes', [-1])],
    ['must', 'classes not an array', withSetting('classes', 'glcm')],
    ['must', 'spacingX 0', withSetting('spacingX', 0)],
    ['must', 'spacingY -1', withSetting('spacingY', -1)],
    ['must', 'minimumROIDimensions 3', withSetting('minimumROIDimensions', 3)],
    ['may', 'nRings 251', withArg(5, 251)],
    ['may', 'nRings 1e9', withArg(5, 1e9)],
    ['may', 'binCount 1.5', withSetting('binCount', 1.5)],
    ['may', 'classes empty', withSetting('classes', [])],
    ['may', 'classes [0, 0] (duplicate)', withSetting('classes', [0, 0])],
    ['may', 'distances [1000]', withSetting('distances', [1000])],
    ['may', 'distances with 100 entries', withSetting('distances', Array.from({ length: 100 }, (_, i) => i + 1))],
    ['may', 'gldm_a -1', withSetting('gldm_a', -1)],
    ['may', 'minimumROIDimensions 0', withSetting('minimumROIDimensions', 0)],
    ['may', 'minimumROISize -5', withSetting('minimumROISize', -5)],
    ['may', 'voxelArrayShift NaN', withSetting('voxelArrayShift', NaN)],
    ['may', 'settings without binCount', withoutSetting('binCount')],
    ['may', 'settings without distances', withoutSetting('distances')],
    ['may', 'settings without classes', withoutSetting('classes')],
    ['may', 'settings {}', withArg(6, {})],
  ];
  let thrown = 0, accepted = [];
  for (const [kind, label, a] of cases) {
    let syncThrew = false, asyncThrew = false;
    try { A.radiomics(...a); } catch (e) { syncThrew = true; if (!(e instanceof Error)) fail(`bad argument "${label}": threw a non-Error`); }
    try { await A.radiomicsAsync(...a); } catch (e) { asyncThrew = true; }
    if (syncThrew) thrown++;
    if (kind === 'must' && !syncThrew) fail(`bad argument "${label}": radiomics() did not throw`);
    if (kind === 'must' && !asyncThrew) fail(`bad argument "${label}": radiomicsAsync() neither threw nor rejected`);
    if (kind === 'may' && !syncThrew) accepted.push(label);
  }
  log(`bad arguments: ${cases.length} calls (sync and async each), ${thrown} threw synchronously; accepted without error: ${accepted.length ? accepted.join(', ') : 'none'}`);
}

async function main() {
  log(`sanitize-driver: addon ${addonPath}, node ${process.version}, cases from ${refDir}${quick ? ' (quick)' : ''}`);
  const cases = loadCases();
  await baseline(cases);
  if (typeof A.radiomics !== 'function' || typeof A.radiomicsAsync !== 'function') {
    log('this addon has no radiomics engine (radiomics/radiomicsAsync missing): only the first-order baseline ran');
    process.exitCode = 3;
    return;
  }
  names = A.radiomicsFeatureNames;
  if (!Array.isArray(names) || !names.length || names.some((n) => typeof n !== 'string')) { fail('radiomicsFeatureNames is not a non-empty string array'); names = []; }
  log(`engine: ${names.length} feature names`);
  await conformance(cases);
  await edgeCases(cases);
  await concurrency(quick ? cases.slice(0, 2) : cases);
  await badArguments();
  for (const n of notes) log(`note: ${n}`);
  log(failures.length ? `sanitize-driver: ${failures.length} check(s) FAILED` : 'sanitize-driver: all calls done, all checks held');
  process.exitCode = failures.length ? 1 : 0;
}

main().catch((e) => { console.error('sanitize-driver crashed:', e); process.exitCode = 1; });
