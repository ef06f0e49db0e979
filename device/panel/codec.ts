// The touch panel's serial protocol, version 1 (docs/panel.md): COBS-framed messages with a
// 0x00 delimiter, each a 3-byte header (version, type, sequence number), a payload of at most
// 32 bytes and a CRC-16/CCITT-FALSE (big-endian) over header and payload. This file is the
// reference implementation; the generated C codec (firmware-config/generated/, written by
// device/panel/codegen.ts) implements the same and is tested against it over a pty.
//
// Nothing here throws on bad input: the streaming decoder counts and drops garbage, partial
// frames, oversized frames and CRC errors, and hands on every valid frame.

export const PROTOCOL_VERSION = 1;
/** Largest payload of any message (the STATUS line). */
export const MAX_PAYLOAD = 32;
export const HEADER_BYTES = 3;
export const CRC_BYTES = 2;
/** Largest frame before COBS: header + payload + CRC. */
export const MAX_FRAME = HEADER_BYTES + MAX_PAYLOAD + CRC_BYTES;
/** Largest COBS-encoded frame, without its delimiter (one overhead byte per 254 bytes started). */
export const MAX_ENCODED = MAX_FRAME + Math.ceil(MAX_FRAME / 254);
/** Smallest valid frame before COBS: header and CRC, no payload. */
export const MIN_FRAME = HEADER_BYTES + CRC_BYTES;
export const DELIMITER = 0x00;
/** CRC-16/CCITT-FALSE of the ASCII bytes "123456789". */
export const CRC16_CHECK = 0x29b1;
/** Longest STATUS line, in bytes of printable ASCII (0x20-0x7E). */
export const STATUS_MAX = 32;
/** Most LEDs a LEDS message carries. */
export const MAX_LEDS = 16;

/** Message type codes. 0x01-0x0F panel to module, 0x10-0x1F both ways, 0x20-0x2F module to panel. */
export const MSG = {
  HELLO: 0x01,
  BUTTON: 0x02,
  SLIDER: 0x03,
  HEARTBEAT: 0x04,
  ACK: 0x10,
  NAK: 0x11,
  HELLO_REQUEST: 0x20,
  WELCOME: 0x21,
  LEDS: 0x22,
  STATUS: 0x23,
} as const;
export type MessageName = keyof typeof MSG;
export const MESSAGE_NAMES = Object.keys(MSG) as MessageName[];

export type Direction = 'panel-to-module' | 'module-to-panel' | 'both';
/** Who sends each message, and its payload length range in bytes (LEDS: exactly one byte per LED of the layout). */
export const MESSAGES: Record<MessageName, { code: number; direction: Direction; minLength: number; maxLength: number }> = {
  HELLO: { code: MSG.HELLO, direction: 'panel-to-module', minLength: 10, maxLength: 10 },
  BUTTON: { code: MSG.BUTTON, direction: 'panel-to-module', minLength: 2, maxLength: 2 },
  SLIDER: { code: MSG.SLIDER, direction: 'panel-to-module', minLength: 3, maxLength: 3 },
  HEARTBEAT: { code: MSG.HEARTBEAT, direction: 'panel-to-module', minLength: 6, maxLength: 6 },
  ACK: { code: MSG.ACK, direction: 'both', minLength: 2, maxLength: 2 },
  NAK: { code: MSG.NAK, direction: 'both', minLength: 3, maxLength: 3 },
  HELLO_REQUEST: { code: MSG.HELLO_REQUEST, direction: 'module-to-panel', minLength: 0, maxLength: 0 },
  WELCOME: { code: MSG.WELCOME, direction: 'module-to-panel', minLength: 4, maxLength: 4 },
  LEDS: { code: MSG.LEDS, direction: 'module-to-panel', minLength: 1, maxLength: MAX_LEDS },
  STATUS: { code: MSG.STATUS, direction: 'module-to-panel', minLength: 0, maxLength: STATUS_MAX },
};

