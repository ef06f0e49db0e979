// The generated C codec, compiled with gcc: byte for byte the same as the TypeScript codec (CRC,
// COBS, frames, the receiver's events and counters on a random stream), and the C panel
// (firmware-config/sim/panel_sim.c) against PanelDriver over a socat pty pair: every message type
// both ways, CRC errors, garbage, partial and oversized frames, NAKs both ways, a wrong layout.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { cobsDecode, cobsEncode, crc16, encodeFrame, encodeMessage, FrameDecoder, MSG, NAK, type DecodeEvent } from '../device/panel/codec.js';
import { PanelDriver, type PanelButtonEvent, type PanelError, type PanelHello, type PanelSliderEvent } from '../device/panel/driver.js';
import { layoutHash, loadPanelLayout, sliderValue } from '../device/panel/layout.js';
import { seededRandom } from '../core/random.js';
import { fromRoot, sleep, until } from './helpers.js';
import { buildSim, CPanel, nextEvent, ptyPair, requireTool, testDriverOptions, tmp } from './panel-helpers.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

const HARNESS = `#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "panel_codec.h"
static char line[1 << 20];
static uint8_t a[1 << 19], b[1 << 19];
static size_t unhex(const char *s, uint8_t *out) { size_t n = 0; unsigned v; while (s[0] && s[0] != '\\n' && sscanf(s, "%2x", &v) == 1) { out[n++] = (uint8_t)v; s += 2; } return n; }
static void put(const uint8_t *p, size_t n) { size_t i; for (i = 0; i < n; i++) printf("%02x", p[i]); printf("\\n"); }
int main(void) {
  panel_rx_t rx;
  panel_rx_init(&rx);
  printf("%04x\\n", panel_crc16((const uint8_t *)"123456789", 9));
  while (fgets(line, sizeof line, stdin)) {
    if (!strncmp(line, "cobs ", 5)) { size_t n = unhex(line + 5, a); put(b, panel_cobs_encode(a, n, b)); }
    else if (!strncmp(line, "uncobs ", 7)) { size_t n = unhex(line + 7, a), m; if (panel_cobs_decode(a, n, b, sizeof b, &m)) printf("ERR\\n"); else put(b, m); }
    else if (!strncmp(line, "crc ", 4)) { size_t n = unhex(line + 4, a); printf("%04x\\n", panel_crc16(a, n)); }
    else if (!strncmp(line, "frame ", 6)) { unsigned ty, sq; int off; size_t n, w; sscanf(line + 6, "%u %u%n", &ty, &sq, &off); n = unhex(line + 6 + off + 1, a);
      w = panel_frame_build((uint8_t)ty, (uint8_t)sq, a, n, b, sizeof b); if (!w) printf("ERR\\n"); else put(b, w); }
    else if (!strncmp(line, "rx ", 3)) { size_t n = unhex(line + 3, a), i; panel_frame_t f;
      for (i = 0; i < n; i++) switch (panel_rx_byte(&rx, a[i], &f)) {
        case PANEL_RX_FRAME: printf("frame %u %u ", f.type, f.seq); put(f.payload, f.len); break;
        case PANEL_RX_BAD_CRC: printf("crc %u %u\\n", f.type, f.seq); break;
        case PANEL_RX_PARTIAL: printf("partial\\n"); break;
        case PANEL_RX_OVERSIZED: printf("oversized\\n"); break;
        default: break; }
      printf("counters %u %u %u %u %u pending %u\\n", rx.frames, rx.garbage_bytes, rx.crc_errors, rx.partial_frames, rx.oversized, (unsigned)(rx.n + rx.overflow)); }
  }
  return 0;
}
`;

