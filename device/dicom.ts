// DICOM ultrasound files as a frame source. dicom-parser reads the data set; the codecs of
// @cornerstonejs/dicom-codec decode the pixels: RLE and JPEG lossless through dicom-codec itself,
// the emscripten codecs (JPEG baseline, JPEG-LS, JPEG 2000, HTJ2K) through their own packages,
// initialised here with print/printErr sinks so their log lines never reach stdout. Colour,
// palette and >8-bit conversion to the 8-bit gray plane run in the native addon. Every failure
// is a DicomError that names the file and the problem.
import { FileSequenceSource } from './file-source.js';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import type * as DicomParser from 'dicom-parser';
import { FrameStamper, type DuplicateOptions } from '../core/arrival.js';
import { regionSpacingMm, type UltrasoundRegion } from '../core/calibration.js';
import { native } from '../core/native.js';
import type { FrameSource, SourceStats } from './source.js';

const require = createRequire(import.meta.url);
const dicomParser = require('dicom-parser') as typeof DicomParser;

type DataSet = DicomParser.DataSet;
type Element = DicomParser.Element;

/** A DICOM file that cannot be read, is not supported, or a frame that cannot be decoded. */
export class DicomError extends Error {
  /** The file concerned (as given). */
  readonly path: string;
  constructor(path: string, problem: string, options?: { cause?: unknown }) {
    super(`${basename(path)}: ${problem}`, options);
    this.name = 'DicomError';
    this.path = path;
  }
}

export interface DicomInfo {
  kind: 'dicom';
  path: string;
  sopClassUid: string;
  sopClassName?: string;
  transferSyntaxUid: string;
  transferSyntaxName: string;
  width: number;
  height: number;
  frames: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  bitsStored: number;
  photometric: string;
  /** How frames turn into gray/RGB: gray (monochrome), rgb (RGB/YBR, decoded), palette (indices through LUTs). */
  colourModel: 'gray' | 'rgb' | 'palette';
  planarConfiguration?: number;
  /** Nominal time between frames (ms): Frame Time, the mean of the Frame Time Vector, or 1000 / rate. */
  frameTimeMs?: number;
  /** Offset of each frame from the first (ms). */
  frameTimesMs?: number[];
  fps?: number;
  regions: UltrasoundRegion[];
  /** mm per pixel: the first 2D region in cm, else Pixel Spacing (0028,0030). */
  pixelSpacingMm?: { x: number; y: number };
  manufacturer?: string;
  model?: string;
}

export interface DecodedFrame {
  /** The stored samples as pydicom's pixel_array gives them: palette indices, interleaved colour, 8/16-bit gray. */
  raw: Uint8Array | Uint16Array;
  /** The 8-bit gray plane (width*height). */
  gray: Uint8Array;
  /** Interleaved 8-bit RGB for the colour models (rgb, palette); for RGB files the same buffer as raw. */
  rgb?: Uint8Array;
}

// ---- transfer syntaxes ----------------------------------------------------------------------

type Route = 'native' | 'rle' | 'jpeg-lossless' | 'libjpeg' | 'charls' | 'openjpeg' | 'openjph';

interface Syntax { name: string; route?: Route; bigEndian?: boolean }

const SYNTAXES: Record<string, Syntax> = {
  '1.2.840.10008.1.2': { name: 'Implicit VR Little Endian', route: 'native' },
  '1.2.840.10008.1.2.1': { name: 'Explicit VR Little Endian', route: 'native' },
  '1.2.840.10008.1.2.1.99': { name: 'Deflated Explicit VR Little Endian', route: 'native' },
  '1.2.840.10008.1.2.2': { name: 'Explicit VR Big Endian', route: 'native', bigEndian: true },
  '1.2.840.10008.1.2.5': { name: 'RLE Lossless', route: 'rle' },
  '1.2.840.10008.1.2.4.50': { name: 'JPEG Baseline (Process 1)', route: 'libjpeg' },
  '1.2.840.10008.1.2.4.51': { name: 'JPEG Extended (Process 2 & 4)', route: 'libjpeg' },
  '1.2.840.10008.1.2.4.57': { name: 'JPEG Lossless, Non-Hierarchical (Process 14)', route: 'jpeg-lossless' },
  '1.2.840.10008.1.2.4.70': { name: 'JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])', route: 'jpeg-lossless' },
  '1.2.840.10008.1.2.4.80': { name: 'JPEG-LS Lossless', route: 'charls' },
  '1.2.840.10008.1.2.4.81': { name: 'JPEG-LS Near-Lossless', route: 'charls' },
  '1.2.840.10008.1.2.4.90': { name: 'JPEG 2000 Image Compression (Lossless Only)', route: 'openjpeg' },
  '1.2.840.10008.1.2.4.91': { name: 'JPEG 2000 Image Compression', route: 'openjpeg' },
  '1.2.840.10008.1.2.4.201': { name: 'High-Throughput JPEG 2000 (Lossless Only)', route: 'openjph' },
  '1.2.840.10008.1.2.4.202': { name: 'High-Throughput JPEG 2000 with RPCL Options (Lossless Only)', route: 'openjph' },
  '1.2.840.10008.1.2.4.203': { name: 'High-Throughput JPEG 2000', route: 'openjph' },
  // Known, not supported: video and other codecs the libraries do not cover.
  '1.2.840.10008.1.2.1.98': { name: 'Encapsulated Uncompressed Explicit VR Little Endian' },
  '1.2.840.10008.1.2.4.92': { name: 'JPEG 2000 Part 2 Multi-component (Lossless Only)' },
  '1.2.840.10008.1.2.4.93': { name: 'JPEG 2000 Part 2 Multi-component' },
  '1.2.840.10008.1.2.4.94': { name: 'JPIP Referenced' },
  '1.2.840.10008.1.2.4.95': { name: 'JPIP Referenced Deflate' },
  '1.2.840.10008.1.2.4.100': { name: 'MPEG2 Main Profile / Main Level' },
  '1.2.840.10008.1.2.4.101': { name: 'MPEG2 Main Profile / High Level' },
  '1.2.840.10008.1.2.4.102': { name: 'MPEG-4 AVC/H.264 High Profile / Level 4.1' },
  '1.2.840.10008.1.2.4.103': { name: 'MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1' },
  '1.2.840.10008.1.2.4.104': { name: 'MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video' },
  '1.2.840.10008.1.2.4.105': { name: 'MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video' },
  '1.2.840.10008.1.2.4.106': { name: 'MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2' },
  '1.2.840.10008.1.2.4.107': { name: 'HEVC/H.265 Main Profile / Level 5.1' },
  '1.2.840.10008.1.2.4.108': { name: 'HEVC/H.265 Main 10 Profile / Level 5.1' },
  '1.2.840.10008.1.2.4.110': { name: 'JPEG XL Lossless' },
  '1.2.840.10008.1.2.4.111': { name: 'JPEG XL JPEG Recompression' },
  '1.2.840.10008.1.2.4.112': { name: 'JPEG XL' },
};

