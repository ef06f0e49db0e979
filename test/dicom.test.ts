// DICOM ultrasound ingestion: the eight real scanner files of ../shared/data/dicom_us against
// pydicom (sha256 of pixel_array) and their reference PNG renderings, calibration and timing,
// files written here for the paths those eight do not cover (big endian, MONOCHROME1, YBR_FULL,
// JPEG baseline, JPEG-LS, JPEG 2000 lossless, HTJ2K, segmented and 8-bit palettes), refusals,
// truncated and corrupted files, and DicomSource delivery (fast, paced, looped, duplicates, errors).
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import sharp from 'sharp';
import t from 'tap';
import type { Frame } from '../core/frame.js';
import { DicomError, DicomFile, DicomSource, expandSegmentedLut, type DicomSourceOptions } from '../device/dicom.js';
import type { Test } from 'tap';
import { runSource, sha, sharedDir, within, type Run } from './helpers.js';

const require = createRequire(import.meta.url);

interface ManifestEntry {
  file: string; transfer_syntax_uid: string; frames: number; rows: number; columns: number; samples_per_pixel: number;
  bits_allocated: number; bits_stored: number; photometric: string; planar_configuration: number | null;
  pixel_array_sha256: string; rendered_frames: string[];
}


function manifest(t: Test): { dir: string; entries: ManifestEntry[] } | undefined {
  const dir = sharedDir(t, 'data', 'dicom_us');
  if (!dir) return undefined;
  return { dir, entries: JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as ManifestEntry[] };
}


async function openError(path: string): Promise<DicomError> {
  try {
    await DicomFile.open(path);
  } catch (e) {
    if (e instanceof DicomError) return e;
    throw e;
  }
  throw new Error(`${path} opened, a DicomError was expected`);
}

async function decodeError(file: DicomFile, index: number): Promise<DicomError> {
  try {
    await file.decodeFrame(index);
  } catch (e) {
    if (e instanceof DicomError) return e;
    throw e;
  }
  throw new Error(`frame ${index} decoded, a DicomError was expected`);
}

// ---- a minimal DICOM writer for synthetic files ------------------------------------------------

type Value = Buffer | string | number[];
interface El { tag: number; vr: string; value: Value }
const el = (tag: number, vr: string, value: Value): El => ({ tag, vr, value });
const LONG_VRS = new Set(['OB', 'OW', 'OF', 'SQ', 'UT', 'UN', 'OD', 'OL', 'UC', 'UR']);

function encodeValue(vr: string, v: Value, be: boolean): Buffer {
  if (Buffer.isBuffer(v)) return v.length % 2 ? Buffer.concat([v, Buffer.alloc(1)]) : v;
  if (typeof v === 'string') return Buffer.from(v.length % 2 ? v + (vr === 'UI' ? '\0' : ' ') : v, 'latin1');
  const size = vr === 'US' ? 2 : vr === 'UL' ? 4 : 8;
  const b = Buffer.alloc(size * v.length);
  v.forEach((x, i) => {
    if (size === 2) { if (be) b.writeUInt16BE(x, 2 * i); else b.writeUInt16LE(x, 2 * i); }
    else if (size === 4) { if (be) b.writeUInt32BE(x, 4 * i); else b.writeUInt32LE(x, 4 * i); }
    else if (be) b.writeDoubleBE(x, 8 * i);
    else b.writeDoubleLE(x, 8 * i);
  });
  return b;
}

function encodeElement(e: El, be: boolean): Buffer {
  const value = encodeValue(e.vr, e.value, be);
  const long = LONG_VRS.has(e.vr);
  const h = Buffer.alloc(long ? 12 : 8);
  const w16 = (x: number, o: number) => (be ? h.writeUInt16BE(x, o) : h.writeUInt16LE(x, o));
  w16(e.tag >>> 16, 0);
  w16(e.tag & 0xffff, 2);
  h.write(e.vr, 4, 'latin1');
  if (long) { if (be) h.writeUInt32BE(value.length, 8); else h.writeUInt32LE(value.length, 8); }
  else w16(value.length, 6);
  return Buffer.concat([h, value]);
}

const pad2 = (b: Buffer) => (b.length % 2 ? Buffer.concat([b, Buffer.alloc(1)]) : b);

function encapsulatedPixels(fragments: Buffer[], bot: number[]): Buffer {
  const item = (b: Buffer) => {
    const h = Buffer.alloc(8);
    h.writeUInt16LE(0xfffe, 0); h.writeUInt16LE(0xe000, 2); h.writeUInt32LE(b.length, 4);
    return Buffer.concat([h, b]);
  };
  const table = Buffer.alloc(4 * bot.length);
  bot.forEach((o, i) => table.writeUInt32LE(o, 4 * i));
  const head = Buffer.alloc(12);
  head.writeUInt16LE(0x7fe0, 0); head.writeUInt16LE(0x0010, 2); head.write('OB', 4, 'latin1'); head.writeUInt32LE(0xffffffff, 8);
  const end = Buffer.alloc(8);
  end.writeUInt16LE(0xfffe, 0); end.writeUInt16LE(0xe0dd, 2);
  return Buffer.concat([head, item(table), ...fragments.map((f) => item(pad2(f))), end]);
}

interface ImageSpec {
  rows: number; cols: number; frames?: number; spp?: number; ba?: number; bs?: number; photometric: string; planar?: number; signed?: boolean;
}

function imageElements(s: ImageSpec): El[] {
  const spp = s.spp ?? 1, ba = s.ba ?? 8, bs = s.bs ?? ba;
  const els = [
    el(0x00080016, 'UI', '1.2.840.10008.5.1.4.1.1.3.1'), el(0x00080060, 'CS', 'US'),
    el(0x00280002, 'US', [spp]), el(0x00280004, 'CS', s.photometric), el(0x00280010, 'US', [s.rows]), el(0x00280011, 'US', [s.cols]),
    el(0x00280100, 'US', [ba]), el(0x00280101, 'US', [bs]), el(0x00280102, 'US', [bs - 1]), el(0x00280103, 'US', [s.signed ? 1 : 0]),
  ];
  if (s.frames !== undefined) els.push(el(0x00280008, 'IS', String(s.frames)));
  if (spp > 1) els.push(el(0x00280006, 'US', [s.planar ?? 0]));
  return els;
}

/**
 * Writes a Part 10 file: preamble, explicit little endian meta header, then the data set in the
 * transfer syntax's byte order. Pixels are native bytes (OW, or OB for 8-bit) or fragments.
 */
function writeDicom(path: string, o: { ts: string; elements: El[]; native?: Buffer; nativeVr?: string; fragments?: Buffer[]; bot?: number[] }): string {
  const be = o.ts === '1.2.840.10008.1.2.2';
  const meta = [el(0x00020001, 'OB', Buffer.from([0, 1])), el(0x00020010, 'UI', o.ts)].map((e) => encodeElement(e, false));
  const body = [...o.elements].sort((a, b) => a.tag - b.tag).map((e) => encodeElement(e, be));
  const pixels = o.fragments ? encapsulatedPixels(o.fragments, o.bot ?? []) : encodeElement(el(0x7fe00010, o.nativeVr ?? 'OW', o.native ?? Buffer.alloc(0)), be);
  const preamble = Buffer.alloc(132);
  preamble.write('DICM', 128, 'latin1');
  writeFileSync(path, Buffer.concat([preamble, ...meta, ...body, pixels]));
  return path;
}

/** Basic offset table for one fragment per frame. */
const botFor = (fragments: Buffer[]) => fragments.map((_, i) => fragments.slice(0, i).reduce((n, f) => n + 8 + pad2(f).length, 0));