t.test('the generated C codec agrees with the TypeScript codec byte for byte', async (t) => {
  if (!requireTool(t, 'gcc')) return;
  const dir = tmp('panel-c');
  writeFileSync(join(dir, 'harness.c'), HARNESS);
  const exe = join(dir, 'harness');
  const gen = fromRoot('firmware-config', 'generated');
  execFileSync('gcc', ['-std=c99', '-Wall', '-Wextra', '-Wpedantic', '-Werror', '-O2', '-I', gen, join(dir, 'harness.c'), join(gen, 'panel_codec.c'), '-o', exe], { stdio: 'pipe' });
  const rnd = seededRandom(20261122);
  const bytes = (n: number, zeros = 0.1) => Uint8Array.from({ length: n }, () => (rnd() < zeros ? 0 : 1 + Math.floor(rnd() * 255)));
  const cases: Uint8Array[] = [new Uint8Array(0), Uint8Array.of(0), new Uint8Array(254).fill(7), new Uint8Array(255).fill(7), new Uint8Array(508).fill(1),
    Uint8Array.from({ length: 254 }, (_, i) => i + 1), new Uint8Array(300)];
  for (let i = 0; i < 60; i++) cases.push(bytes(Math.floor(rnd() * 700), rnd() * 0.5));
  // A stream of frames, garbage, corrupted and cut frames, oversized runs, in one receiver.
  const stream: number[] = [];
  for (let i = 0; i < 300; i++) {
    const r = rnd();
    const wire = encodeMessage({ type: 'BUTTON', id: i % 7, pressed: i % 2 === 0 }, i);
    if (r < 0.5) stream.push(...wire);
    else if (r < 0.65) stream.push(...bytes(Math.floor(rnd() * 60), 0.2));
    else if (r < 0.75) { const w = wire.slice(); w[1 + Math.floor(rnd() * (w.length - 2))] ^= 1 + Math.floor(rnd() * 255); stream.push(...w); }
    else if (r < 0.85) stream.push(...wire.subarray(0, 1 + Math.floor(rnd() * (wire.length - 1))), 0);
    else if (r < 0.9) stream.push(...bytes(40 + Math.floor(rnd() * 100), 0), 0);
    else stream.push(...encodeFrame(0x33, i, bytes(Math.floor(rnd() * 33), 0.2)));
  }
  const frames = [[MSG.BUTTON, 7, Uint8Array.of(2, 1)], [MSG.STATUS, 255, Uint8Array.from('LOCKED 5MM', (c) => c.charCodeAt(0))], [MSG.HELLO_REQUEST, 0, new Uint8Array(0)],
    [MSG.LEDS, 3, Uint8Array.of(0, 1, 2, 3, 0)], [MSG.HEARTBEAT, 9, Uint8Array.of(0, 0, 0, 0, 0, 0)]] as const;
  const input = [
    ...cases.map((c) => `cobs ${hex(c)}`),
    ...cases.map((c) => `uncobs ${hex(cobsEncode(c))}`),
    'uncobs 051122', 'uncobs 0200', 'uncobs 00',
    ...cases.slice(0, 20).map((c) => `crc ${hex(c)}`),
    ...frames.map(([ty, sq, p]) => `frame ${ty} ${sq} ${hex(p)}`),
    `rx ${hex(Uint8Array.from(stream))}`,
  ].join('\n') + '\n';
  const out = execFileSync(exe, { input, maxBuffer: 64 << 20 }).toString().trim().split('\n');
  t.equal(out.shift(), '29b1', 'C: CRC check value 0x29B1');
  for (const c of cases) t.equal(out.shift(), hex(cobsEncode(c)), `COBS encode, ${c.length} bytes`);
  for (const c of cases) t.equal(out.shift(), hex(c), `COBS decode, ${c.length} bytes`);
  for (const bad of ['051122', '0200', '00']) t.equal(out.shift(), 'ERR', `not COBS: ${bad}`);
  t.equal(cobsDecode(Uint8Array.of(0x05, 0x11, 0x22)), undefined);
  for (const c of cases.slice(0, 20)) t.equal(out.shift(), crc16(c).toString(16).padStart(4, '0'), `CRC of ${c.length} bytes`);
  for (const [ty, sq, p] of frames) t.equal(out.shift(), hex(encodeFrame(ty, sq, p)), `frame type ${ty}: same wire bytes`);
  // The receivers: the same events and counters.
  const ts: string[] = [];
  const d = new FrameDecoder();
  d.push(Uint8Array.from(stream), (e: DecodeEvent) => ts.push(e.kind === 'frame' ? `frame ${e.frame.type} ${e.frame.seq} ${hex(e.frame.payload)}` : e.kind === 'crc' ? `crc ${e.type} ${e.seq}` : e.kind));
  const c = d.counters;
  ts.push(`counters ${c.frames} ${c.garbageBytes} ${c.crcErrors} ${c.partialFrames} ${c.oversized} pending ${d.pending}`);
  t.same(out, ts, `the C receiver gives the TypeScript decoder's ${ts.length - 1} events and its counters`);
  t.ok(c.frames > 100 && c.crcErrors > 5 && c.partialFrames > 5 && c.oversized > 3, `the stream exercised every path (${JSON.stringify(c)})`);
});