const NAME_OF = new Map<number, MessageName>(MESSAGE_NAMES.map((n) => [MSG[n], n]));
/** The name of a type code, or undefined for an unknown one. */
export function messageName(code: number): MessageName | undefined {
  return NAME_OF.get(code);
}

/** Why a message was refused (NAK reason codes). */
export const NAK = {
  UNKNOWN_TYPE: 1,
  BAD_LENGTH: 2,
  BAD_CRC: 3,
  BAD_VERSION: 4,
  BAD_VALUE: 5,
  NOT_READY: 6,
} as const;
export type NakReasonName = keyof typeof NAK;
export const NAK_NAMES = Object.keys(NAK) as NakReasonName[];
export function nakName(code: number): string {
  return NAK_NAMES.find((n) => NAK[n] === code) ?? `reason ${code}`;
}

/** WELCOME status codes. */
export const WELCOME_STATUS = { OK: 0, LAYOUT_MISMATCH: 1, PROTOCOL_MISMATCH: 2 } as const;

/** LED modes, one byte per LED in LEDS. */
export const LED_MODES = ['off', 'on', 'blink', 'fast'] as const;
export type LedMode = (typeof LED_MODES)[number];

// ---------------------------------------------------------------------------------------------
// CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, xorout 0; check("123456789") = 0x29B1.

const CRC_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

export function crc16(data: Uint8Array, start = 0, end = data.length): number {
  let crc = 0xffff;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ CRC_TABLE[((crc >> 8) ^ data[i]) & 0xff];
  return crc;
}

// ---------------------------------------------------------------------------------------------
// COBS (Cheshire and Baker, 1999): no zero byte in the output; the frame ends with one 0x00.

/** COBS encoding of `data` (no delimiter). Output length: n + 1 + floor(n / 254) at most. */
export function cobsEncode(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length + Math.floor(data.length / 254) + 1);
  let codeAt = 0, o = 1, code = 1;
  for (let i = 0; i < data.length; i++) {
    if (data[i] === 0) {
      out[codeAt] = code;
      codeAt = o++;
      code = 1;
    } else {
      out[o++] = data[i];
      code++;
      if (code === 0xff) {
        out[codeAt] = code;
        // A full block at the very end needs no code after it (the canonical encoding).
        if (i + 1 === data.length) return out.subarray(0, o);
        codeAt = o++;
        code = 1;
      }
    }
  }
  out[codeAt] = code;
  return out.subarray(0, o);
}

/** COBS decoding (input without the delimiter); undefined when the input is not valid COBS (a zero byte, or a block cut short). */
export function cobsDecode(enc: Uint8Array, start = 0, end = enc.length): Uint8Array | undefined {
  const out = new Uint8Array(Math.max(0, end - start));
  let o = 0, i = start;
  while (i < end) {
    const code = enc[i++];
    if (code === 0) return undefined;
    const stop = i + code - 1;
    if (stop > end) return undefined;
    for (; i < stop; i++) {
      if (enc[i] === 0) return undefined;
      out[o++] = enc[i];
    }
    if (code !== 0xff && i < end) out[o++] = 0;
  }
  return out.subarray(0, o);
}

// ---------------------------------------------------------------------------------------------
// Frames.

export interface RawFrame {
  version: number;
  type: number;
  seq: number;
  payload: Uint8Array;
}

/** Wire bytes of one frame: COBS(header, payload, CRC) and the 0x00 delimiter. Throws a RangeError for a payload too long (a bug of the caller). */
export function encodeFrame(type: number, seq: number, payload: Uint8Array = new Uint8Array(0), version = PROTOCOL_VERSION): Uint8Array {
  if (payload.length > MAX_PAYLOAD) throw new RangeError(`panel frame: payload of ${payload.length} bytes (at most ${MAX_PAYLOAD})`);
  const body = new Uint8Array(HEADER_BYTES + payload.length + CRC_BYTES);
  body[0] = version & 0xff;
  body[1] = type & 0xff;
  body[2] = seq & 0xff;
  body.set(payload, HEADER_BYTES);
  const crc = crc16(body, 0, HEADER_BYTES + payload.length);
  body[body.length - 2] = crc >> 8;
  body[body.length - 1] = crc & 0xff;
  const enc = cobsEncode(body);
  const wire = new Uint8Array(enc.length + 1);
  wire.set(enc);
  wire[enc.length] = DELIMITER;
  return wire;
}

