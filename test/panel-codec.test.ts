// The panel protocol's TypeScript codec: CRC-16/CCITT-FALSE, COBS, frames, every message type,
// and the streaming decoder's counters.
import t from 'tap';
import {
  cobsDecode, cobsEncode, crc16, CRC16_CHECK, decodePayload, encodeFrame, encodeMessage, encodePayload, FrameDecoder, MAX_ENCODED, MAX_PAYLOAD,
  MESSAGE_NAMES, MESSAGES, MSG, NAK, PROTOCOL_VERSION, toStatusLine, type DecodeEvent, type PanelMessage,
} from '../device/panel/codec.js';

const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const range = (from: number, to: number) => Uint8Array.from({ length: to - from + 1 }, (_, i) => (from + i) & 0xff);
const cat = (...parts: ArrayLike<number>[]) => Uint8Array.from(parts.flatMap((p) => [...Array.from(p)]));

t.test('CRC-16/CCITT-FALSE: the catalogue check value and known values', async (t) => {
  t.equal(crc16(ascii('123456789')), 0x29b1, 'check("123456789") = 0x29B1');
  t.equal(CRC16_CHECK, 0x29b1);
  t.equal(crc16(new Uint8Array(0)), 0xffff, 'empty: the initial value');
  t.equal(crc16(ascii('A')), 0xb915, '"A"');
  t.equal(crc16(ascii('xx123456789yy'), 2, 11), 0x29b1, 'a sub-range');
  // Appending the CRC big-endian makes the CRC of the whole zero (no xorout, no reflection).
  const body = ascii('panel');
  const c = crc16(body);
  t.equal(crc16(cat(body, [c >> 8, c & 0xff])), 0, 'residue 0 with the CRC appended big-endian');
});

t.test('COBS: the vectors of Cheshire and Baker (as on Wikipedia) and round trips', async (t) => {
  const vectors: Array<[Uint8Array, Uint8Array]> = [
    [Uint8Array.of(0x00), Uint8Array.of(0x01, 0x01)],
    [Uint8Array.of(0x00, 0x00), Uint8Array.of(0x01, 0x01, 0x01)],
    [Uint8Array.of(0x00, 0x11, 0x00), Uint8Array.of(0x01, 0x02, 0x11, 0x01)],
    [Uint8Array.of(0x11, 0x22, 0x00, 0x33), Uint8Array.of(0x03, 0x11, 0x22, 0x02, 0x33)],
    [Uint8Array.of(0x11, 0x22, 0x33, 0x44), Uint8Array.of(0x05, 0x11, 0x22, 0x33, 0x44)],
    [Uint8Array.of(0x11, 0x00, 0x00, 0x00), Uint8Array.of(0x02, 0x11, 0x01, 0x01, 0x01)],
    [range(0x01, 0xfe), cat([0xff], range(0x01, 0xfe))],
    [range(0x00, 0xfe), cat([0x01, 0xff], range(0x01, 0xfe))],
    [range(0x01, 0xff), cat([0xff], range(0x01, 0xfe), [0x02, 0xff])],
    [cat(range(0x02, 0xff), [0x00]), cat([0xff], range(0x02, 0xff), [0x01, 0x01])],
    [cat(range(0x03, 0xff), [0x00, 0x01]), cat([0xfe], range(0x03, 0xff), [0x02, 0x01])],
    [new Uint8Array(0), Uint8Array.of(0x01)],
  ];
  for (const [raw, enc] of vectors) {
    t.equal(hex(cobsEncode(raw)), hex(enc), `encode ${hex(raw).slice(0, 16)}... (${raw.length} bytes)`);
    t.equal(hex(cobsDecode(enc)!), hex(raw), `decode back (${raw.length} bytes)`);
  }
  // Runs of non-zero bytes around the 254-byte block, with and without zeros between.
  for (const n of [1, 253, 254, 255, 256, 508, 509, 1000]) {
    for (const fill of [0x7f, 0x00]) {
      const data = new Uint8Array(n).fill(fill);
      const enc = cobsEncode(data);
      t.notOk(enc.includes(0), `no zero in the encoding (${n} x 0x${fill.toString(16)})`);
      t.ok(enc.length <= n + Math.ceil(n / 254) + 1, `overhead within bounds (${enc.length} for ${n})`);
      t.same(cobsDecode(enc), data, `round trip of ${n} x 0x${fill.toString(16)}`);
    }
    const mixed = Uint8Array.from({ length: n }, (_, i) => (i % 7 === 3 ? 0 : (i * 31) & 0xff));
    t.same(cobsDecode(cobsEncode(mixed)), mixed, `round trip of ${n} mixed bytes`);
  }
  t.equal(cobsDecode(Uint8Array.of(0x05, 0x11, 0x22)), undefined, 'a block cut short is not COBS');
  t.equal(cobsDecode(Uint8Array.of(0x02, 0x00)), undefined, 'a zero inside is not COBS');
  t.equal(cobsDecode(Uint8Array.of(0x00)), undefined, 'a zero code is not COBS');
});