interface Rig {
  driver: PanelDriver;
  panel: CPanel;
  errors: PanelError[];
  buttons: PanelButtonEvent[];
}

/** socat pair, driver on a, the C panel on b; connected and synced. */
async function rig(t: Tap.Test, panelArgs: string[] = [], driverMore: Parameters<typeof testDriverOptions>[1] = {}): Promise<Rig | undefined> {
  if (!requireTool(t, 'gcc') || !requireTool(t, 'socat')) return undefined;
  buildSim();
  const pair = await ptyPair(t, tmp('panel-pty'));
  const driver = new PanelDriver(testDriverOptions(pair.a, driverMore));
  const errors: PanelError[] = [];
  const buttons: PanelButtonEvent[] = [];
  driver.on('error', (e: PanelError) => errors.push(e));
  driver.on('button', (b: PanelButtonEvent) => buttons.push(b));
  t.teardown(() => driver.stop());
  const synced = nextEvent(driver, 'synced', 5000);
  driver.start();
  const panel = new CPanel(t, pair.b, panelArgs);
  await synced;
  // Until the panel has printed the whole sync (WELCOME, LEDS, STATUS): a test's mark taken now
  // must not see those lines arrive after it.
  await panel.waitLine(/^rx STATUS /, 5000);
  return { driver, panel, errors, buttons };
}
namespace Tap { export type Test = import('tap').Test }