const SOP_CLASSES: Record<string, string> = {
  '1.2.840.10008.5.1.4.1.1.6.1': 'Ultrasound Image Storage',
  '1.2.840.10008.5.1.4.1.1.3.1': 'Ultrasound Multi-frame Image Storage',
  '1.2.840.10008.5.1.4.1.1.6': 'Ultrasound Image Storage (Retired)',
  '1.2.840.10008.5.1.4.1.1.3': 'Ultrasound Multi-frame Image Storage (Retired)',
  '1.2.840.10008.5.1.4.1.1.6.2': 'Enhanced US Volume Storage',
  '1.2.840.10008.5.1.4.1.1.7': 'Secondary Capture Image Storage',
  '1.2.840.10008.5.1.4.1.1.7.2': 'Multi-frame Grayscale Byte Secondary Capture Image Storage',
  '1.2.840.10008.5.1.4.1.1.7.3': 'Multi-frame Grayscale Word Secondary Capture Image Storage',
  '1.2.840.10008.5.1.4.1.1.7.4': 'Multi-frame True Color Secondary Capture Image Storage',
};

// ---- codecs -----------------------------------------------------------------------------------

interface DicomCodec {
  decode(frame: Uint8Array, info: { rows: number; columns: number; bitsAllocated: number; samplesPerPixel: number; signed: boolean; planarConfiguration?: number },
    transferSyntaxUid: string): Promise<{ imageFrame: ArrayBufferView }>;
}

let dicomCodec: DicomCodec | undefined;
const getDicomCodec = () => (dicomCodec ??= require('@cornerstonejs/dicom-codec') as DicomCodec);

interface WasmDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getDecodedBuffer(): Uint8Array;
  getFrameInfo(): { width: number; height: number; bitsPerSample: number; componentCount: number };
  delete(): void;
}

interface WasmModule { getExceptionMessage?: (e: number) => string; [decoder: string]: unknown }

const WASM: Record<'libjpeg' | 'charls' | 'openjpeg' | 'openjph', { pkg: string; decoder: string; label: string }> = {
  libjpeg: { pkg: '@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs', decoder: 'JPEGDecoder', label: 'JPEG (libjpeg-turbo)' },
  charls: { pkg: '@cornerstonejs/codec-charls/decodewasmjs', decoder: 'JpegLSDecoder', label: 'JPEG-LS (CharLS)' },
  openjpeg: { pkg: '@cornerstonejs/codec-openjpeg/decodewasmjs', decoder: 'J2KDecoder', label: 'JPEG 2000 (OpenJPEG)' },
  openjph: { pkg: '@cornerstonejs/codec-openjph/wasmjs', decoder: 'HTJ2KDecoder', label: 'HTJ2K (OpenJPH)' },
};

/** A loaded emscripten codec and what it printed during the current decode (never to stdout). */
interface LoadedWasm { module: WasmModule; log: string[] }
const wasmModules = new Map<keyof typeof WASM, Promise<LoadedWasm>>();

function loadWasm(kind: keyof typeof WASM): Promise<LoadedWasm> {
  let p = wasmModules.get(kind);
  if (!p) {
    const log: string[] = [];
    const sink = (s: unknown) => { if (log.length < 64) log.push(String(s)); };
    const factory = require(WASM[kind].pkg) as (opts: object) => Promise<WasmModule>;
    p = factory({ print: sink, printErr: sink }).then((module) => ({ module, log }));
    p.catch(() => wasmModules.delete(kind));
    wasmModules.set(kind, p);
  }
  return p;
}

/** The message inside whatever a library threw (Error, string, emscripten exception number, object). */
function libMessage(e: unknown, mod?: WasmModule): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'string') return e;
  if (typeof e === 'number' && mod?.getExceptionMessage) {
    try { return String(mod.getExceptionMessage(e)); } catch { /* fall through */ }
  }
  if (e && typeof e === 'object' && 'exception' in e) return libMessage((e as { exception: unknown }).exception, mod);
  try { return JSON.stringify(e) ?? String(e); } catch { return String(e); }
}

// ---- small readers ----------------------------------------------------------------------------

const tagName = (tag: string) => `(${tag.slice(1, 5).toUpperCase()},${tag.slice(5, 9).toUpperCase()})`;

function u16Words(bytes: Uint8Array, bigEndian: boolean): Uint16Array {
  const copy = new Uint8Array(bytes.length - (bytes.length % 2));
  copy.set(bytes.subarray(0, copy.length));
  if (bigEndian) Buffer.from(copy.buffer, copy.byteOffset, copy.length).swap16();
  return new Uint16Array(copy.buffer, 0, copy.length / 2);
}

function elementBytes(ds: DataSet, el: Element): Uint8Array {
  return ds.byteArray.subarray(el.dataOffset, el.dataOffset + el.length);
}

// ---- palettes ---------------------------------------------------------------------------------