interface WasmEncoder {
  getDecodedBuffer(info: object): Uint8Array;
  encode(): void;
  getEncodedBuffer(): Uint8Array;
  delete(): void;
}

/** An encoder of the codec packages, its output kept off stdout. */
async function encoder(pkg: string, cls: string) {
  const factory = require(pkg) as (o: object) => Promise<Record<string, new () => WasmEncoder>>;
  const mod = await factory({ print: () => undefined, printErr: () => undefined });
  return (pixels: Uint8Array, width: number, height: number, componentCount: number, bitsPerSample = 8): Buffer => {
    const e = new mod[cls]();
    try {
      e.getDecodedBuffer({ width, height, bitsPerSample, componentCount, isSigned: false, isUsingColorTransform: componentCount > 1 }).set(pixels);
      e.encode();
      return Buffer.from(e.getEncodedBuffer());
    } finally {
      e.delete();
    }
  };
}

/** A smooth test picture with some texture, w*h*c bytes. */
function picture(w: number, h: number, c = 1, seed = 1): Uint8Array {
  const out = new Uint8Array(w * h * c);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++)
    out[(y * w + x) * c + k] = (x * 3 + y * 2 + k * 60 + seed * 17 + ((x * y) % 7)) & 255;
  return out;
}

const luma = (r: number, g: number, b: number) => (77 * r + 150 * g + 29 * b + 128) >> 8;

// ---- the real files ---------------------------------------------------------------------------

t.test('every file of ../shared/data/dicom_us decodes to pydicom\'s pixel_array (sha256)', async (t) => {
  const m = manifest(t);
  if (!m) return;
  t.equal(m.entries.length, 8, 'eight reference files');
  for (const e of m.entries) {
    const f = await DicomFile.open(join(m.dir, e.file));
    const i = f.info;
    t.same({ ts: i.transferSyntaxUid, rows: i.height, cols: i.width, frames: i.frames, spp: i.samplesPerPixel, ba: i.bitsAllocated, bs: i.bitsStored, pi: i.photometric },
      { ts: e.transfer_syntax_uid, rows: e.rows, cols: e.columns, frames: e.frames, spp: e.samples_per_pixel, ba: e.bits_allocated, bs: e.bits_stored, pi: e.photometric },
      `${e.file}: header as the manifest`);
    if (e.planar_configuration !== null) t.equal(i.planarConfiguration, e.planar_configuration, `${e.file}: planar configuration`);
    const raws: Array<Uint8Array | Uint16Array> = [];
    for (let k = 0; k < i.frames; k++) {
      const d = await f.decodeFrame(k);
      raws.push(d.raw);
      t.equal(d.gray.length, i.width * i.height, `${e.file} frame ${k}: gray plane size`);
      if (i.colourModel !== 'gray') t.equal(d.rgb?.length, i.width * i.height * 3, `${e.file} frame ${k}: rgb size`);
      else t.equal(d.rgb, undefined, `${e.file} frame ${k}: no rgb for gray`);
    }
    t.equal(sha(raws), e.pixel_array_sha256, `${e.file} (${i.transferSyntaxName}, ${i.photometric}): all ${i.frames} frames equal pydicom's pixel_array`);
  }
});

t.test('rgb/gray equal the reference PNG renderings; the 16-bit segmented palette renders gray tissue', async (t) => {
  const m = manifest(t);
  if (!m) return;
  for (const e of m.entries) {
    if (!e.rendered_frames.length) continue;
    const f = await DicomFile.open(join(m.dir, e.file));
    for (let k = 0; k < e.rendered_frames.length; k++) {
      const d = await f.decodeFrame(k);
      const png = await sharp(join(m.dir, e.rendered_frames[k])).raw().toBuffer({ resolveWithObject: true });
      const { width, height, channels } = png.info;
      t.same([width, height], [f.info.width, f.info.height], `${e.rendered_frames[k]}: size`);
      let maxDiff = 0;
      for (let p = 0; p < width * height; p++) for (let c = 0; c < 3; c++) {
        const ref = png.data[p * channels + Math.min(c, channels - 1)];
        const ours = d.rgb ? d.rgb[p * 3 + c] : d.gray[p];
        maxDiff = Math.max(maxDiff, Math.abs(ref - ours));
      }
      t.equal(maxDiff, 0, `${e.rendered_frames[k]}: ${d.rgb ? 'rgb' : 'gray'} identical to the reference rendering`);
      if (d.rgb) {
        let lumaDiff = 0;
        for (let p = 0; p < width * height; p++) lumaDiff = Math.max(lumaDiff, Math.abs(d.gray[p] - luma(d.rgb[3 * p], d.rgb[3 * p + 1], d.rgb[3 * p + 2])));
        // YBR sources carry Y itself as gray; the rest BT.601 luma of the RGB.
        t.ok(lumaDiff <= 1, `${e.rendered_frames[k]}: gray is the BT.601 luma of rgb (max diff ${lumaDiff})`);
      }
    }
  }
  // gdcm-US-ALOKA-16 has no reference rendering: B-mode tissue must come out neutral gray, with
  // the full range used (a wrongly expanded LUT gives colour casts or a flat image).
  const f = await DicomFile.open(join(m.dir, 'gdcm-US-ALOKA-16.dcm'));
  const d = await f.decodeFrame(0);
  for (const r of f.info.regions.filter((r) => r.spatialFormat === 1)) {
    let n = 0, neutral = 0, lo = 255, hi = 0;
    for (let y = r.y0; y <= r.y1; y++) for (let x = r.x0; x <= r.x1; x++) {
      const p = y * f.info.width + x, [R, G, B] = [d.rgb![3 * p], d.rgb![3 * p + 1], d.rgb![3 * p + 2]];
      n++;
      if (Math.abs(R - G) <= 2 && Math.abs(G - B) <= 2) neutral++;
      lo = Math.min(lo, d.gray[p]); hi = Math.max(hi, d.gray[p]);
    }
    t.ok(neutral / n > 0.97, `ALOKA region at x ${r.x0}: ${(100 * neutral / n).toFixed(1)} % neutral gray pixels`);
    t.ok(lo < 20 && hi - lo > 150, `ALOKA region at x ${r.x0}: gray spans ${lo}..${hi}`);
  }
});