t.test('C panel <-> driver over a pty: every message type, both directions', async (t) => {
  const r = await rig(t);
  if (!r) return;
  const { driver, panel, errors, buttons } = r;
  const layout = loadPanelLayout();
  // HELLO_REQUEST (on open) and HELLO; WELCOME, LEDS, STATUS; the panel ACKs them.
  await panel.waitLine(/^ready layout=/);
  await panel.waitLine(/^tx HELLO /);
  t.match(await panel.waitLine(/^rx WELCOME /), /protocol=1 status=0 heartbeat=500$/, 'WELCOME: protocol 1, ok, heartbeat 500 ms');
  t.match(await panel.waitLine(/^rx LEDS /), /modes=0,0,0,0,1$/, 'LEDS: all off but the link');
  t.match(await panel.waitLine(/^rx STATUS /), /text="sonomics"$/, 'STATUS: the initial line');
  t.ok(driver.stats().acksReceived >= 2, 'the panel ACKed LEDS and STATUS (synced)');
  t.equal(driver.stats().connected, true);
  // A HELLO_REQUEST reached the panel (the driver asks on open; the panel may have said HELLO first).
  const hello = nextEvent<PanelHello>(driver, 'hello');
  panel.send('hello');
  t.match(await hello, { firmware: '1.2.3', protocol: 1, layoutHash: layoutHash(layout).toString(16).padStart(8, '0'), layoutMatches: true, buttons: 7, leds: 5 });
  // BUTTON both ways of a press; the module ACKs each.
  let mark = panel.lines.length;
  panel.send('press 2');
  panel.send('release 2');
  await until(() => buttons.length === 2, 3000, 'two button events');
  t.match(buttons, [{ id: 2, name: 'lock', action: 'lock-lesion', pressed: true }, { id: 2, pressed: false }]);
  // The driver emits each button before its ACK reaches the panel's log: wait for both lines.
  await until(() => panel.matching(/^rx ACK .* ack_type=2$/, mark).length >= 2, 3000, 'the panel logs both ACKs');
  t.equal(panel.matching(/^rx ACK .* ack_type=2$/, mark).length, 2, 'each BUTTON ACKed');
  // SLIDER
  const slider = nextEvent<PanelSliderEvent>(driver, 'slider');
  panel.send('slider 512');
  t.same(await slider, { id: 0, raw: 512, value: sliderValue(layout.slider, 512), controls: 'lock-size-mm' });
  // HEARTBEAT
  const beat = nextEvent<{ uptimeMs: number; rxErrors: number }>(driver, 'heartbeat');
  panel.send('heartbeat');
  t.match(await beat, { uptimeMs: Number, rxErrors: 0 });
  await panel.waitLine(/^rx ACK .* ack_type=4$/, 3000, mark);
  // ACK and NAK from the panel.
  const ack = nextEvent<{ seq: number; type: number }>(driver, 'ack', 3000, (a) => a.seq === 200);
  panel.send(`ack 200 ${MSG.STATUS}`);
  t.same(await ack, { seq: 200, type: MSG.STATUS }, 'ACK from the panel');
  const nak = nextEvent<{ seq: number; type: number; reason: number }>(driver, 'nak');
  panel.send(`nak 201 ${MSG.LEDS} ${NAK.BAD_VALUE}`);
  t.same(await nak, { seq: 201, type: MSG.LEDS, reason: NAK.BAD_VALUE }, 'NAK from the panel');
  t.match(errors.at(-1)!.message, 'the panel refused LEDS seq 201: BAD_VALUE');
  // LEDS and STATUS on change; nothing sent when unchanged.
  mark = panel.lines.length;
  driver.setLeds({ tracking: 'blink', frozen: 'on', recording: 'fast' });
  t.match(await panel.waitLine(/^rx LEDS /, 3000, mark), /modes=2,1,3,0,1$/);
  driver.setStatus('LOCKED 5MM #1234');
  t.match(await panel.waitLine(/^rx STATUS /, 3000, mark), /text="LOCKED 5MM #1234"$/);
  const out = driver.stats().framesOut;
  driver.setLeds({ frozen: 'on' });
  driver.setStatus('LOCKED 5MM #1234');
  t.equal(driver.stats().framesOut, out, 'unchanged state is not sent again');
  driver.setStatus('Läsion \n 0123456789012345678901234567890123');
  t.match(await panel.waitLine(/^rx STATUS .*L\?sion/, 3000, mark), /text="L\?sion \? 01234567890123456789012"$/, 'non-ASCII replaced, cut to 32');
  // NAK from the module: an unknown type.
  mark = panel.lines.length;
  panel.send('send 0f 0102');
  t.match(await panel.waitLine(/^rx NAK /, 3000, mark), new RegExp(`nak_type=15 reason=${NAK.UNKNOWN_TYPE}$`), 'unknown type: NAK UNKNOWN_TYPE');
  t.match(errors.at(-1)!, { code: 'unknown-type' });
  panel.send('stats');
  t.match(await panel.waitLine(/^stats /, 3000, mark), /crc=0 partial=0 oversized=0$/, 'the C side found no CRC error in anything the driver sent');
  t.same(driver.stats().crcErrors, 0);
  t.same(errors.filter((e) => !['nak', 'unknown-type'].includes(e.code)), [], 'no other errors');
});

