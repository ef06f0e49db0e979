// Reading 8-bit gray images for commands and research tools: binary PGM (P5, maxval <= 255) by
// the decoder below, everything else (PNG, JPEG, ...) through sharp, which has no PGM reader.
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import sharp from 'sharp';

export interface GrayImage { data: Uint8Array; width: number; height: number }

const NETPBM: Record<string, string> = {
  P1: 'ASCII PBM', P2: 'ASCII PGM', P3: 'ASCII PPM', P4: 'binary PBM', P5: 'binary PGM', P6: 'binary PPM', P7: 'PAM',
};

const isSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0b || c === 0x0c || c === 0x0d;

function isNetpbm(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x50 && b[1] >= 0x31 && b[1] <= 0x37;
}

/**
 * Decodes a binary 8-bit PGM (P5): header fields separated by whitespace, `#` comments up to the
 * end of a line, one whitespace byte after maxval, then width*height bytes. Pixel values are
 * kept as stored (maxval does not rescale them). Throws an Error naming the problem.
 */
export function decodePgm(b: Uint8Array): GrayImage {
  if (!isNetpbm(b)) {
    const start = JSON.stringify(String.fromCharCode(...b.subarray(0, 2)));
    throw new Error(`not a PGM file: it must start with "P5" (starts with ${start})`);
  }
  const magic = String.fromCharCode(b[0], b[1]);
  if (magic !== 'P5') throw new Error(`${magic} (${NETPBM[magic]}) is not supported: only binary 8-bit PGM (P5) is read`);
  let pos = 2;
  const field = (name: string): number => {
    if (pos < b.length && !isSpace(b[pos]) && b[pos] !== 0x23) throw new Error(`bad PGM header: expected whitespace before ${name}`);
    while (pos < b.length) {
      if (b[pos] === 0x23) while (pos < b.length && b[pos] !== 0x0a && b[pos] !== 0x0d) pos++;
      else if (isSpace(b[pos])) pos++;
      else break;
    }
    if (pos >= b.length) throw new Error(`truncated PGM header: ${name} is missing`);
    const start = pos;
    while (pos < b.length && b[pos] >= 0x30 && b[pos] <= 0x39) pos++;
    if (pos === start) throw new Error(`bad PGM header: ${name} must be a decimal number (found ${JSON.stringify(String.fromCharCode(b[pos]))})`);
    if (pos - start > 9) throw new Error(`bad PGM header: ${name} ${String.fromCharCode(...b.subarray(start, pos))} is too large`);
    return Number(String.fromCharCode(...b.subarray(start, pos)));
  };
  const width = field('width');
  const height = field('height');
  const maxval = field('maxval');
  if (width < 1 || height < 1) throw new Error(`bad PGM header: size ${width}x${height} (width and height must be >= 1)`);
  if (maxval < 1 || maxval > 65535) throw new Error(`bad PGM header: maxval ${maxval} (must be in [1, 65535])`);
  if (maxval > 255) throw new Error(`maxval ${maxval} > 255 (16-bit PGM) is not supported: only 8-bit PGM is read`);
  if (pos >= b.length) throw new Error(`truncated PGM: no pixel data after the header (${width}x${height} needs ${width * height} bytes)`);
  if (!isSpace(b[pos])) throw new Error('bad PGM header: maxval must be followed by one whitespace byte');
  pos++;
  const n = width * height;
  const have = b.length - pos;
  if (have < n) throw new Error(`truncated PGM: ${width}x${height} needs ${n} bytes of pixel data, the file has ${have}`);
  if (have > n) throw new Error(`${have - n} bytes after the ${width}x${height} pixel data (multi-image PGM files are not supported)`);
  const data = new Uint8Array(b.subarray(pos, pos + n));
  if (maxval < 255) {
    const i = data.findIndex((v) => v > maxval);
    if (i >= 0) throw new Error(`pixel (${i % width}, ${Math.floor(i / width)}) is ${data[i]}, above maxval ${maxval}`);
  }
  return { data, width, height };
}

/** Reads an image as 8-bit gray: binary PGM by its magic bytes or a .pgm name, else through sharp. */
export async function readGrayImage(path: string): Promise<GrayImage> {
  try {
    const bytes = await readFile(path);
    if (isNetpbm(bytes) || extname(path).toLowerCase() === '.pgm') return decodePgm(bytes);
    const { data, info } = await sharp(bytes).greyscale().raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 1) throw new Error(`expected 1 channel after greyscale conversion, got ${info.channels}`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
  } catch (e) {
    throw new Error(`cannot read image ${path}: ${(e as Error).message}`);
  }
}