t.test('regions, pixel spacing and frame timing', async (t) => {
  const m = manifest(t);
  if (!m) return;
  const open = (name: string) => DicomFile.open(join(m.dir, name));
  const ob = (await open('OBXXXX1A_2frame.dcm')).info;
  t.equal(ob.regions.length, 2, 'OBXXXX1A: two regions');
  t.match(ob.regions[0], { x0: 120, y0: 60, x1: 800, y1: 518, spatialFormat: 1, dataType: 1, unitsX: 3, unitsY: 3 }, 'OBXXXX1A: the 2D tissue region');
  t.ok(Math.abs(ob.pixelSpacingMm!.x - 0.2622878766) < 1e-9 && Math.abs(ob.pixelSpacingMm!.y - 0.2622878766) < 1e-9, `OBXXXX1A: ${ob.pixelSpacingMm!.x} mm/px`);
  t.equal(ob.regions[1].spatialFormat, 4, 'OBXXXX1A: the second region is a waveform');
  t.equal(ob.regions[1].mmPerPixelX, undefined, 'OBXXXX1A: its x axis is time, not mm');
  t.equal(ob.frameTimeMs, undefined, 'OBXXXX1A: no timing');
  t.equal(ob.frameTimesMs, undefined);
  t.equal(ob.manufacturer, 'Philips Medical Systems');
  t.equal(ob.model, 'CX50');

  const aloka = (await open('gdcm-US-ALOKA-16.dcm')).info;
  const tissue = aloka.regions.filter((r) => r.spatialFormat === 1);
  t.equal(tissue.length, 2, 'ALOKA: two tissue regions');
  t.same(tissue.map((r) => [r.x1 - r.x0 + 1, r.y1 - r.y0 + 1]), [[304, 392], [304, 392]], 'ALOKA: side by side, 304x392 each');
  t.ok(tissue[0].x1 < tissue[1].x0, 'ALOKA: left then right');
  t.ok(Math.abs(aloka.pixelSpacingMm!.x - 0.3826530650) < 1e-9, `ALOKA: ${aloka.pixelSpacingMm!.x} mm/px`);

  const jpl = (await open('JPGLosslessP14SV1_1s_1f_8b.dcm')).info;
  t.equal(jpl.regions.length, 1, 'JPGLossless: one region');
  t.ok(jpl.pixelSpacingMm && jpl.pixelSpacingMm.x > 0.2 && jpl.pixelSpacingMm.x < 0.3, 'JPGLossless: spacing from its region');

  const pal = (await open('US-PAL-8-10x-echo.dcm')).info;
  t.equal(pal.frameTimeMs, 76, 'US-PAL-8-10x-echo: Frame Time 76 ms');
  t.ok(Math.abs(pal.fps! - 13.16) < 0.01, `US-PAL-8-10x-echo: ${pal.fps} fps`);
  t.same(pal.frameTimesMs, [0, 76, 152, 228, 304, 380, 456, 532, 608, 684], 'US-PAL-8-10x-echo: frame offsets');
  t.same(pal.regions, [], 'US-PAL-8-10x-echo: no regions');
  t.equal(pal.pixelSpacingMm, undefined, 'US-PAL-8-10x-echo: no spacing');
  t.equal(pal.sopClassName, 'Ultrasound Multi-frame Image Storage');
});

// ---- synthetic files: the paths the real files do not take ------------------------------------

t.test('synthetic native files: big endian 12-bit, MONOCHROME1, YBR_FULL, palettes, timing sources', async (t) => {
  const dir = t.testdir({});
  const w = 40, h = 30, n = w * h;

  // Big endian, 16 bits allocated, 12 stored, Frame Time Vector, Pixel Spacing.
  const values = Array.from({ length: 2 * n }, (_, i) => (i * 37) & 0xfff);
  const be = Buffer.alloc(4 * n);
  values.forEach((v, i) => be.writeUInt16BE(v, 2 * i));
  const beFile = writeDicom(join(dir, 'be.dcm'), {
    ts: '1.2.840.10008.1.2.2', native: be,
    elements: [...imageElements({ rows: h, cols: w, frames: 2, ba: 16, bs: 12, photometric: 'MONOCHROME2' }),
      el(0x00181065, 'DS', '0\\40.5'), el(0x00280030, 'DS', '0.2\\0.25')],
  });
  const bf = await DicomFile.open(beFile);
  t.equal(bf.info.transferSyntaxName, 'Explicit VR Big Endian');
  t.same(bf.info.frameTimesMs, [0, 40.5], 'Frame Time Vector: offsets');
  t.equal(bf.info.frameTimeMs, 40.5);
  t.same(bf.info.pixelSpacingMm, { x: 0.25, y: 0.2 }, 'Pixel Spacing: row \\ column');
  const b1 = await bf.decodeFrame(1);
  t.ok(b1.raw instanceof Uint16Array, '16-bit samples');
  t.same(Array.from(b1.raw), values.slice(n), 'byte-swapped to the stored values');
  t.same(Array.from(b1.gray), values.slice(n).map((v) => v >> 4), 'gray: the top 8 of 12 bits');

  // Deflated explicit little endian: the data set after the meta header is raw-deflated.
  const le = Buffer.alloc(2 * n);
  values.slice(0, n).forEach((v, i) => le.writeUInt16LE(v, 2 * i));
  const plain = readFileSync(writeDicom(join(dir, 'plain.dcm'), { ts: '1.2.840.10008.1.2.1', native: le, elements: imageElements({ rows: h, cols: w, ba: 16, bs: 12, photometric: 'MONOCHROME2' }) }));
  const version = encodeElement(el(0x00020001, 'OB', Buffer.from([0, 1])), false);
  const metaEnd = 132 + version.length + encodeElement(el(0x00020010, 'UI', '1.2.840.10008.1.2.1'), false).length;
  const deflated = join(dir, 'deflated.dcm');
  writeFileSync(deflated, Buffer.concat([plain.subarray(0, 132), version, encodeElement(el(0x00020010, 'UI', '1.2.840.10008.1.2.1.99'), false), deflateRawSync(plain.subarray(metaEnd))]));
  const df = await DicomFile.open(deflated);
  t.equal(df.info.transferSyntaxName, 'Deflated Explicit VR Little Endian');
  t.same(Array.from((await df.decodeFrame(0)).raw), values.slice(0, n), 'deflated: inflated and read');

  // MONOCHROME1 8-bit: inverted; Cine Rate timing.
  const mono1 = picture(w, h);
  const m1 = await DicomFile.open(writeDicom(join(dir, 'mono1.dcm'), {
    ts: '1.2.840.10008.1.2.1', native: Buffer.from(mono1), nativeVr: 'OB',
    elements: [...imageElements({ rows: h, cols: w, photometric: 'MONOCHROME1' }), el(0x00180040, 'IS', '25')],
  }));
  t.same(Array.from((await m1.decodeFrame(0)).gray), Array.from(mono1, (v) => 255 - v), 'MONOCHROME1 is inverted');
  t.same([m1.info.frameTimeMs, m1.info.fps, m1.info.frameTimesMs], [40, 25, [0]], 'Cine Rate 25 -> 40 ms');

  // YBR_FULL, interleaved and planar: gray is Y, rgb per PS3.3 C.7.6.3.1.2, raw interleaved YBR.
  const ybr = picture(w, h, 3, 5);
  const expectRgb = new Uint8Array(3 * n);
  const clamp = (v: number) => Math.min(255, Math.max(0, Math.round(v)));
  for (let p = 0; p < n; p++) {
    const y = ybr[3 * p], cb = ybr[3 * p + 1] - 128, cr = ybr[3 * p + 2] - 128;
    expectRgb.set([clamp(y + 1.402 * cr), clamp(y - 0.344136 * cb - 0.714136 * cr), clamp(y + 1.772 * cb)], 3 * p);
  }
  const planar = new Uint8Array(3 * n);
  for (let p = 0; p < n; p++) for (let c = 0; c < 3; c++) planar[c * n + p] = ybr[3 * p + c];
  for (const [pc, bytes] of [[0, ybr], [1, planar]] as const) {
    const f = await DicomFile.open(writeDicom(join(dir, `ybr${pc}.dcm`), {
      ts: '1.2.840.10008.1.2.1', native: Buffer.from(bytes), nativeVr: 'OB',
      elements: [...imageElements({ rows: h, cols: w, spp: 3, planar: pc, photometric: 'YBR_FULL' }), el(0x00082144, 'IS', '20')],
    }));
    const d = await f.decodeFrame(0);
    t.equal(f.info.colourModel, 'rgb');
    t.equal(f.info.frameTimeMs, 50, 'Recommended Display Frame Rate 20 -> 50 ms');
    t.same(Array.from(d.raw), Array.from(ybr), `YBR_FULL planar ${pc}: raw is interleaved YBR`);
    t.same(Array.from(d.gray), Array.from({ length: n }, (_, p) => ybr[3 * p]), `YBR_FULL planar ${pc}: gray is Y`);
    let worst = 0;
    for (let i = 0; i < 3 * n; i++) worst = Math.max(worst, Math.abs(d.rgb![i] - expectRgb[i]));
    t.ok(worst <= 1, `YBR_FULL planar ${pc}: rgb within 1 of the standard's formula (${worst})`);
  }

  // Palettes: 8-bit entries in 16-bit words, 8-bit packed entries, a 16-bit table with a first
  // mapped value, and a segmented 16-bit table.
  const indices = Buffer.from(Array.from({ length: n }, (_, i) => i % 256));
  const rgbOf = (k: number) => [k, 255 - k, k >> 1];
  const lutWords = (f: (k: number) => number) => encodeValue('US', Array.from({ length: 256 }, (_, k) => f(k)), false);
  const desc = (entries: number, first: number, bits: number) => [0x00281101, 0x00281102, 0x00281103].map((tag) => el(tag, 'US', [entries, first, bits]));
  const pal16 = await DicomFile.open(writeDicom(join(dir, 'pal8in16.dcm'), {
    ts: '1.2.840.10008.1.2.1', native: indices, nativeVr: 'OB',
    elements: [...imageElements({ rows: h, cols: w, photometric: 'PALETTE COLOR' }), ...desc(256, 0, 8),
      el(0x00281201, 'OW', lutWords((k) => rgbOf(k)[0])), el(0x00281202, 'OW', lutWords((k) => rgbOf(k)[1])), el(0x00281203, 'OW', lutWords((k) => rgbOf(k)[2]))],
  }));
  const packed = (c: number) => Buffer.from(Array.from({ length: 256 }, (_, k) => rgbOf(k)[c]));
  const pal8 = await DicomFile.open(writeDicom(join(dir, 'pal8.dcm'), {
    ts: '1.2.840.10008.1.2.1', native: indices, nativeVr: 'OB',
    elements: [...imageElements({ rows: h, cols: w, photometric: 'PALETTE COLOR' }), ...desc(256, 0, 8),
      el(0x00281201, 'OW', packed(0)), el(0x00281202, 'OW', packed(1)), el(0x00281203, 'OW', packed(2))],
  }));
  const expected = Array.from(indices).flatMap((k) => rgbOf(k));
  for (const [name, f] of [['8-bit entries in 16-bit words', pal16], ['packed 8-bit entries', pal8]] as const) {
    const d = await f.decodeFrame(0);
    t.equal(f.info.colourModel, 'palette');
    t.same(Array.from(d.rgb!), expected, `palette, ${name}: rgb`);
    t.same(Array.from(d.raw), Array.from(indices), `palette, ${name}: raw are the indices`);
  }
  // 16-bit entries from first mapped value 100: below maps to the first entry, above to the last.
  const first = await DicomFile.open(writeDicom(join(dir, 'palfirst.dcm'), {
    ts: '1.2.840.10008.1.2.1', native: indices, nativeVr: 'OB',
    elements: [...imageElements({ rows: h, cols: w, photometric: 'PALETTE COLOR' }), ...desc(100, 100, 16),
      ...[0x00281201, 0x00281202, 0x00281203].map((tag) => el(tag, 'OW', encodeValue('US', Array.from({ length: 100 }, (_, k) => (k * 600) & 0xffff), false)))],
  }));
  const fd = await first.decodeFrame(0);
  const grayOf = (k: number) => { const v = ((Math.min(99, Math.max(0, k - 100)) * 600) & 0xffff) >> 8; return luma(v, v, v); };
  t.same(Array.from(fd.gray), Array.from(indices, grayOf), 'palette with first mapped value 100: clamped at both ends');
  // Segmented: discrete [0, 1000], linear to 5000 over 4, indirect replay of both: 12 entries.
  const seg = encodeValue('US', [0, 2, 0, 1000, 1, 4, 5000, 2, 2, 0, 0], false);
  const sf = await DicomFile.open(writeDicom(join(dir, 'palseg.dcm'), {
    ts: '1.2.840.10008.1.2.1', native: Buffer.from(Array.from({ length: n }, (_, i) => i % 12)), nativeVr: 'OB',
    elements: [...imageElements({ rows: h, cols: w, photometric: 'PALETTE COLOR' }), ...desc(12, 0, 16),
      el(0x00281221, 'OW', seg), el(0x00281222, 'OW', seg), el(0x00281223, 'OW', seg)],
  }));
  const sd = await sf.decodeFrame(0);
  const segTable = [0, 1000, 2000, 3000, 4000, 5000, 0, 1000, 2000, 3000, 4000, 5000];
  t.same(Array.from(sd.rgb!.subarray(0, 36)), segTable.flatMap((v) => [v >> 8, v >> 8, v >> 8]), 'segmented palette file: expanded table applied');
});