interface PaletteLut { red: Uint16Array; green: Uint16Array; blue: Uint16Array; firstMapped: number; bits: number }

/**
 * Expands Segmented Palette Color LUT Data (PS3.3 C.7.9.2): discrete (0), linear (1) and
 * indirect (2) segments. A linear segment runs from the previous entry (exclusive) to its end
 * value (inclusive) over its length; an indirect segment replays `length` segments found at a
 * byte offset from the start of the data. `data` holds 16-bit words, or bytes for 8-bit tables.
 */
export function expandSegmentedLut(data: ArrayLike<number>, entries: number, wordBytes: 1 | 2): Uint16Array {
  const out = new Uint16Array(entries);
  let n = 0;
  const push = (v: number) => {
    if (n >= entries) throw new Error(`it expands to more than the ${entries} entries of its descriptor`);
    out[n++] = v;
  };
  const run = (pos: number, maxSegments: number, depth: number): void => {
    let segments = 0;
    // pos + 1 < length: a trailing pad word is not a segment (every segment is longer than 2).
    while (pos + 1 < data.length && segments < maxSegments) {
      const op = data[pos], len = data[pos + 1];
      pos += 2;
      if (op === 0) {
        if (pos + len > data.length) throw new Error(`a discrete segment of ${len} entries runs past the end of the data`);
        for (let k = 0; k < len; k++) push(data[pos + k]);
        pos += len;
      } else if (op === 1) {
        if (n === 0) throw new Error('a linear segment cannot be the first segment');
        if (pos >= data.length) throw new Error('a linear segment has no end value');
        const y0 = out[n - 1], y1 = data[pos++];
        for (let j = 1; j <= len; j++) push(Math.round(y0 + ((y1 - y0) * j) / len));
      } else if (op === 2) {
        if (n === 0) throw new Error('an indirect segment cannot be the first segment');
        if (depth >= 8) throw new Error('indirect segments nest more than 8 deep');
        const need = wordBytes === 2 ? 2 : 4;
        if (pos + need > data.length) throw new Error('an indirect segment has no offset');
        const byteOffset = wordBytes === 2
          ? data[pos] + data[pos + 1] * 0x10000
          : data[pos] + data[pos + 1] * 0x100 + data[pos + 2] * 0x10000 + data[pos + 3] * 0x1000000;
        pos += need;
        const target = byteOffset / wordBytes;
        if (!Number.isInteger(target) || target + 1 >= data.length) throw new Error(`an indirect segment points outside the data (byte ${byteOffset})`);
        run(target, len, depth + 1);
      } else {
        throw new Error(`unknown segment type ${op}`);
      }
      segments++;
    }
  };
  run(0, Infinity, 0);
  if (n !== entries) throw new Error(`it expands to ${n} entries, its descriptor says ${entries}`);
  return out;
}

function readPalette(ds: DataSet, bigEndian: boolean, fail: (p: string) => never): PaletteLut {
  const names = ['red', 'green', 'blue'] as const;
  const tables: Uint16Array[] = [];
  let firstMapped = 0, bits = 16, entries = 0;
  for (let c = 0; c < 3; c++) {
    const dTag = `x0028110${c + 1}`, lTag = `x0028120${c + 1}`, sTag = `x0028122${c + 1}`;
    const name = names[c];
    if (!ds.elements[dTag] || ds.elements[dTag].length < 6) fail(`PALETTE COLOR without a ${name} palette descriptor ${tagName(dTag)}`);
    const n = ds.uint16(dTag, 0) || 65536, first = ds.uint16(dTag, 1) ?? 0, b = ds.uint16(dTag, 2) ?? 0;
    if (b !== 8 && b !== 16) fail(`the ${name} palette descriptor ${tagName(dTag)} gives ${b} bits per entry (8 or 16 expected)`);
    let table: Uint16Array, tableBits = b;
    const plain = ds.elements[lTag], segmented = ds.elements[sTag];
    if (plain && plain.length > 0) {
      const bytes = elementBytes(ds, plain);
      if (bytes.length >= 2 * n) {
        // One entry per 16-bit word; 8-bit entries stored this way sometimes use the high byte.
        table = u16Words(bytes, bigEndian).slice(0, n);
        if (b === 8 && table.some((v) => v > 255)) tableBits = 16;
      } else if (b === 8 && bytes.length >= n) {
        const packed = bigEndian ? new Uint8Array(u16Words(bytes, true).buffer) : bytes;
        table = Uint16Array.from(packed.subarray(0, n));
      } else {
        fail(`the ${name} palette ${tagName(lTag)} holds ${bytes.length} bytes, ${n} ${b}-bit entries need ${b === 8 ? n : 2 * n}`);
      }
    } else if (segmented && segmented.length > 0) {
      const bytes = elementBytes(ds, segmented);
      const words = b === 8 ? bytes : u16Words(bytes, bigEndian);
      try {
        table = expandSegmentedLut(words, n, b === 8 ? 1 : 2);
      } catch (e) {
        fail(`the segmented ${name} palette ${tagName(sTag)} cannot be expanded: ${libMessage(e)}`);
      }
    } else {
      fail(`PALETTE COLOR without ${name} palette data ${tagName(lTag)} or ${tagName(sTag)}`);
    }
    if (c === 0) { firstMapped = first; bits = tableBits; entries = n; }
    else if (n !== entries || first !== firstMapped) fail(`the red, green and blue palette descriptors differ (${entries}/${firstMapped} vs ${n}/${first} for ${name})`);
    else bits = Math.max(bits, tableBits);
    tables.push(table);
  }
  return { red: tables[0], green: tables[1], blue: tables[2], firstMapped, bits };
}

// ---- calibration and timing -------------------------------------------------------------------

