// Reading 8-bit gray images (PNG, JPEG, ... through sharp) for commands and research tools.
import sharp from 'sharp';

export interface GrayImage { data: Uint8Array; width: number; height: number }

export async function readGrayImage(path: string): Promise<GrayImage> {
  try {
    const { data, info } = await sharp(path).greyscale().raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 1) throw new Error(`expected 1 channel after greyscale conversion, got ${info.channels}`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
  } catch (e) {
    throw new Error(`cannot read image ${path}: ${(e as Error).message}`);
  }
}