t.test('expandSegmentedLut: discrete, linear, indirect segments and malformed tables', async (t) => {
  t.same(Array.from(expandSegmentedLut([0, 3, 10, 20, 30], 3, 2)), [10, 20, 30], 'discrete');
  t.same(Array.from(expandSegmentedLut([0, 1, 0, 1, 4, 100], 5, 2)), [0, 25, 50, 75, 100], 'linear: from the previous entry to the end value');
  t.same(Array.from(expandSegmentedLut([0, 1, 100, 1, 2, 100, 0], 3, 2)), [100, 100, 100], 'flat linear segment; a trailing pad word is ignored');
  t.same(Array.from(expandSegmentedLut([0, 2, 0, 1000, 1, 4, 5000, 2, 2, 0, 0], 12, 2)),
    [0, 1000, 2000, 3000, 4000, 5000, 0, 1000, 2000, 3000, 4000, 5000], 'indirect: replays segments at a byte offset (16-bit words)');
  t.same(Array.from(expandSegmentedLut([0, 2, 5, 9, 1, 2, 13, 2, 1, 0, 0, 0, 0], 6, 1)), [5, 9, 11, 13, 5, 9], 'indirect in an 8-bit table: 32-bit byte offset');
  t.same(Array.from(expandSegmentedLut([0, 2, 5, 9, 1, 2, 13, 2, 1, 4, 0, 0, 0], 6, 1)), [5, 9, 11, 13, 13, 13], 'indirect replaying a linear segment: it starts from the last entry');
  const bad: Array<[number[], number, string]> = [
    [[1, 2, 100], 2, 'linear segment cannot be the first'],
    [[2, 1, 0, 0], 1, 'indirect segment cannot be the first'],
    [[0, 1, 5, 7, 1, 1], 2, 'unknown segment type 7'],
    [[0, 2, 1, 2], 3, 'expands to 2 entries'],
    [[0, 4, 1, 2], 4, 'runs past the end'],
    [[0, 3, 1, 2, 3], 2, 'more than the 2 entries'],
    [[0, 1, 5, 2, 1, 200, 0], 3, 'points outside the data'],
    [[0, 1, 5, 2, 1, 6, 0], 3, 'nest more than 8 deep'],
  ];
  for (const [data, entries, msg] of bad) t.throws(() => expandSegmentedLut(data, entries, 2), new RegExp(msg), `refused: ${msg}`);
});