const samples: PanelMessage[] = [
  { type: 'HELLO', protocol: 1, firmware: [1, 2, 3], layoutHash: 0xa3037d84, buttons: 7, leds: 5 },
  { type: 'BUTTON', id: 3, pressed: true },
  { type: 'BUTTON', id: 0, pressed: false },
  { type: 'SLIDER', id: 0, value: 1023 },
  { type: 'HEARTBEAT', uptimeMs: 0xfedcba98, rxErrors: 65535 },
  { type: 'ACK', ackSeq: 255, ackType: MSG.LEDS },
  { type: 'NAK', nakSeq: 0, nakType: 0x7f, reason: NAK.UNKNOWN_TYPE },
  { type: 'HELLO_REQUEST' },
  { type: 'WELCOME', protocol: 1, status: 0, heartbeatMs: 500 },
  { type: 'LEDS', modes: [0, 1, 2, 3, 0] },
  { type: 'STATUS', text: 'FROZEN #1234 ~ all printable ok!' },
  { type: 'STATUS', text: '' },
];

t.test('every message type: encode, frame, decode back; lengths as the table says', async (t) => {
  t.same([...new Set(samples.map((s) => s.type))].sort(), [...MESSAGE_NAMES].sort(), 'the samples cover every type');
  let seq = 250;
  for (const m of samples) {
    const wire = encodeMessage(m, seq);
    t.equal(wire[wire.length - 1], 0, `${m.type}: ends with the delimiter`);
    t.notOk(wire.subarray(0, -1).includes(0), `${m.type}: no other zero`);
    t.ok(wire.length - 1 <= MAX_ENCODED, `${m.type}: ${wire.length - 1} encoded bytes <= ${MAX_ENCODED}`);
    const events: DecodeEvent[] = [];
    new FrameDecoder().push(wire, (e) => events.push(e));
    t.equal(events.length, 1);
    const e = events[0];
    if (e.kind !== 'frame') { t.fail(`${m.type}: ${e.kind}`); continue; }
    t.match(e.frame, { version: PROTOCOL_VERSION, type: MSG[m.type], seq: seq & 0xff }, `${m.type}: header`);
    const spec = MESSAGES[m.type];
    t.ok(e.frame.payload.length >= spec.minLength && e.frame.payload.length <= spec.maxLength, `${m.type}: payload length ${e.frame.payload.length}`);
    t.same(decodePayload(e.frame.type, e.frame.payload), { ok: true, msg: m }, `${m.type}: decodes to the same message`);
    seq++;
  }
  // Byte layouts, as docs/panel.md gives them.
  t.equal(hex(encodePayload({ type: 'HELLO', protocol: 1, firmware: [1, 2, 3], layoutHash: 0xa3037d84, buttons: 7, leds: 5 })), '01010203a3037d840705');
  t.equal(hex(encodePayload({ type: 'SLIDER', id: 0, value: 0x1234 })), '001234');
  t.equal(hex(encodePayload({ type: 'HEARTBEAT', uptimeMs: 0x01020304, rxErrors: 0x0506 })), '010203040506');
  t.equal(hex(encodePayload({ type: 'WELCOME', protocol: 1, status: 1, heartbeatMs: 500 })), '010101f4');
  // A whole frame, byte for byte: BUTTON 2 pressed, seq 7.
  const body = Uint8Array.of(1, 0x02, 7, 2, 1);
  const c = crc16(body);
  t.equal(hex(encodeFrame(MSG.BUTTON, 7, Uint8Array.of(2, 1))), hex(cat(cobsEncode(cat(body, [c >> 8, c & 0xff])), [0])), 'BUTTON frame = COBS(01 02 07 02 01 crc) 00');
});