// ---------------------------------------------------------------------------------------------
// Messages.

export type PanelMessage =
  | { type: 'HELLO'; protocol: number; firmware: [number, number, number]; layoutHash: number; buttons: number; leds: number }
  | { type: 'BUTTON'; id: number; pressed: boolean }
  | { type: 'SLIDER'; id: number; value: number }
  | { type: 'HEARTBEAT'; uptimeMs: number; rxErrors: number }
  | { type: 'ACK'; ackSeq: number; ackType: number }
  | { type: 'NAK'; nakSeq: number; nakType: number; reason: number }
  | { type: 'HELLO_REQUEST' }
  | { type: 'WELCOME'; protocol: number; status: number; heartbeatMs: number }
  | { type: 'LEDS'; modes: number[] }
  | { type: 'STATUS'; text: string };

const u16 = (b: Uint8Array, i: number) => (b[i] << 8) | b[i + 1];
const u32 = (b: Uint8Array, i: number) => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
function byte(name: string, v: number, max = 0xff): number {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`panel message: ${name} must be an integer in [0, ${max}] (got ${v})`);
  return v;
}

/** The payload bytes of a message. Throws a RangeError naming the field for a value that does not fit. */
export function encodePayload(m: PanelMessage): Uint8Array {
  switch (m.type) {
    case 'HELLO': {
      const p = new Uint8Array(10);
      p[0] = byte('protocol', m.protocol);
      m.firmware.forEach((v, i) => (p[1 + i] = byte(`firmware[${i}]`, v)));
      const h = byte('layoutHash', m.layoutHash, 0xffffffff);
      p[4] = h >>> 24; p[5] = (h >>> 16) & 0xff; p[6] = (h >>> 8) & 0xff; p[7] = h & 0xff;
      p[8] = byte('buttons', m.buttons);
      p[9] = byte('leds', m.leds);
      return p;
    }
    case 'BUTTON': return Uint8Array.of(byte('id', m.id), m.pressed ? 1 : 0);
    case 'SLIDER': { const v = byte('value', m.value, 0xffff); return Uint8Array.of(byte('id', m.id), v >> 8, v & 0xff); }
    case 'HEARTBEAT': {
      const t = byte('uptimeMs', m.uptimeMs, 0xffffffff), e = byte('rxErrors', m.rxErrors, 0xffff);
      return Uint8Array.of(t >>> 24, (t >>> 16) & 0xff, (t >>> 8) & 0xff, t & 0xff, e >> 8, e & 0xff);
    }
    case 'ACK': return Uint8Array.of(byte('ackSeq', m.ackSeq), byte('ackType', m.ackType));
    case 'NAK': return Uint8Array.of(byte('nakSeq', m.nakSeq), byte('nakType', m.nakType), byte('reason', m.reason));
    case 'HELLO_REQUEST': return new Uint8Array(0);
    case 'WELCOME': { const h = byte('heartbeatMs', m.heartbeatMs, 0xffff); return Uint8Array.of(byte('protocol', m.protocol), byte('status', m.status), h >> 8, h & 0xff); }
    case 'LEDS': {
      if (m.modes.length < 1 || m.modes.length > MAX_LEDS) throw new RangeError(`panel message: LEDS carries 1 to ${MAX_LEDS} LEDs (got ${m.modes.length})`);
      return Uint8Array.from(m.modes.map((v, i) => byte(`modes[${i}]`, v, LED_MODES.length - 1)));
    }
    case 'STATUS': {
      const bad = statusProblem(m.text);
      if (bad) throw new RangeError(`panel message: STATUS ${bad}`);
      return Uint8Array.from(m.text, (c) => c.charCodeAt(0));
    }
  }
}