t.test('synthetic encapsulated files: JPEG-LS, HTJ2K, JPEG 2000 lossless, JPEG baseline; frame boundaries', async (t) => {
  const dir = t.testdir({});
  const w = 48, h = 32;
  const frames = [picture(w, h, 1, 1), picture(w, h, 1, 2), picture(w, h, 1, 3)];
  const mono = (count: number) => imageElements({ rows: h, cols: w, frames: count, photometric: 'MONOCHROME2' });

  const jls = await encoder('@cornerstonejs/codec-charls/wasmjs', 'JpegLSEncoder');
  const jlsFrames = frames.map((p) => jls(p, w, h, 1));
  // No basic offset table, one fragment per frame.
  const a = await DicomFile.open(writeDicom(join(dir, 'jls.dcm'), { ts: '1.2.840.10008.1.2.4.80', elements: mono(3), fragments: jlsFrames }));
  for (let k = 0; k < 3; k++) t.same(Array.from((await a.decodeFrame(k)).raw), Array.from(frames[k]), `JPEG-LS frame ${k}: lossless round trip`);
  // No basic offset table, each frame split in two fragments: frames start at an SOI marker.
  const split = jlsFrames.flatMap((f) => { const cut = 2 * Math.floor(f.length / 4); return [f.subarray(0, cut), f.subarray(cut)]; });
  const b = await DicomFile.open(writeDicom(join(dir, 'jls-split.dcm'), { ts: '1.2.840.10008.1.2.4.80', elements: mono(3), fragments: split }));
  t.same(Array.from((await b.decodeFrame(2)).raw), Array.from(frames[2]), 'JPEG-LS in 6 fragments, no offset table: frame 2 found by its SOI marker');
  // 12-bit JPEG-LS: 16 bits allocated.
  const deep = new Uint16Array(w * h).map((_, i) => (i * 53) & 0xfff);
  const deepFile = await DicomFile.open(writeDicom(join(dir, 'jls12.dcm'), {
    ts: '1.2.840.10008.1.2.4.80', elements: imageElements({ rows: h, cols: w, ba: 16, bs: 12, photometric: 'MONOCHROME2' }),
    fragments: [jls(new Uint8Array(deep.buffer), w, h, 1, 12)],
  }));
  const dd = await deepFile.decodeFrame(0);
  t.same(Array.from(dd.raw), Array.from(deep), 'JPEG-LS 12-bit: lossless round trip to 16-bit samples');
  t.same(Array.from(dd.gray), Array.from(deep, (v) => v >> 4), 'JPEG-LS 12-bit: gray from the top 8 bits');

  // HTJ2K with a basic offset table.
  const ht = await encoder('@cornerstonejs/codec-openjph/wasmjs', 'HTJ2KEncoder');
  const htFrames = frames.map((p) => ht(p, w, h, 1));
  const c = await DicomFile.open(writeDicom(join(dir, 'htj2k.dcm'), { ts: '1.2.840.10008.1.2.4.201', elements: mono(3), fragments: htFrames, bot: botFor(htFrames) }));
  for (let k = 0; k < 3; k++) t.same(Array.from((await c.decodeFrame(k)).raw), Array.from(frames[k]), `HTJ2K frame ${k}: lossless round trip`);

  // JPEG 2000 lossless colour (YBR_RCT: the codestream carries the colour transform).
  const j2k = await encoder('@cornerstonejs/codec-openjpeg/wasmjs', 'J2KEncoder');
  const colour = picture(w, h, 3, 4);
  const d = await DicomFile.open(writeDicom(join(dir, 'j2k-rct.dcm'), {
    ts: '1.2.840.10008.1.2.4.90', elements: imageElements({ rows: h, cols: w, spp: 3, photometric: 'YBR_RCT' }), fragments: [j2k(colour, w, h, 3)],
  }));
  const dc = await d.decodeFrame(0);
  t.same(Array.from(dc.raw), Array.from(colour), 'JPEG 2000 YBR_RCT: decoded to the original RGB');
  t.same(Array.from(dc.rgb!), Array.from(colour), 'JPEG 2000 YBR_RCT: rgb');

  // JPEG baseline (lossy): close to the original.
  const jpeg = await encoder('@cornerstonejs/codec-libjpeg-turbo-8bit/wasmjs', 'JPEGEncoder');
  const e = await DicomFile.open(writeDicom(join(dir, 'jpeg.dcm'), { ts: '1.2.840.10008.1.2.4.50', elements: mono(1), fragments: [jpeg(frames[0], w, h, 1)] }));
  const ed = await e.decodeFrame(0);
  let sum = 0;
  for (let i = 0; i < w * h; i++) sum += Math.abs(ed.gray[i] - frames[0][i]);
  t.ok(sum / (w * h) < 4, `JPEG baseline: mean abs error ${(sum / (w * h)).toFixed(2)} gray levels`);
  const ec = await DicomFile.open(writeDicom(join(dir, 'jpeg-ybr.dcm'), {
    ts: '1.2.840.10008.1.2.4.50', elements: imageElements({ rows: h, cols: w, spp: 3, photometric: 'YBR_FULL_422' }), fragments: [jpeg(colour, w, h, 3)],
  }));
  const ecd = await ec.decodeFrame(0);
  t.equal(ec.info.colourModel, 'rgb', 'JPEG YBR_FULL_422: colour');
  let csum = 0;
  for (let i = 0; i < 3 * w * h; i++) csum += Math.abs(ecd.rgb![i] - colour[i]);
  t.ok(csum / (3 * w * h) < 12, `JPEG YBR_FULL_422: decoded to RGB close to the original (mean abs error ${(csum / (3 * w * h)).toFixed(2)})`);

  // A corrupt JPEG-LS stream: the codec's exception becomes a DicomError; the codec keeps working.
  const broken = Buffer.from(jlsFrames[1]);
  broken.fill(0xff, 4, 24);
  const jbad = await DicomFile.open(writeDicom(join(dir, 'jls-bad.dcm'), { ts: '1.2.840.10008.1.2.4.80', elements: mono(2), fragments: [jlsFrames[0], broken] }));
  const jm = (await decodeError(jbad, 1)).message;
  t.match(jm, /^jls-bad\.dcm: frame 2 of 2 \(index 1\) could not be decoded \(JPEG-LS Lossless\): ./, jm);
  t.same(Array.from((await jbad.decodeFrame(0)).raw), Array.from(frames[0]), 'the other frame still decodes');

  // Frame boundaries that do not add up.
  const badBot = await openError(writeDicom(join(dir, 'bot-count.dcm'), { ts: '1.2.840.10008.1.2.4.80', elements: mono(3), fragments: jlsFrames, bot: [0, 100] }));
  t.match(badBot.message, /bot-count\.dcm: the basic offset table lists 2 frames, Number of Frames \(0028,0008\) says 3/);
  const few = await openError(writeDicom(join(dir, 'few.dcm'), { ts: '1.2.840.10008.1.2.4.80', elements: mono(4), fragments: jlsFrames }));
  t.match(few.message, /few\.dcm: 3 fragments cannot hold 4 frames/);
  const mixed = await openError(writeDicom(join(dir, 'mixed.dcm'), { ts: '1.2.840.10008.1.2.4.80', elements: mono(2), fragments: jlsFrames }));
  t.match(mixed.message, /mixed\.dcm: no basic offset table, and the 3 fragments cannot be split into 2 frames/);
  const wrongSize = await DicomFile.open(writeDicom(join(dir, 'size.dcm'), {
    ts: '1.2.840.10008.1.2.4.80', elements: imageElements({ rows: h + 2, cols: w, photometric: 'MONOCHROME2' }), fragments: [jlsFrames[0]],
  }));
  t.match((await decodeError(wrongSize, 0)).message, /size\.dcm: frame 1 of 1 \(index 0\) could not be decoded \(JPEG-LS Lossless\): the codestream is 48x32 with 1 components, the header says 48x34/);
});