t.test('C panel -> driver: CRC errors, garbage, partial and oversized frames, bad versions, lengths and values, repeats', async (t) => {
  // No periodic heartbeat: one landing inside the injected partial frame would make it a CRC error.
  const r = await rig(t, ['--heartbeat', '0'], { heartbeatTimeoutMs: 30000 });
  if (!r) return;
  const { driver, panel, errors, buttons } = r;
  let mark = panel.lines.length;
  const before = driver.stats();
  // A CRC error with our header: NAK BAD_CRC (so the panel may resend); no button.
  panel.send('badcrc 02 0001');
  t.match(await panel.waitLine(/^rx NAK /, 3000, mark), new RegExp(`nak_type=2 reason=${NAK.BAD_CRC}$`));
  // Garbage, then a delimiter: not valid COBS, so counted as a partial frame, dropped, no NAK (nothing to trust).
  panel.send(`raw ${'a5'.repeat(20)}00`);
  // A partial frame (no delimiter): dropped after the inter-byte timeout, then a good frame.
  const half = hex(encodeMessage({ type: 'BUTTON', id: 1, pressed: true }, 99).subarray(0, 4));
  panel.send(`raw ${half}`);
  await sleep(300); // past the driver's inter-byte timeout (100 ms)
  panel.send('click 1');
  await until(() => buttons.length === 2, 3000, 'the click after the partial frame');
  t.match(buttons, [{ id: 1, pressed: true }, { id: 1, pressed: false }], 'good frames still get through');
  // Oversized: a run longer than any frame.
  panel.send(`raw ${'41'.repeat(80)}00`);
  // Wrong version, wrong length, a button the layout does not have, a module message from the panel.
  mark = panel.lines.length;
  panel.send('version 2 02 0001');
  panel.send('send 02 000102');
  panel.send('send 02 0901');
  panel.send('send 22 0101010101');
  panel.send('send 02 0102');
  await until(() => panel.matching(/^rx NAK /, mark).length === 5, 3000, 'five NAKs');
  t.same(panel.matching(/^rx NAK /, mark).map((l) => l.replace(/.*nak_type=(\d+) reason=(\d+)$/, '$1:$2')),
    [`2:${NAK.BAD_VERSION}`, `2:${NAK.BAD_LENGTH}`, `2:${NAK.BAD_VALUE}`, `34:${NAK.UNKNOWN_TYPE}`, `2:${NAK.BAD_VALUE}`]);
  // A repeat (same seq and payload): ACKed again, not acted on twice.
  mark = panel.lines.length;
  panel.send('press 5');
  panel.send('repeat');
  await until(() => panel.matching(/^rx ACK .* ack_type=2$/, mark).length === 2, 3000, 'both ACKed');
  await sleep(50);
  t.equal(buttons.filter((b) => b.id === 5).length, 1, 'the repeat is not a second press');
  const s = driver.stats();
  t.match(s, {
    // Partial: the garbage run (not valid COBS) and the half frame.
    crcErrors: before.crcErrors + 1, partialFrames: before.partialFrames + 2, oversized: before.oversized + 1, duplicates: 1,
    unknownTypes: before.unknownTypes + 1, badPayloads: before.badPayloads + 4,
  });
  t.ok(s.garbageBytes - before.garbageBytes >= 20 + 1 + 4 + 81, `garbage counted (${s.garbageBytes - before.garbageBytes} bytes)`);
  t.equal(s.frameBytes + s.garbageBytes, s.bytesIn, 'every byte received is in a frame or counted as garbage');
  t.same([...new Set(errors.map((e) => e.code))].sort(), ['bad-length', 'bad-value', 'bad-version', 'unknown-type']);
  t.match(errors.find((e) => e.code === 'bad-version')!.message, 'a frame of protocol version 2 (this module speaks 1) (seq');
  t.equal(driver.stats().connected, true, 'still connected');
});