function readRegions(ds: DataSet): UltrasoundRegion[] {
  const seq = ds.elements.x00186011;
  const out: UltrasoundRegion[] = [];
  for (const item of seq?.items ?? []) {
    const d = item.dataSet;
    if (!d || !d.elements.x00186018 || !d.elements.x0018601c) continue;
    const r: UltrasoundRegion = {
      x0: d.uint32('x00186018') ?? 0, y0: d.uint32('x0018601a') ?? 0, x1: d.uint32('x0018601c') ?? 0, y1: d.uint32('x0018601e') ?? 0,
      spatialFormat: d.uint16('x00186012') ?? 0, dataType: d.uint16('x00186014') ?? 0,
      unitsX: d.uint16('x00186024') ?? 0, unitsY: d.uint16('x00186026') ?? 0,
      deltaX: d.double('x0018602c') ?? 0, deltaY: d.double('x0018602e') ?? 0,
    };
    const mm = regionSpacingMm(r);
    if (mm.x !== undefined) r.mmPerPixelX = mm.x;
    if (mm.y !== undefined) r.mmPerPixelY = mm.y;
    out.push(r);
  }
  return out;
}

function pixelSpacing(ds: DataSet, regions: UltrasoundRegion[]): { x: number; y: number } | undefined {
  const tissue = regions.find((r) => r.spatialFormat === 1 && r.mmPerPixelX !== undefined && r.mmPerPixelY !== undefined);
  if (tissue) return { x: tissue.mmPerPixelX!, y: tissue.mmPerPixelY! };
  // Pixel Spacing is row spacing (y) \ column spacing (x), in mm.
  const y = ds.floatString('x00280030', 0), x = ds.floatString('x00280030', 1);
  if (x !== undefined && y !== undefined && x > 0 && y > 0) return { x, y };
  return undefined;
}

function frameTiming(ds: DataSet, frames: number): Pick<DicomInfo, 'frameTimeMs' | 'frameTimesMs' | 'fps'> {
  const usable = (ms: number | undefined) => ms !== undefined && Number.isFinite(ms) && ms >= 1 && ms <= 60000;
  const even = (ms: number) => ({ frameTimeMs: ms, frameTimesMs: Array.from({ length: frames }, (_, i) => i * ms), fps: 1000 / ms });
  const ft = ds.floatString('x00181063');
  if (usable(ft)) return even(ft!);
  if (ds.elements.x00181065 && frames > 1) {
    // Frame Time Vector: increments between frames, the first is 0.
    const n = ds.numStringValues('x00181065') ?? 0;
    if (n === frames) {
      const times: number[] = [];
      let t = 0, ok = true;
      for (let i = 0; i < n; i++) {
        const d = i === 0 ? 0 : ds.floatString('x00181065', i);
        if (d === undefined || !Number.isFinite(d) || d < 0) { ok = false; break; }
        t += d;
        times.push(t);
      }
      const mean = t / (frames - 1);
      if (ok && usable(mean)) return { frameTimeMs: mean, frameTimesMs: times, fps: 1000 / mean };
    }
  }
  for (const rateTag of ['x00180040', 'x00082144']) {
    const rate = ds.intString(rateTag);
    if (rate !== undefined && rate > 0 && usable(1000 / rate)) return even(1000 / rate);
  }
  return {};
}

// ---- parsing ----------------------------------------------------------------------------------

const IMPLICIT_LE = '1.2.840.10008.1.2', EXPLICIT_LE = '1.2.840.10008.1.2.1';

/** Why dicom-parser gave up: which element it was reading, or the pixel data that is cut short. */
function describeParseFailure(e: unknown, fileBytes: number, tsUid: string | undefined): string {
  const reason = libMessage(e);
  const truncated = /past end of buffer|buffer overrun/i.test(reason);
  const partial = e && typeof e === 'object' && 'dataSet' in e ? (e as { dataSet: DataSet }).dataSet : undefined;
  if (!partial) return `${truncated ? 'truncated' : 'corrupt'} file meta information (${reason})`;
  const px = partial.elements.x7fe00010;
  if (px) return pixelDataCut(partial, px, fileBytes, tsUid, reason);
  // The element being read when parsing stopped: the one right after the last complete element.
  let stop = 0;
  for (const el of Object.values(partial.elements)) if (el.dataOffset + el.length <= partial.byteArray.length) stop = Math.max(stop, el.dataOffset + el.length);
  const b = partial.byteArray;
  if (stop > 0 && stop + 4 <= b.length) {
    const read16 = (o: number) => partial.byteArrayParser.readUint16(b, o);
    const tag = `x${read16(stop).toString(16).padStart(4, '0')}${read16(stop + 2).toString(16).padStart(4, '0')}`;
    if (tag === 'x7fe00010') return `truncated: the file ends inside the pixel data ${tagName(tag)}, which starts at byte ${stop} (${reason})`;
    return `${truncated ? `truncated: the file ends at byte ${fileBytes},` : 'corrupt data set'} in element ${tagName(tag)}, which starts at byte ${stop}, before the pixel data (${reason})`;
  }
  return `${truncated ? 'truncated' : 'corrupt'} data set after byte ${stop} (${reason})`;
}

function pixelDataCut(ds: DataSet, px: Element, fileBytes: number, tsUid: string | undefined, reason?: string): string {
  const available = Math.max(0, ds.byteArray.length - px.dataOffset);
  const rows = ds.uint16('x00280010'), cols = ds.uint16('x00280011'), spp = ds.uint16('x00280002') ?? 1, ba = ds.uint16('x00280100');
  const frames = ds.intString('x00280008') ?? 1;
  if (px.encapsulatedPixelData || px.hadUndefinedLength) {
    const ts = tsUid ?? 'unknown transfer syntax';
    return `truncated: the encapsulated pixel data (${SYNTAXES[ts]?.name ?? ts}, ${frames} frame${frames === 1 ? '' : 's'}) is cut off: ` +
      `the file ends ${available} bytes into it, at byte ${fileBytes}${reason ? ` (${reason})` : ''}`;
  }
  const needs = rows && cols && ba ? frames * rows * cols * spp * (ba / 8) : px.length;
  return `truncated: the pixel data of ${frames} frame${frames === 1 ? '' : 's'} needs ${needs} bytes, the file ends after ${available}`;
}