t.test('refused: unsupported transfer syntaxes, photometrics and sample formats, with the reason', async (t) => {
  const dir = t.testdir({});
  const w = 16, h = 8;
  const px = (bytes: number) => Buffer.alloc(bytes, 7);
  const cases: Array<[string, Parameters<typeof writeDicom>[1], RegExp]> = [
    ['mpeg.dcm', { ts: '1.2.840.10008.1.2.4.100', elements: imageElements({ rows: h, cols: w, photometric: 'MONOCHROME2' }), fragments: [px(10)] },
      /mpeg\.dcm: transfer syntax 1\.2\.840\.10008\.1\.2\.4\.100 \(MPEG2 Main Profile \/ Main Level\) is not supported/],
    ['private.dcm', { ts: '1.2.3.4.5', elements: imageElements({ rows: h, cols: w, photometric: 'MONOCHROME2' }), native: px(w * h) },
      /private\.dcm: transfer syntax 1\.2\.3\.4\.5 \(unknown\) is not supported/],
    ['ybr422.dcm', { ts: '1.2.840.10008.1.2.1', elements: imageElements({ rows: h, cols: w, spp: 3, photometric: 'YBR_FULL_422' }), native: px(w * h * 2) },
      /ybr422\.dcm: photometric interpretation YBR_FULL_422 \(chroma-subsampled\) is not supported uncompressed/],
    ['hsv.dcm', { ts: '1.2.840.10008.1.2.1', elements: imageElements({ rows: h, cols: w, spp: 3, photometric: 'HSV' }), native: px(w * h * 3) },
      /hsv\.dcm: photometric interpretation HSV is not supported with Explicit VR Little Endian/],
    ['ict-native.dcm', { ts: '1.2.840.10008.1.2.1', elements: imageElements({ rows: h, cols: w, spp: 3, photometric: 'YBR_ICT' }), native: px(w * h * 3) },
      /photometric interpretation YBR_ICT is not supported with Explicit VR Little Endian/],
    ['rgb16.dcm', { ts: '1.2.840.10008.1.2.1', elements: imageElements({ rows: h, cols: w, spp: 3, ba: 16, photometric: 'RGB' }), native: px(w * h * 6) },
      /rgb16\.dcm: photometric interpretation RGB with 16-bit samples is not supported \(8-bit colour only\)/],
    ['mono3.dcm', { ts: '1.2.840.10008.1.2.1', elements: imageElements({ rows: h, cols: w, spp: 3, photometric: 'MONOCHROME2' }), native: px(w * h * 3) },
      /mono3\.dcm: photometric interpretation MONOCHROME2 with 3 samples per pixel \(1 expected\)/],
    ['signed.dcm', { ts: '1.2.840.10008.1.2.1', elements: imageElements({ rows: h, cols: w, ba: 16, signed: true, photometric: 'MONOCHROME2' }), native: px(w * h * 2) },
      /signed\.dcm: signed pixel data \(Pixel Representation 1\) is not supported/],
    ['float.dcm', { ts: '1.2.840.10008.1.2.1', elements: imageElements({ rows: h, cols: w, ba: 32, photometric: 'MONOCHROME2' }), native: px(w * h * 4) },
      /float\.dcm: 32 bits allocated per sample: only 8 and 16 are supported/],
    ['jpeg12.dcm', { ts: '1.2.840.10008.1.2.4.51', elements: imageElements({ rows: h, cols: w, ba: 16, bs: 12, photometric: 'MONOCHROME2' }), fragments: [px(10)] },
      /jpeg12\.dcm: transfer syntax 1\.2\.840\.10008\.1\.2\.4\.51 \(JPEG Extended \(Process 2 & 4\)\) with 12-bit samples is not supported/],
    ['frames.dcm', { ts: '1.2.840.10008.1.2.1', elements: imageElements({ rows: h, cols: w, frames: 0, photometric: 'MONOCHROME2' }), native: px(w * h) },
      /frames\.dcm: Number of Frames \(0028,0008\) is '0', not a positive integer/],
    ['short.dcm', { ts: '1.2.840.10008.1.2.1', elements: imageElements({ rows: h, cols: w, frames: 3, photometric: 'MONOCHROME2' }), native: px(w * h * 2), nativeVr: 'OB' },
      /short\.dcm: the pixel data holds 256 bytes, 3 frames of 16x8x1 at 8 bits need 384: Number of Frames or the image size is wrong/],
    ['nolut.dcm', { ts: '1.2.840.10008.1.2.1', elements: imageElements({ rows: h, cols: w, photometric: 'PALETTE COLOR' }), native: px(w * h) },
      /nolut\.dcm: PALETTE COLOR without a red palette descriptor \(0028,1101\)/],
    ['native-as-rle.dcm', { ts: '1.2.840.10008.1.2.5', elements: imageElements({ rows: h, cols: w, photometric: 'MONOCHROME2' }), native: px(w * h), nativeVr: 'OB' },
      /native-as-rle\.dcm: transfer syntax 1\.2\.840\.10008\.1\.2\.5 \(RLE Lossless\) needs encapsulated pixel data, the file has native pixel data/],
  ];
  for (const [name, spec, re] of cases) {
    const e = await openError(writeDicom(join(dir, name), spec));
    t.match(e.message, re, `${name}: ${e.message}`);
  }
  // A file without pixel data at all.
  const noPx = join(dir, 'sr.dcm');
  const meta = [el(0x00020010, 'UI', '1.2.840.10008.1.2.1')].map((e) => encodeElement(e, false));
  const pre = Buffer.alloc(132);
  pre.write('DICM', 128, 'latin1');
  writeFileSync(noPx, Buffer.concat([pre, ...meta, encodeElement(el(0x00080016, 'UI', '1.2.840.10008.5.1.4.1.1.88.11'), false)]));
  t.match((await openError(noPx)).message, /sr\.dcm: no pixel data \(7FE0,0010\): not an image/);
  // DICM present, no transfer syntax in the meta header.
  const noTs = join(dir, 'nots.dcm');
  writeFileSync(noTs, Buffer.concat([pre, encodeElement(el(0x00020001, 'OB', Buffer.from([0, 1])), false), encodeElement(el(0x00080016, 'UI', '1.2'), false)]));
  t.match((await openError(noTs)).message, /nots\.dcm: no transfer syntax \(0002,0010\) in the file meta information/);
  // A bare data set without preamble is still read (implicit little endian).
  const bare = join(dir, 'bare.dcm');
  const implicit = (tag: number, value: Buffer) => { const hd = Buffer.alloc(8); hd.writeUInt16LE(tag >>> 16, 0); hd.writeUInt16LE(tag & 0xffff, 2); hd.writeUInt32LE(value.length, 4); return Buffer.concat([hd, value]); };
  const us = (v: number) => { const b = Buffer.alloc(2); b.writeUInt16LE(v); return b; };
  writeFileSync(bare, Buffer.concat([implicit(0x00080060, Buffer.from('US')), implicit(0x00280002, us(1)), implicit(0x00280004, Buffer.from('MONOCHROME2 ')),
    implicit(0x00280010, us(h)), implicit(0x00280011, us(w)), implicit(0x00280100, us(8)), implicit(0x00280101, us(8)), implicit(0x00280103, us(0)),
    implicit(0x7fe00010, Buffer.alloc(w * h, 9))]));
  const bf = await DicomFile.open(bare);
  t.equal(bf.info.transferSyntaxUid, '1.2.840.10008.1.2', 'bare data set: implicit little endian');
  t.same(Array.from((await bf.decodeFrame(0)).gray.subarray(0, 4)), [9, 9, 9, 9], 'bare data set: decoded');
  t.match((await decodeError(bf, 1)).message, /bare\.dcm: frame index 1 does not exist \(the file has 1 frame\)/, 'frame index checked');
});