t.test('payload refusals: unknown type, bad length, bad value; encoder refuses what does not fit', async (t) => {
  t.match(decodePayload(0x7f, new Uint8Array(0)), { ok: false, reason: NAK.UNKNOWN_TYPE, problem: /unknown message type 0x7f/ });
  t.match(decodePayload(MSG.BUTTON, Uint8Array.of(1)), { ok: false, reason: NAK.BAD_LENGTH, problem: 'BUTTON payload of 1 bytes (2 expected)' });
  t.match(decodePayload(MSG.BUTTON, Uint8Array.of(1, 2)), { ok: false, reason: NAK.BAD_VALUE, problem: /BUTTON state 2/ });
  t.match(decodePayload(MSG.LEDS, Uint8Array.of(1, 4)), { ok: false, reason: NAK.BAD_VALUE, problem: /LEDS mode 4 for LED 1/ });
  t.match(decodePayload(MSG.LEDS, new Uint8Array(0)), { ok: false, reason: NAK.BAD_LENGTH });
  t.match(decodePayload(MSG.STATUS, Uint8Array.of(0x41, 0x0a)), { ok: false, reason: NAK.BAD_VALUE, problem: /not printable ASCII at 1/ });
  t.match(decodePayload(MSG.STATUS, new Uint8Array(33).fill(0x41)), { ok: false, reason: NAK.BAD_LENGTH });
  t.throws(() => encodePayload({ type: 'STATUS', text: 'é' }), /not printable ASCII/);
  t.throws(() => encodePayload({ type: 'SLIDER', id: 0, value: 70000 }), /value must be an integer in \[0, 65535\]/);
  t.throws(() => encodeFrame(MSG.STATUS, 0, new Uint8Array(MAX_PAYLOAD + 1)), /at most 32/);
  t.equal(toStatusLine('Läsion locked at 5 mm, tracking — fine and long'), 'L?sion locked at 5 mm, tracking ');
});

t.test('the decoder counts garbage, partial frames, oversized runs and CRC errors, and never loses a good frame after a delimiter', async (t) => {
  const d = new FrameDecoder();
  const frames: number[] = [];
  const bad: string[] = [];
  const sink = (e: DecodeEvent) => (e.kind === 'frame' ? frames.push(e.frame.seq) : bad.push(e.kind === 'crc' ? `crc:${e.plausible}` : e.kind));
  const good = (seq: number) => encodeMessage({ type: 'BUTTON', id: 1, pressed: true }, seq);
  d.push(good(1), sink);
  d.push(Uint8Array.of(0, 0), sink); // lone delimiters
  const corrupt = good(2).slice();
  corrupt[3] ^= 0x40; // a flipped bit inside the COBS data (still not zero)
  d.push(corrupt, sink);
  d.push(Uint8Array.of(0x05, 0x11, 0x00), sink); // COBS block cut short
  d.push(Uint8Array.of(0x03, 0x11, 0x22, 0x00), sink); // valid COBS, too short for a frame
  d.push(new Uint8Array(100).fill(0x41), sink); // oversized run...
  t.equal(d.pending, 100, 'held until a delimiter');
  d.push(Uint8Array.of(0), sink); // ...ended
  const g3 = good(3);
  for (const b of g3) d.push(Uint8Array.of(b), sink); // byte by byte
  d.push(good(4).subarray(0, 4), sink); // half a frame
  t.equal(d.flush(sink), true, 'flushed (inter-byte timeout)');
  d.push(good(5), sink);
  t.same(frames, [1, 3, 5]);
  t.same(bad, ['crc:true', 'partial', 'partial', 'oversized', 'partial']);
  const c = d.counters;
  t.match(c, { frames: 3, crcErrors: 1, partialFrames: 3, oversized: 1 });
  t.equal(c.frameBytes + c.garbageBytes + d.pending, c.bytesIn, 'every byte is in a frame or counted as garbage');
  t.equal(c.garbageBytes, 2 + corrupt.length + 3 + 4 + 101 + 4, 'garbage: lone delimiters, the bad frames with their delimiters, the half frame');
});