const DEFLATED_LE = '1.2.840.10008.1.2.1.99';

/** Parses a Part 10 file (or a bare little endian data set) and names its transfer syntax. */
function parse(path: string, buf: Buffer): { ds: DataSet; tsUid: string } {
  const isPart10 = buf.length >= 132 && buf.toString('latin1', 128, 132) === 'DICM';
  if (isPart10) {
    let meta: DataSet & { position?: number };
    try {
      meta = dicomParser.readPart10Header(buf);
    } catch (e) {
      throw new DicomError(path, describeParseFailure(e, buf.length, undefined), { cause: e });
    }
    const tsUid = meta.string('x00020010');
    if (!tsUid) throw new DicomError(path, 'no transfer syntax (0002,0010) in the file meta information');
    let body = buf, options = {};
    if (tsUid === DEFLATED_LE) {
      // dicom-parser 1.8 inflates the data set but then reads the result from byte 0 (the
      // preamble): inflate here and parse the data set on its own as explicit little endian.
      try {
        body = inflateRawSync(buf.subarray(meta.position ?? 132));
      } catch (e) {
        throw new DicomError(path, `the deflated data set cannot be inflated: ${libMessage(e)}`, { cause: e });
      }
      options = { TransferSyntaxUID: EXPLICIT_LE };
    }
    try {
      return { ds: dicomParser.parseDicom(body, options), tsUid };
    } catch (e) {
      throw new DicomError(path, describeParseFailure(e, body.length, tsUid), { cause: e });
    }
  }
  // No preamble: a bare data set (old ACR-NEMA style) in implicit or explicit little endian.
  for (const tsUid of [IMPLICIT_LE, EXPLICIT_LE]) {
    try {
      const ds = dicomParser.parseDicom(buf, { TransferSyntaxUID: tsUid });
      if (ds.elements.x7fe00010 && ds.elements.x00280010 && ds.elements.x00280011) return { ds, tsUid };
    } catch { /* try the next encoding */ }
  }
  throw new DicomError(path, 'not a DICOM file (no DICM preamble and no parsable data set)');
}

// ---- the file ---------------------------------------------------------------------------------

/** How decoded samples become gray/RGB. */
type SampleLayout = 'mono' | 'palette' | 'interleaved' | 'planar' | 'ybr_full' | 'ybr_full_planar';

interface FrameSpan { start: number; count: number }

export class DicomFile {
  readonly info: DicomInfo;
  private readonly ds: DataSet;
  private readonly px: Element;
  private readonly syntax: Syntax & { route: Route };
  private readonly layout: SampleLayout;
  private readonly palette?: PaletteLut;
  private readonly frameBytes: number;
  private readonly spans?: FrameSpan[];

  private constructor(info: DicomInfo, ds: DataSet, px: Element, syntax: Syntax & { route: Route }, layout: SampleLayout,
    frameBytes: number, palette?: PaletteLut, spans?: FrameSpan[]) {
    this.info = info;
    this.ds = ds;
    this.px = px;
    this.syntax = syntax;
    this.layout = layout;
    this.frameBytes = frameBytes;
    this.palette = palette;
    this.spans = spans;
  }