t.test('faults: truncated, non-DICOM and corrupted files fail with a DicomError naming file and problem; others unaffected', async (t) => {
  const m = manifest(t);
  if (!m) return;
  const dir = t.testdir({});
  const src = (name: string) => readFileSync(join(m.dir, name));
  const cut = (name: string, bytes: number, as: string) => { const p = join(dir, as); writeFileSync(p, src(name).subarray(0, bytes)); return p; };

  const native = await openError(cut('OBXXXX1A_2frame.dcm', 600000, 'cut-native.dcm'));
  t.match(native.message, /^cut-native\.dcm: truncated: the pixel data of 2 frames needs 960000 bytes, the file ends after 593982$/, native.message);
  const implicit = await openError(cut('gdcm-US-ALOKA-16.dcm', 400000, 'cut-implicit.dcm'));
  t.match(implicit.message, /^cut-implicit\.dcm: truncated: the pixel data of 1 frame needs 614400 bytes, the file ends after 141260$/, implicit.message);
  const rle = await openError(cut('US-PAL-8-10x-echo.dcm', 300000, 'cut-rle.dcm'));
  t.match(rle.message, /^cut-rle\.dcm: truncated: the encapsulated pixel data \(RLE Lossless, 10 frames\) is cut off: the file ends 297572 bytes into it, at byte 300000/, rle.message);
  const rleItem = await openError(cut('OBXXXX1A_rle_2frame.dcm', 6070, 'cut-rle-item.dcm'));
  t.match(rleItem.message, /^cut-rle-item\.dcm: truncated: the file ends inside the pixel data \(7FE0,0010\)/, rleItem.message);
  const header = await openError(cut('US1_UNCR.dcm', 500, 'cut-header.dcm'));
  t.match(header.message, /^cut-header\.dcm: truncated: the file ends at byte 500, in element \(0008,0018\), which starts at byte 466, before the pixel data/, header.message);
  const implicitHeader = await openError(cut('gdcm-US-ALOKA-16.dcm', 3000, 'cut-implicit-header.dcm'));
  t.match(implicitHeader.message, /^cut-implicit-header\.dcm: truncated: the file ends at byte 3000, in element \(0028,1221\), whose value starts at byte \d+, before the pixel data$/, implicitHeader.message);
  const meta = await openError(cut('US1_UNCR.dcm', 150, 'cut-meta.dcm'));
  t.match(meta.message, /^cut-meta\.dcm: truncated file meta information/, meta.message);
  const tiny = await openError(cut('US1_UNCR.dcm', 100, 'cut-preamble.dcm'));
  t.match(tiny.message, /^cut-preamble\.dcm: not a DICOM file \(no DICM preamble and no parsable data set\)$/);

  const text = join(dir, 'notes.txt');
  writeFileSync(text, 'these are not the pixels you are looking for\n'.repeat(10));
  t.match((await openError(text)).message, /^notes\.txt: not a DICOM file \(no DICM preamble and no parsable data set\)$/);
  t.match((await openError(join(dir, 'missing.dcm'))).message, /^missing\.dcm: cannot be read: ENOENT/);

  // Corrupted encapsulated frames: the file opens, the bad frame fails by name, the others decode.
  const dicomParser = require('dicom-parser') as typeof import('dicom-parser');
  const corrupt = (name: string, as: string, mutate: (b: Buffer, fragments: Array<{ position: number; length: number }>) => void) => {
    const b = Buffer.from(src(name));
    mutate(b, dicomParser.parseDicom(b).elements.x7fe00010.fragments!);
    writeFileSync(join(dir, as), b);
    return join(dir, as);
  };
  const rleBad = await DicomFile.open(corrupt('US-PAL-8-10x-echo.dcm', 'bad-rle.dcm', (b, fr) => b.writeUInt32LE(7, fr[3].position)));
  t.match((await decodeError(rleBad, 3)).message, /^bad-rle\.dcm: frame 4 of 10 \(index 3\) could not be decoded \(RLE Lossless\): the RLE header lists 7 segments, 1 expected$/);
  const rleOff = await DicomFile.open(corrupt('US-PAL-8-10x-echo.dcm', 'bad-rle-offset.dcm', (b, fr) => b.writeUInt32LE(999999, fr[5].position + 4)));
  t.match((await decodeError(rleOff, 5)).message, /^bad-rle-offset\.dcm: frame 6 of 10 \(index 5\) could not be decoded \(RLE Lossless\): RLE segment 1 starts at byte 999999/);
  const good = await DicomFile.open(join(m!.dir, 'US-PAL-8-10x-echo.dcm'));
  t.equal(sha([(await rleBad.decodeFrame(4)).raw]), sha([(await good.decodeFrame(4)).raw]), 'the next frame of the same file still decodes, to the undamaged pixels');
  const j2kBad = await DicomFile.open(corrupt('US1_J2KI.dcm', 'bad-j2k.dcm', (b, fr) => { b.fill(0x33, fr[0].position, fr[0].position + 64); }));
  t.match((await decodeError(j2kBad, 0)).message, /^bad-j2k\.dcm: frame 1 of 1 \(index 0\) could not be decoded \(JPEG 2000 Image Compression\): \[ERROR\]/);
  const jplBad = await DicomFile.open(corrupt('JPGLosslessP14SV1_1s_1f_8b.dcm', 'bad-jpl.dcm', (b, fr) => { b.fill(0x33, fr[0].position, fr[0].position + 64); }));
  t.match((await decodeError(jplBad, 0)).message, /^bad-jpl\.dcm: frame 1 of 1 \(index 0\) could not be decoded \(JPEG Lossless, .*\): /);

  // Nothing else affected: every reference file still decodes to its checksum.
  for (const e of m.entries) {
    const f = await DicomFile.open(join(m.dir, e.file));
    const raws: Array<Uint8Array | Uint16Array> = [];
    for (let k = 0; k < f.info.frames; k++) raws.push((await f.decodeFrame(k)).raw);
    t.equal(sha(raws), e.pixel_array_sha256, `after the faults, ${e.file} still decodes to its checksum`);
  }
});

t.test('decoding JPEG 2000 prints nothing on stdout (the codec log is captured)', async (t) => {
  const m = manifest(t);
  if (!m) return;
  const { execFile } = await import('node:child_process');
  const lib = new URL('../device/dicom.js', import.meta.url).href;
  const script = `const { DicomFile } = await import(${JSON.stringify(lib)});
    const f = await DicomFile.open(${JSON.stringify(join(m.dir, 'US1_J2KI.dcm'))});
    const d = await f.decodeFrame(0);
    process.stdout.write(JSON.stringify({ bytes: d.raw.length }));`;
  const out = await within(new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 30000 }, (err, stdout, stderr) => (err ? reject(err) : resolve({ stdout, stderr })));
  }), 35000, 'the child process');
  t.equal(out.stdout, JSON.stringify({ bytes: 640 * 480 * 3 }), 'stdout holds only what the program wrote');
  t.equal(out.stderr, '', 'and stderr nothing');
});

// ---- the source -------------------------------------------------------------------------------

/** Runs a DICOM source (see runSource in helpers). */
async function runDicom(opts: DicomSourceOptions, limitMs: number, count = Infinity): Promise<Run & { source: DicomSource }> {
  const source = new DicomSource(opts);
  return { ...(await runSource(source, limitMs, count)), source };
}