/** Why a status line cannot be sent as is, or undefined. */
export function statusProblem(text: string): string | undefined {
  if (text.length > STATUS_MAX) return `text is ${text.length} characters (at most ${STATUS_MAX})`;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return `text has a character that is not printable ASCII at ${i} (code ${c})`;
  }
  return undefined;
}

/** A status line made sendable: other characters become '?', and it is cut to 32. */
export function toStatusLine(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, STATUS_MAX);
}

export type DecodedMessage = { ok: true; msg: PanelMessage } | { ok: false; reason: number; problem: string };

/** The message in a frame's payload, or why it is refused (a NAK reason and a sentence). */
export function decodePayload(type: number, p: Uint8Array): DecodedMessage {
  const name = messageName(type);
  if (!name) return { ok: false, reason: NAK.UNKNOWN_TYPE, problem: `unknown message type 0x${type.toString(16).padStart(2, '0')}` };
  const spec = MESSAGES[name];
  if (p.length < spec.minLength || p.length > spec.maxLength)
    return { ok: false, reason: NAK.BAD_LENGTH, problem: `${name} payload of ${p.length} bytes (${spec.minLength === spec.maxLength ? spec.minLength : `${spec.minLength} to ${spec.maxLength}`} expected)` };
  switch (name) {
    case 'HELLO': return { ok: true, msg: { type: name, protocol: p[0], firmware: [p[1], p[2], p[3]], layoutHash: u32(p, 4), buttons: p[8], leds: p[9] } };
    case 'BUTTON':
      if (p[1] > 1) return { ok: false, reason: NAK.BAD_VALUE, problem: `BUTTON state ${p[1]} (0 released, 1 pressed)` };
      return { ok: true, msg: { type: name, id: p[0], pressed: p[1] === 1 } };
    case 'SLIDER': return { ok: true, msg: { type: name, id: p[0], value: u16(p, 1) } };
    case 'HEARTBEAT': return { ok: true, msg: { type: name, uptimeMs: u32(p, 0), rxErrors: u16(p, 4) } };
    case 'ACK': return { ok: true, msg: { type: name, ackSeq: p[0], ackType: p[1] } };
    case 'NAK': return { ok: true, msg: { type: name, nakSeq: p[0], nakType: p[1], reason: p[2] } };
    case 'HELLO_REQUEST': return { ok: true, msg: { type: name } };
    case 'WELCOME': return { ok: true, msg: { type: name, protocol: p[0], status: p[1], heartbeatMs: u16(p, 2) } };
    case 'LEDS': {
      const bad = p.findIndex((v) => v >= LED_MODES.length);
      if (bad >= 0) return { ok: false, reason: NAK.BAD_VALUE, problem: `LEDS mode ${p[bad]} for LED ${bad} (0 to ${LED_MODES.length - 1})` };
      return { ok: true, msg: { type: name, modes: [...p] } };
    }
    case 'STATUS': {
      const text = String.fromCharCode(...p);
      const bad = statusProblem(text);
      if (bad) return { ok: false, reason: NAK.BAD_VALUE, problem: `STATUS ${bad}` };
      return { ok: true, msg: { type: name, text } };
    }
  }
}

/** Wire bytes of a message with this sequence number. */
export function encodeMessage(m: PanelMessage, seq: number): Uint8Array {
  return encodeFrame(MSG[m.type], seq, encodePayload(m));
}

// ---------------------------------------------------------------------------------------------
// The streaming decoder.