  /** Reads and checks the whole file: header, pixel description, palette, frame boundaries. */
  static async open(path: string): Promise<DicomFile> {
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch (e) {
      throw new DicomError(path, `cannot be read: ${libMessage(e)}`, { cause: e });
    }
    const fail = (problem: string): never => { throw new DicomError(path, problem); };
    const { ds, tsUid } = parse(path, buf);
    // Implicit VR parsing does not notice an element running past the end of the file.
    const cut = Object.values(ds.elements).find((el) => el.tag !== 'x7fe00010' && el.dataOffset + el.length > ds.byteArray.length);
    if (cut) fail(`truncated: the file ends at byte ${ds.byteArray.length}, in element ${tagName(cut.tag)}, whose value starts at byte ${cut.dataOffset}${ds.elements.x7fe00010 ? '' : ', before the pixel data'}`);
    const known = SYNTAXES[tsUid];
    if (!known?.route) fail(`transfer syntax ${tsUid} (${known?.name ?? 'unknown'}) is not supported`);
    const syntax = known as Syntax & { route: Route };
    const px = ds.elements.x7fe00010;
    if (!px) fail('no pixel data (7FE0,0010): not an image');

    const rows = ds.uint16('x00280010') ?? 0, cols = ds.uint16('x00280011') ?? 0;
    if (!(rows > 0 && cols > 0)) fail(`Rows (0028,0010) and Columns (0028,0011) must be positive (got ${rows}x${cols})`);
    const spp = ds.uint16('x00280002') ?? 1;
    const ba = ds.uint16('x00280100') ?? 0, bs = ds.uint16('x00280101') ?? ba;
    const signed = (ds.uint16('x00280103') ?? 0) === 1;
    const photometric = (ds.string('x00280004') ?? '').toUpperCase();
    const planar = spp > 1 ? ds.uint16('x00280006') ?? 0 : undefined;
    const framesText = ds.string('x00280008');
    const frames = framesText === undefined || framesText === '' ? 1 : Number(framesText);
    if (!(Number.isInteger(frames) && frames >= 1)) fail(`Number of Frames (0028,0008) is '${framesText}', not a positive integer`);
    if (ba !== 8 && ba !== 16) fail(`${ba} bits allocated per sample: only 8 and 16 are supported`);
    if (!(bs >= 1 && bs <= ba)) fail(`${bs} bits stored in ${ba} bits allocated`);
    if (signed) fail('signed pixel data (Pixel Representation 1) is not supported: ultrasound images are unsigned');
    if (syntax.route === 'libjpeg' && bs > 8) fail(`transfer syntax ${tsUid} (${syntax.name}) with ${bs}-bit samples is not supported: the JPEG decoder is 8-bit only`);

    const encapsulated = syntax.route !== 'native';
    let layout: SampleLayout;
    let colourModel: DicomInfo['colourModel'];
    const refuse = (why: string): never => fail(`photometric interpretation ${photometric || '(missing)'} ${why}`);
    if (photometric === 'MONOCHROME1' || photometric === 'MONOCHROME2') {
      if (spp !== 1) refuse(`with ${spp} samples per pixel (1 expected)`);
      layout = 'mono'; colourModel = 'gray';
    } else if (photometric === 'PALETTE COLOR') {
      if (spp !== 1) refuse(`with ${spp} samples per pixel (1 expected)`);
      layout = 'palette'; colourModel = 'palette';
    } else {
      if (spp !== 3) refuse(`with ${spp} samples per pixel is not supported (3 expected for colour)`);
      if (ba !== 8) refuse(`with ${ba}-bit samples is not supported (8-bit colour only)`);
      colourModel = 'rgb';
      const r = syntax.route;
      // The JPEG family decoders return RGB; RLE and native keep the stored order (RLE interleaves).
      if (photometric === 'RGB') layout = !encapsulated && planar === 1 ? 'planar' : 'interleaved';
      else if (photometric === 'YBR_FULL') layout = r === 'libjpeg' ? 'interleaved' : !encapsulated && planar === 1 ? 'ybr_full_planar' : 'ybr_full';
      else if (photometric === 'YBR_FULL_422' && r === 'libjpeg') layout = 'interleaved';
      else if ((photometric === 'YBR_ICT' || photometric === 'YBR_RCT') && (r === 'openjpeg' || r === 'openjph')) layout = 'interleaved';
      else if (photometric === 'YBR_FULL_422' && !encapsulated) refuse('(chroma-subsampled) is not supported uncompressed');
      else refuse(`is not supported with ${syntax.name}`);
    }
    const palette = layout! === 'palette' ? readPalette(ds, !!syntax.bigEndian, fail) : undefined;

    const frameBytes = rows * cols * spp * (ba / 8);
    let spans: FrameSpan[] | undefined;
    if (!encapsulated) {
      if (px.encapsulatedPixelData) fail(`encapsulated pixel data under the uncompressed transfer syntax ${tsUid}`);
      const needs = frames * frameBytes;
      // Declared longer than the file: cut. Declared complete but short: the header is inconsistent.
      if (px.dataOffset + Math.max(px.length, 0) > ds.byteArray.length) fail(pixelDataCut(ds, px, buf.length, tsUid));
      if (px.length < needs) fail(`the pixel data holds ${px.length} bytes, ${frames} frame${frames === 1 ? '' : 's'} of ${cols}x${rows}x${spp} at ${ba} bits need ${needs}: Number of Frames or the image size is wrong`);
    } else {
      if (!px.encapsulatedPixelData || !px.fragments) fail(`transfer syntax ${tsUid} (${syntax.name}) needs encapsulated pixel data, the file has native pixel data`);
      spans = frameSpans(ds, px, frames, syntax.route, fail);
    }

    const regions = readRegions(ds);
    const info: DicomInfo = {
      kind: 'dicom', path,
      sopClassUid: ds.string('x00080016') ?? '',
      transferSyntaxUid: tsUid, transferSyntaxName: syntax.name,
      width: cols, height: rows, frames, samplesPerPixel: spp, bitsAllocated: ba, bitsStored: bs,
      photometric, colourModel: colourModel!,
      ...frameTiming(ds, frames),
      regions,
    };
    const sopName = SOP_CLASSES[info.sopClassUid];
    if (sopName) info.sopClassName = sopName;
    if (planar !== undefined) info.planarConfiguration = planar;
    const spacing = pixelSpacing(ds, regions);
    if (spacing) info.pixelSpacingMm = spacing;
    const manufacturer = ds.string('x00080070'), model = ds.string('x00081090');
    if (manufacturer) info.manufacturer = manufacturer;
    if (model) info.model = model;
    return new DicomFile(info, ds, px, syntax, layout!, frameBytes, palette, spans);
  }

  /** Decodes frame `index` (0-based) to its stored samples, the 8-bit gray plane and RGB for colour. */
  async decodeFrame(index: number): Promise<DecodedFrame> {
    const { frames, width, height, samplesPerPixel: spp, bitsAllocated: ba } = this.info;
    if (!(Number.isInteger(index) && index >= 0 && index < frames)) throw new DicomError(this.info.path, `frame index ${index} does not exist (the file has ${frames} frame${frames === 1 ? '' : 's'})`);
    let raw: Uint8Array | Uint16Array;
    if (this.syntax.route === 'native') {
      const start = this.px.dataOffset + index * this.frameBytes;
      raw = samples(this.ds.byteArray.subarray(start, start + this.frameBytes), ba, !!this.syntax.bigEndian);
    } else {
      const fail = (reason: string, cause?: unknown): never => {
        throw new DicomError(this.info.path, `frame ${index + 1} of ${frames} (index ${index}) could not be decoded (${this.syntax.name}): ${reason}`, { cause });
      };
      let bytes: Uint8Array;
      try {
        const span = this.spans![index];
        const b = dicomParser.readEncapsulatedPixelDataFromFragments(this.ds, this.px, span.start, span.count);
        bytes = new Uint8Array(b.buffer, b.byteOffset, b.length);
      } catch (e) {
        fail(libMessage(e), e);
      }
      const decoded = await this.decodeEncapsulated(bytes!, fail);
      const expected = width * height * spp * (ba / 8);
      if (decoded.byteLength !== expected) fail(`the decoder returned ${decoded.byteLength} bytes, a ${width}x${height}x${spp} ${ba}-bit frame has ${expected}`);
      // The decoders hand back fresh buffers: use them as they are.
      raw = ba === 8 ? decoded : decoded.byteOffset % 2 === 0 ? new Uint16Array(decoded.buffer, decoded.byteOffset, decoded.byteLength / 2) : u16Words(decoded, false);
    }
    return this.convert(raw);
  }