t.test('DicomSource: all frames in fast mode, with seq, source times, stats and end', async (t) => {
  const m = manifest(t);
  if (!m) return;
  const r = await runDicom({ path: join(m.dir, 'US-PAL-8-10x-echo.dcm'), realtime: false }, 20000);
  t.ok(r.ended, "'end' after the last frame");
  t.same(r.errors, []);
  t.same(r.frames.map((f) => f.seq), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'seq 0..9');
  t.same(r.frames.map((f) => f.sourceTimeMs), [0, 76, 152, 228, 304, 380, 456, 532, 608, 684], 'source time = frame time offsets');
  t.equal(r.source.id, 'dicom:US-PAL-8-10x-echo.dcm');
  t.same([r.source.width, r.source.height], [600, 430]);
  t.ok(Math.abs(r.source.fps - 1000 / 76) < 1e-9, 'fps from Frame Time');
  t.match(r.source.stats, { delivered: 10, gaps: 0, dropped: 0 }, 'stats');
  t.ok(r.frames.every((f) => f.width === 600 && f.height === 430 && f.rgb?.length === 600 * 430 * 3 && f.sourceId === r.source.id), 'colour frames of the file size');
  const direct = await (await DicomFile.open(join(m.dir, 'US-PAL-8-10x-echo.dcm'))).decodeFrame(7);
  t.same(sha([r.frames[7].data]), sha([direct.gray]), 'frame 7 pixels as DicomFile decodes them');
});

t.test('DicomSource: realtime mode paces frames by the frame time', async (t) => {
  const m = manifest(t);
  if (!m) return;
  const r = await runDicom({ path: join(m.dir, 'US-PAL-8-10x-echo.dcm') }, 20000);
  t.ok(r.ended);
  t.equal(r.frames.length, 10);
  const span = r.frames[9].timestampMs - r.frames[0].timestampMs;
  t.ok(span >= 0.8 * 9 * 76, `arrivals span ${span.toFixed(0)} ms for 9 intervals of 76 ms`);
});

t.test('DicomSource: duplicates, loop, stop, open() and bad options', async (t) => {
  const m = manifest(t);
  if (!m) return;
  const ob = await runDicom({ path: join(m.dir, 'OBXXXX1A_2frame.dcm'), realtime: false }, 20000);
  t.same(ob.frames.map((f) => !!f.duplicate), [false, false], 'OBXXXX1A: two different frames, no duplicates');
  t.match(ob.source.stats, { delivered: 2, unique: 2, duplicates: 0 });
  t.equal(ob.frames[0].sourceTimeMs, undefined, 'no frame timing in the file: no source time');

  // A file that repeats its image: the repeat is marked, unless detection is off.
  const dir = t.testdir({});
  const a = picture(64, 48, 1, 1), b = picture(64, 48, 1, 9);
  const rep = writeDicom(join(dir, 'repeat.dcm'), {
    ts: '1.2.840.10008.1.2.1', native: Buffer.concat([a, a, b].map((x) => Buffer.from(x))), nativeVr: 'OB',
    elements: [...imageElements({ rows: 48, cols: 64, frames: 3, photometric: 'MONOCHROME2' }), el(0x00181063, 'DS', '20')],
  });
  const dup = await runDicom({ path: rep, realtime: false }, 20000);
  t.same(dup.frames.map((f) => !!f.duplicate), [false, true, false], 'the repeated image is marked duplicate');
  t.match(dup.source.stats, { delivered: 3, unique: 2, duplicates: 1 });
  const noDup = await runDicom({ path: rep, realtime: false, duplicates: false }, 20000);
  t.same(noDup.frames.map((f) => !!f.duplicate), [false, false, false], 'duplicates: false turns detection off');

  // Loop: source time keeps increasing across the wrap; stop() stops for good.
  const loop = await runDicom({ path: rep, realtime: false, loop: true }, 20000, 8);
  t.same(loop.frames.map((f) => f.seq), [0, 1, 2, 3, 4, 5, 6, 7], 'seq continues across loops');
  t.same(loop.frames.map((f) => f.sourceTimeMs), [0, 20, 40, 60, 80, 100, 120, 140], 'source time continues across loops');
  t.notOk(loop.ended, 'a looping source does not end');
  const seen = loop.frames.length;
  await new Promise((r) => setTimeout(r, 100));
  t.equal(loop.frames.length, seen, 'no frames after stop()');

  // open() first: size and info before start; stop() during realtime pacing returns promptly.
  const s = await DicomSource.open({ path: join(m.dir, 'US-PAL-8-10x-echo.dcm'), fpsFallback: 10 });
  t.same([s.width, s.height, s.info?.frames], [600, 430, 10], 'opened: size and info known before start');
  const got: Frame[] = [];
  try {
    await within(new Promise<void>((resolve) => {
      s.on('frame', (f: Frame) => { got.push(f); if (got.length === 2) resolve(); });
      s.start();
      s.start();
    }), 5000, 'two paced frames');
  } finally {
    s.stop();
  }
  const n = got.length;
  await new Promise((r) => setTimeout(r, 250));
  t.equal(got.length, n, 'stopped promptly during pacing');
  t.equal(new DicomSource({ path: join(m.dir, 'US1_UNCR.dcm') }).fps, 30, 'fpsFallback before opening');
  const u = await runDicom({ path: join(m.dir, 'US1_UNCR.dcm'), fpsFallback: 50 }, 20000);
  t.ok(u.ended && u.frames.length === 1 && u.source.fps === 50, 'no timing in the file: the rate is fpsFallback');

  t.throws(() => new DicomSource({ path: '' }), /options\.path/);
  t.throws(() => new DicomSource({ path: 'x.dcm', fpsFallback: 0 }), /fpsFallback/);
});

t.test('DicomSource: a bad file is an error event, never a throw or a crash', async (t) => {
  const m = manifest(t);
  if (!m) return;
  const dir = t.testdir({});
  const text = join(dir, 'not-dicom.dcm');
  writeFileSync(text, 'nope\n'.repeat(50));
  const bad = await runDicom({ path: text, realtime: false }, 20000);
  t.equal(bad.frames.length, 0);
  t.equal(bad.errors.length, 1, "one 'error' event");
  t.ok(bad.errors[0] instanceof DicomError, 'a DicomError');
  t.match(bad.errors[0].message, /not-dicom\.dcm: not a DICOM file/);
  await t.rejects(DicomSource.open({ path: text }), DicomError, 'open() rejects with the DicomError');

  // A frame that fails mid-file: the frames before it arrive, then the error names the frame.
  const b = Buffer.from(readFileSync(join(m.dir, 'US-PAL-8-10x-echo.dcm')));
  const dicomParser = require('dicom-parser') as typeof import('dicom-parser');
  b.writeUInt32LE(9, dicomParser.parseDicom(b).elements.x7fe00010.fragments![3].position);
  writeFileSync(join(dir, 'bad-frame.dcm'), b);
  const mid = await runDicom({ path: join(dir, 'bad-frame.dcm'), realtime: false }, 20000);
  t.same(mid.frames.map((f) => f.seq), [0, 1, 2], 'frames before the bad one delivered');
  t.match(mid.errors[0]?.message, /bad-frame\.dcm: frame 4 of 10 \(index 3\) could not be decoded \(RLE Lossless\)/);
  t.notOk(mid.ended, 'no end after an error');

  // Without an 'error' listener the failure becomes a process warning, not an exception.
  const warned = within(new Promise<Error>((resolve) => process.once('warning', resolve)), 10000, 'the warning');
  const silent = new DicomSource({ path: text, realtime: false });
  silent.start();
  const w = await warned;
  silent.stop();
  t.match(w.message, /not-dicom\.dcm: not a DICOM file/, 'reported as a warning');

  // And the process carries on: a good file still plays.
  const good = await runDicom({ path: join(m.dir, 'OBXXXX1A_rle_2frame.dcm'), realtime: false }, 20000);
  t.ok(good.ended && good.frames.length === 2, 'a good file plays after the failures');
});