export interface DecoderCounters {
  /** Every byte fed. */
  bytesIn: number;
  /** Valid frames (COBS and CRC good), and their bytes including the delimiter. */
  frames: number;
  frameBytes: number;
  /** Every other byte dropped: bad frames with their delimiters, and lone delimiters. */
  garbageBytes: number;
  /** Frames that decoded but whose CRC did not match. */
  crcErrors: number;
  /** Frames cut short: not valid COBS, shorter than header and CRC, or left unfinished (timeout, close). */
  partialFrames: number;
  /** Runs longer than the longest frame before a delimiter. */
  oversized: number;
}

export type DecodeEvent =
  | { kind: 'frame'; frame: RawFrame }
  /** A CRC error. `plausible`: the header carries our version and a known type with a fitting length, so its seq and type may be trusted enough to NAK. */
  | { kind: 'crc'; version: number; type: number; seq: number; length: number; plausible: boolean }
  | { kind: 'partial' | 'oversized'; bytes: number };

/**
 * Splits a byte stream at 0x00, decodes COBS, checks the CRC. Never throws on input; every byte
 * fed ends up in exactly one of frameBytes, garbageBytes or `pending` (so they add up to bytesIn).
 */
export class FrameDecoder {
  readonly counters: DecoderCounters = { bytesIn: 0, frames: 0, frameBytes: 0, garbageBytes: 0, crcErrors: 0, partialFrames: 0, oversized: 0 };
  private readonly buf = new Uint8Array(MAX_ENCODED);
  private n = 0;
  /** Bytes dropped since the run overflowed (the run is discarded up to the next delimiter). */
  private overflow = 0;

  /** Bytes of an unfinished frame held. */
  get pending(): number {
    return this.n + this.overflow;
  }

  push(chunk: Uint8Array, sink: (e: DecodeEvent) => void): void {
    const c = this.counters;
    c.bytesIn += chunk.length;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (b !== DELIMITER) {
        if (this.overflow > 0) this.overflow++;
        else if (this.n === MAX_ENCODED) { this.overflow = this.n + 1; this.n = 0; }
        else this.buf[this.n++] = b;
        continue;
      }
      if (this.overflow > 0) {
        c.oversized++;
        c.garbageBytes += this.overflow + 1;
        const bytes = this.overflow;
        this.overflow = 0;
        sink({ kind: 'oversized', bytes });
        continue;
      }
      const len = this.n;
      this.n = 0;
      if (len === 0) { c.garbageBytes++; continue; }
      this.frame(len, sink);
    }
  }

  /** Drops an unfinished frame (inter-byte timeout, port closed); true when there was one. */
  flush(sink?: (e: DecodeEvent) => void): boolean {
    const bytes = this.pending;
    if (bytes === 0) return false;
    this.n = 0;
    this.overflow = 0;
    this.counters.partialFrames++;
    this.counters.garbageBytes += bytes;
    sink?.({ kind: 'partial', bytes });
    return true;
  }

  private frame(len: number, sink: (e: DecodeEvent) => void): void {
    const c = this.counters;
    const body = cobsDecode(this.buf, 0, len);
    if (!body || body.length < MIN_FRAME) {
      c.partialFrames++;
      c.garbageBytes += len + 1;
      sink({ kind: 'partial', bytes: len });
      return;
    }
    const end = body.length - CRC_BYTES;
    if (crc16(body, 0, end) !== u16(body, end)) {
      c.crcErrors++;
      c.garbageBytes += len + 1;
      const name = messageName(body[1]);
      const plen = end - HEADER_BYTES;
      const plausible = body[0] === PROTOCOL_VERSION && name !== undefined && plen >= MESSAGES[name].minLength && plen <= MESSAGES[name].maxLength;
      sink({ kind: 'crc', version: body[0], type: body[1], seq: body[2], length: plen, plausible });
      return;
    }
    c.frames++;
    c.frameBytes += len + 1;
    // A copy: the frame outlives the buffer.
    sink({ kind: 'frame', frame: { version: body[0], type: body[1], seq: body[2], payload: body.slice(HEADER_BYTES, end) } });
  }
}