  private async decodeEncapsulated(bytes: Uint8Array, fail: (reason: string, cause?: unknown) => never): Promise<Uint8Array> {
    const { width, height, samplesPerPixel: spp, bitsAllocated: ba } = this.info;
    const route = this.syntax.route;
    if (route === 'rle' || route === 'jpeg-lossless') {
      if (route === 'rle') checkRleHeader(bytes, spp * (ba / 8), fail);
      try {
        const out = await getDicomCodec().decode(bytes, { rows: height, columns: width, bitsAllocated: ba, samplesPerPixel: spp, signed: false },
          this.info.transferSyntaxUid);
        const f = out.imageFrame;
        return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
      } catch (e) {
        return fail(libMessage(e), e);
      }
    }
    const kind = route as keyof typeof WASM;
    let loaded: LoadedWasm;
    try {
      loaded = await loadWasm(kind);
    } catch (e) {
      return fail(`the ${WASM[kind].label} decoder could not be loaded: ${libMessage(e)}`, e);
    }
    const Decoder = loaded.module[WASM[kind].decoder] as new () => WasmDecoder;
    loaded.log.length = 0;
    let decoder: WasmDecoder | undefined;
    try {
      decoder = new Decoder();
      decoder.getEncodedBuffer(bytes.length).set(bytes);
      decoder.decode();
      const fi = decoder.getFrameInfo();
      const problems = loaded.log.filter((l) => /error|warn/i.test(l)).join('; ');
      if (fi.width !== width || fi.height !== height || fi.componentCount !== spp) {
        return fail(fi.width === 0 ? problems || 'the decoder produced no image'
          : `the codestream is ${fi.width}x${fi.height} with ${fi.componentCount} components, the header says ${width}x${height} with ${spp}${problems ? ` (${problems})` : ''}`);
      }
      if ((fi.bitsPerSample > 8 ? 16 : 8) !== ba) return fail(`the codestream has ${fi.bitsPerSample}-bit samples, the header says ${ba} bits allocated`);
      const out = decoder.getDecodedBuffer();
      // Copy out of the codec's memory (some return Uint8ClampedArray views).
      return new Uint8Array(out.buffer, out.byteOffset, out.byteLength).slice();
    } catch (e) {
      if (e instanceof DicomError) throw e;
      // An emscripten abort leaves the module unusable: load a fresh one next time.
      wasmModules.delete(kind);
      return fail(libMessage(e, loaded.module) + (loaded.log.length ? ` (${loaded.log.join('; ')})` : ''), e);
    } finally {
      try { decoder?.delete(); } catch { /* already gone with an aborted module */ }
      loaded.log.length = 0;
    }
  }

  private convert(raw: Uint8Array | Uint16Array): DecodedFrame {
    const { width: w, height: h, bitsStored, photometric } = this.info;
    const gray = new Uint8Array(w * h);
    switch (this.layout) {
      case 'mono':
        native.monochromeTo8(raw, w, h, { bitsStored, invert: photometric === 'MONOCHROME1' }, gray);
        return { raw, gray };
      case 'palette': {
        const rgb = new Uint8Array(w * h * 3);
        native.applyPalette(raw, w, h, this.palette!, gray, rgb);
        return { raw, gray, rgb };
      }
      case 'interleaved':
        native.rgbToGray(raw as Uint8Array, w, h, 'interleaved', gray);
        return { raw, gray, rgb: raw as Uint8Array };
      case 'planar': {
        // pydicom's pixel_array is (rows, cols, 3): the interleaved RGB is the raw array.
        const rgb = new Uint8Array(w * h * 3);
        native.rgbToGray(raw as Uint8Array, w, h, 'planar', gray, rgb);
        return { raw: rgb, gray, rgb };
      }
      case 'ybr_full':
      case 'ybr_full_planar': {
        let ybr = raw as Uint8Array;
        if (this.layout === 'ybr_full_planar') {
          ybr = new Uint8Array(w * h * 3);
          native.rgbToGray(raw as Uint8Array, w, h, 'planar', gray, ybr);
        }
        const rgb = new Uint8Array(w * h * 3);
        native.rgbToGray(ybr, w, h, 'ybr_full', gray, rgb);
        return { raw: ybr, gray, rgb };
      }
    }
  }
}

/** Fresh, aligned samples from frame bytes (little endian unless `bigEndian`). */
function samples(bytes: Uint8Array, bitsAllocated: number, bigEndian: boolean): Uint8Array | Uint16Array {
  if (bitsAllocated === 8) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength).slice();
  return u16Words(bytes, bigEndian);
}

/**
 * Which fragments make each frame. With a Basic Offset Table: its offsets. Without: one frame
 * takes all fragments, or one fragment per frame, or (JPEG family) fragments up to an
 * end-of-image marker, or (JPEG 2000) fragments that start a codestream.
 */
function frameSpans(ds: DataSet, px: Element, frames: number, route: Route, fail: (p: string) => never): FrameSpan[] {
  const frags = px.fragments!;
  const bot = px.basicOffsetTable ?? [];
  if (frags.length === 0) fail('the encapsulated pixel data has no fragments');
  let starts: number[];
  if (bot.length > 0) {
    if (bot.length !== frames) fail(`the basic offset table lists ${bot.length} frames, Number of Frames (0028,0008) says ${frames}`);
    starts = bot.map((off, f) => {
      const i = frags.findIndex((fr) => fr.offset === off);
      if (i < 0) fail(`the basic offset table entry of frame ${f + 1} (${off}) does not start a fragment`);
      return i;
    });
    if (starts.some((s, f) => f > 0 && s <= starts[f - 1])) fail('the basic offset table is not increasing');
  } else if (frames === 1) {
    starts = [0];
  } else if (frags.length === frames) {
    starts = frags.map((_, i) => i);
  } else if (frags.length < frames) {
    return fail(`${frags.length} fragments cannot hold ${frames} frames`);
  } else {
    const b = ds.byteArray;
    const opens = (i: number) => {
      const p = frags[i].position;
      if (route === 'libjpeg' || route === 'jpeg-lossless' || route === 'charls') return b[p] === 0xff && b[p + 1] === 0xd8;
      if (route === 'openjpeg' || route === 'openjph') return (b[p] === 0xff && b[p + 1] === 0x4f && b[p + 2] === 0xff && b[p + 3] === 0x51) || (b[p + 4] === 0x6a && b[p + 5] === 0x50);
      return false;
    };
    starts = frags.map((_, i) => i).filter(opens);
    if (starts.length !== frames || starts[0] !== 0)
      fail(`no basic offset table, and the ${frags.length} fragments cannot be split into ${frames} frames (${starts.length} start a frame)`);
  }
  return starts.map((s, f) => ({ start: s, count: (f + 1 < starts.length ? starts[f + 1] : frags.length) - s }));
}