t.test('driver -> C panel: the panel checks the CRC and NAKs what it cannot take', async (t) => {
  const r = await rig(t);
  if (!r) return;
  const { driver, panel } = r;
  const mark = panel.lines.length;
  const naks: Array<{ type: number; reason: number }> = [];
  driver.on('nak', (n: { type: number; reason: number }) => naks.push(n));
  const leds = encodeMessage({ type: 'LEDS', modes: [1, 1, 1, 1, 1] }, 77);
  const bad = leds.slice();
  bad[5] ^= 0x10; // a payload byte: version, type and seq stay readable
  driver.sendRaw(bad);
  await panel.waitLine(/^bad crc type=34 seq=77/, 3000, mark);
  driver.sendRaw(encodeFrame(0x2f, 78, Uint8Array.of(1)));
  driver.sendRaw(encodeFrame(MSG.LEDS, 79, Uint8Array.of(1, 1, 1)));
  driver.sendRaw(encodeFrame(MSG.STATUS, 80, Uint8Array.of(0x41, 0x07)));
  driver.sendRaw(encodeFrame(MSG.LEDS, 81, Uint8Array.of(1, 1, 9, 1, 1)));
  driver.sendRaw(encodeFrame(MSG.WELCOME, 82, Uint8Array.of(1, 0, 1, 0xf4), 3));
  driver.sendRaw(Uint8Array.of(0x13, 0x37, 0x00, 0x00));
  await until(() => naks.length === 6, 3000, 'six NAKs from the panel');
  t.same(naks.map((n) => `${n.type}:${n.reason}`), [`34:${NAK.BAD_CRC}`, `47:${NAK.UNKNOWN_TYPE}`, `34:${NAK.BAD_LENGTH}`, `35:${NAK.BAD_VALUE}`, `34:${NAK.BAD_VALUE}`, `33:${NAK.BAD_VERSION}`]);
  t.ok(panel.matching(/^rx UNKNOWN seq=78 type=47/, mark).length === 1, 'the panel names the unknown type');
  panel.send('stats');
  t.match(await panel.waitLine(/^stats /, 3000, mark), /crc=1 partial=1 oversized=0$/, 'one CRC error and one partial frame, as injected');
  t.equal(driver.stats().naksReceived, 6);
});

t.test('a panel built from another layout is told so, and its buttons are refused until it matches', async (t) => {
  const r = await rig(t);
  if (!r) return;
  const { driver, panel, errors, buttons } = r;
  const mark = panel.lines.length;
  const gone = nextEvent<{ reason: string }>(driver, 'disconnected');
  // The rig's own WELCOME and STATUS (status=0, "sonomics") may still arrive after the mark: the
  // waits below look for the mismatch's own lines.
  panel.send('hello deadbeef');
  t.match(await gone, { reason: 'the panel was built from another layout' });
  t.match(await panel.waitLine(/^rx WELCOME .*status=1 /, 3000, mark), /status=1 /, 'WELCOME: layout mismatch');
  t.match(await panel.waitLine(/^rx STATUS .*LAYOUT MISMATCH/, 3000, mark), /LAYOUT MISMATCH: REFLASH/);
  const e = errors.find((x) => x.code === 'layout-mismatch')!;
  t.match(e.message, /generated from layout deadbeef, this module uses sonomics-bedside-panel 1\.0\.0 \([0-9a-f]{8}\): regenerate the firmware/);
  panel.send('press 1');
  t.match(await panel.waitLine(/^rx NAK .*nak_type=2 /, 3000, mark), new RegExp(`nak_type=2 reason=${NAK.NOT_READY}$`), 'NOT_READY');
  t.equal(buttons.length, 0);
  const back = nextEvent(driver, 'connected', 3000);
  panel.send('hello');
  await back;
  panel.send('click 1');
  await until(() => buttons.length === 2, 3000, 'buttons once the layout matches');
});