/**
 * The RLE header (PS3.5 G.3.1): the decoder neither checks it nor reports short segments, so a
 * corrupt or cut frame would come out as silent zeros. Check the segment count and offsets.
 */
function checkRleHeader(bytes: Uint8Array, expectedSegments: number, fail: (reason: string) => never): void {
  if (bytes.length < 64) fail(`the RLE frame has ${bytes.length} bytes, less than its 64-byte header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, 64);
  const n = dv.getUint32(0, true);
  if (n !== expectedSegments) fail(`the RLE header lists ${n} segments, ${expectedSegments} expected`);
  let prev = 63;
  for (let s = 0; s < n; s++) {
    const off = dv.getUint32(4 + 4 * s, true);
    if (off <= prev || off >= bytes.length) fail(`RLE segment ${s + 1} starts at byte ${off}, outside the ${bytes.length}-byte frame or out of order`);
    prev = off;
  }
}

// ---- the source -------------------------------------------------------------------------------

export interface DicomSourceOptions {
  path: string;
  /** Pace frames by the file's frame times (or fpsFallback); false delivers as fast as they decode. Default true. */
  realtime?: boolean;
  /** Frame rate when the file gives no timing (default 30). */
  fpsFallback?: number;
  /** Start again from the first frame after the last (source time keeps increasing). Default false. */
  loop?: boolean;
  /** Repeated-frame detection (see FrameStamper); false turns it off. */
  duplicates?: DuplicateOptions | false;
}

/**
 * A DICOM file replayed as a frame source. Width, height and fps are known once the file is open
 * (DicomSource.open, or after start() has opened it); before that they are 0 and fpsFallback.
 * Frames are delivered in order, none skipped: a frame that decodes late is late, not dropped.
 */
export class DicomSource extends FileSequenceSource implements FrameSource {
  readonly id: string;
  readonly path: string;
  private readonly realtime: boolean;
  private readonly fpsFallback: number;
  private readonly loop: boolean;
  private readonly duplicates: DuplicateOptions | false | undefined;
  private file: DicomFile | undefined;
  private stamper: FrameStamper | undefined;

  constructor(opts: DicomSourceOptions) {
    super();
    if (!opts || typeof opts.path !== 'string' || opts.path === '') throw new RangeError('dicom: options.path must be a file path');
    const fpsFallback = opts.fpsFallback ?? 30;
    if (!(fpsFallback > 0 && fpsFallback <= 240)) throw new RangeError(`dicom: fpsFallback must be in (0, 240] (got ${opts.fpsFallback})`);
    this.path = opts.path;
    this.id = `dicom:${basename(opts.path)}`;
    this.realtime = opts.realtime ?? true;
    this.fpsFallback = fpsFallback;
    this.loop = opts.loop ?? false;
    this.duplicates = opts.duplicates;
  }

  /** Opens the file first, so width, height, fps and info are known before start(). */
  static async open(opts: DicomSourceOptions): Promise<DicomSource> {
    const s = new DicomSource(opts);
    await s.ensureOpen();
    return s;
  }

  get info(): DicomInfo | undefined { return this.file?.info; }
  get width(): number { return this.file?.info.width ?? 0; }
  get height(): number { return this.file?.info.height ?? 0; }
  get fps(): number { return this.file?.info.fps ?? this.fpsFallback; }
  get stats(): SourceStats {
    return this.stamper?.stats ?? { delivered: 0, unique: 0, duplicates: 0, gaps: 0, dropped: 0 };
  }

  private async ensureOpen(): Promise<DicomFile> {
    if (!this.file) {
      const file = await DicomFile.open(this.path);
      this.file ??= file;
    }
    this.stamper ??= new FrameStamper({ sourceId: this.id, width: this.file.info.width, height: this.file.info.height, fps: this.fps, duplicates: this.duplicates });
    return this.file;
  }

  protected wrapError(e: unknown): Error {
    return new DicomError(this.path, libMessage(e), { cause: e });
  }

  protected async play(gen: number): Promise<void> {
    const file = await this.ensureOpen();
    const stamper = this.stamper!;
    const { frames, frameTimesMs } = file.info;
    const period = 1000 / this.fps;
    const timeOf = (i: number) => frameTimesMs ? frameTimesMs[i] : i * period;
    const span = timeOf(frames - 1) + period;
    const t0 = performance.now();
    let index = 0, loopOffset = 0;
    stamper.resetSignal();
    while (this.current(gen)) {
      if (index >= frames) {
        if (!this.loop) {
          this.finish();
          return;
        }
        index = 0;
        loopOffset += span;
      }
      const due = loopOffset + timeOf(index);
      await this.pace(this.realtime, t0 + due);
      if (!this.current(gen)) return;
      const { gray, rgb } = await file.decodeFrame(index);
      if (!this.current(gen)) return;
      const frame = stamper.stamp(gray, { sourceTimeMs: frameTimesMs ? due : undefined, rgb });
      this.emit('frame', frame);
      index++;
    }
  }
}
