// Fuzzing the panel's receiving side with seeded random bytes: into the decoder (any chunking)
// and through a pty into a connected PanelDriver. Nothing throws, every valid frame sent after a
// delimiter gets through, and the counters add up.
import t from 'tap';
import { decodePayload, encodeFrame, encodeMessage, FrameDecoder, MSG, type DecodeEvent } from '../device/panel/codec.js';
import { PanelDriver, type PanelButtonEvent } from '../device/panel/driver.js';
import { seededRandom } from '../core/random.js';
import { sleep, until } from './helpers.js';
import { nextEvent, ptyPair, requireTool, testDriverOptions, tmp, TsPanel } from './panel-helpers.js';

/** A stream of random garbage (each run ended by a delimiter, as a line idle between frames would end it) and valid frames. */
function fuzzStream(seed: number, frames: number): { bytes: Uint8Array; valid: Array<{ seq: number; id: number; pressed: boolean }>; anyType: number } {
  const rnd = seededRandom(seed);
  const out: number[] = [];
  const valid: Array<{ seq: number; id: number; pressed: boolean }> = [];
  let anyType = 0;
  const junk = (n: number, zeros: number) => { for (let i = 0; i < n; i++) out.push(rnd() < zeros ? 0 : Math.floor(rnd() * 256)); };
  for (let i = 0; i < frames; i++) {
    const r = rnd();
    if (r < 0.3) junk(Math.floor(rnd() * 80), 0.05); // noise
    else if (r < 0.4) junk(50 + Math.floor(rnd() * 400), 0); // oversized run
    else if (r < 0.5) { const w = encodeMessage({ type: 'BUTTON', id: 1, pressed: true }, 7); out.push(...w.subarray(0, 1 + Math.floor(rnd() * (w.length - 2)))); } // cut short
    else if (r < 0.6) { const w = encodeMessage({ type: 'SLIDER', id: 0, value: 5 }, 9).slice(); w[1 + Math.floor(rnd() * (w.length - 2))] ^= 1 + Math.floor(rnd() * 254); out.push(...w.subarray(0, -1)); } // corrupted
    else if (r < 0.65 && ++anyType) out.push(...encodeFrame(Math.floor(rnd() * 256), Math.floor(rnd() * 256), Uint8Array.from({ length: Math.floor(rnd() * 33) }, () => Math.floor(rnd() * 256))).subarray(0, -1)); // any type, any payload
    out.push(0);
    const v = { seq: i & 0xff, id: i % 7, pressed: i % 2 === 0 };
    valid.push(v);
    out.push(...encodeMessage({ type: 'BUTTON', id: v.id, pressed: v.pressed }, v.seq));
  }
  return { bytes: Uint8Array.from(out), valid, anyType };
}

t.test('decoder: random bytes with valid frames, any chunking: no throw, every valid frame, counters add up', async (t) => {
  for (const seed of [1, 2, 3, 42, 20261122]) {
    const { bytes, valid, anyType } = fuzzStream(seed, 2000);
    const rnd = seededRandom(seed + 1000);
    const runs: string[][] = [];
    for (const chunking of ['whole', 'random', 'bytes']) {
      const d = new FrameDecoder();
      const got: string[] = [];
      const sink = (e: DecodeEvent) => {
        got.push(e.kind === 'frame' ? `${e.frame.type}:${e.frame.seq}:${Buffer.from(e.frame.payload).toString('hex')}` : e.kind);
        // Whatever came through, the payload decoder takes it without throwing.
        if (e.kind === 'frame') decodePayload(e.frame.type, e.frame.payload);
      };
      if (chunking === 'whole') d.push(bytes, sink);
      else if (chunking === 'bytes') for (let i = 0; i < bytes.length; i++) d.push(bytes.subarray(i, i + 1), sink);
      else for (let i = 0; i < bytes.length;) { const n = 1 + Math.floor(rnd() * 200); d.push(bytes.subarray(i, i + n), sink); i += n; }
      const c = d.counters;
      t.equal(c.bytesIn, bytes.length);
      t.equal(c.frameBytes + c.garbageBytes + d.pending, c.bytesIn, `seed ${seed}, ${chunking}: frame bytes + garbage = bytes in`);
      // Every valid frame, in order (random runs may, rarely, make a valid frame of their own).
      const wanted = valid.map((v) => `${MSG.BUTTON}:${v.seq}:${Buffer.from([v.id, v.pressed ? 1 : 0]).toString('hex')}`);
      let k = 0;
      for (const g of got) if (k < wanted.length && g === wanted[k]) k++;
      t.equal(k, wanted.length, `seed ${seed}, ${chunking}: all ${wanted.length} valid frames delivered in order`);
      // The valid frames, the well-formed frames of any type and payload, and perhaps a run of noise that happens to be one.
      t.ok(c.frames >= valid.length + anyType && c.frames <= valid.length + anyType + 3, `frames ${c.frames} (${valid.length} buttons, ${anyType} of any type)`);
      t.ok(c.crcErrors > 50 && c.partialFrames > 50 && c.oversized > 50, `every kind of bad input seen (${c.crcErrors} CRC, ${c.partialFrames} partial, ${c.oversized} oversized)`);
      runs.push(got);
    }
    t.same(runs[1], runs[0], 'chunking does not change what is decoded');
    t.same(runs[2], runs[0]);
  }
});

t.test('driver over a pty: a fuzzed line, every valid button gets through, the counters add up, nothing throws', async (t) => {
  if (!requireTool(t, 'socat')) return;
  const pair = await ptyPair(t, tmp('panel-fuzz'));
  // Every garbage run ends with a delimiter here, so the inter-byte timeout has nothing to do;
  // a long one keeps a loaded test machine's pauses from cutting a frame.
  const driver = new PanelDriver(testDriverOptions(pair.a, { frameTimeoutMs: 2000, heartbeatTimeoutMs: 30000 }));
  const buttons: PanelButtonEvent[] = [];
  const errors: string[] = [];
  driver.on('button', (b: PanelButtonEvent) => buttons.push(b));
  driver.on('error', (e: Error) => errors.push(e.message));
  t.teardown(() => driver.stop());
  const panel = await TsPanel.open(t, pair.b);
  const synced = nextEvent(driver, 'synced', 5000);
  driver.start();
  panel.hello();
  await synced;
  await sleep(200);
  // Bytes written before the driver opened its end never reach it: count from here.
  const base = { in: driver.stats().bytesIn, out: panel.bytesOut, frames: driver.stats().frameBytes, garbage: driver.stats().garbageBytes };
  t.equal(base.in, base.frames + base.garbage);
  const { bytes, valid } = fuzzStream(7, 300);
  const rnd = seededRandom(8);
  for (let i = 0; i < bytes.length;) {
    const n = 1 + Math.floor(rnd() * 300);
    panel.write(bytes.subarray(i, i + n));
    i += n;
  }
  await until(() => buttons.length >= valid.length, 15000, `${valid.length} buttons`);
  let k = 0;
  for (const b of buttons) if (k < valid.length && b.seq === valid[k].seq && b.id === valid[k].id && b.pressed === valid[k].pressed) k++;
  t.equal(k, valid.length, `all ${valid.length} buttons, in order`);
  const s = driver.stats();
  await until(() => driver.stats().bytesIn - base.in === panel.bytesOut - base.out, 3000, 'every byte the panel wrote read');
  t.equal(s.frameBytes + s.garbageBytes, s.bytesIn, 'frame bytes + garbage = bytes in');
  t.ok(s.crcErrors > 10 && s.partialFrames > 10 && s.oversized > 10, `counted: ${s.crcErrors} CRC errors, ${s.partialFrames} partial, ${s.oversized} oversized, ${s.garbageBytes} garbage bytes`);
  t.equal(s.connected, true, 'still connected');
  t.ok(s.naksSent >= s.unknownTypes + s.badPayloads, 'what it refused it NAKed');
  t.ok(errors.every((e) => /^panel: /.test(e)), 'errors are panel errors');
});

t.test('without an error listener, bad frames become warnings, never a throw', async (t) => {
  if (!requireTool(t, 'socat')) return;
  const pair = await ptyPair(t, tmp('panel-warn'));
  const driver = new PanelDriver(testDriverOptions(pair.a, { heartbeatTimeoutMs: 30000 }));
  t.teardown(() => driver.stop());
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on('warning', onWarning);
  t.teardown(() => { process.off('warning', onWarning); });
  const panel = await TsPanel.open(t, pair.b);
  const connected = nextEvent(driver, 'connected', 5000);
  driver.start();
  panel.hello();
  await connected;
  panel.write(encodeFrame(0x0e, 1, Uint8Array.of(1, 2, 3)));
  panel.write(encodeFrame(MSG.BUTTON, 2, Uint8Array.of(99, 1)));
  await until(() => warnings.length >= 2, 3000, 'two warnings');
  t.match(warnings, [/panel: unknown message type 0x0e \(seq 1\): answered NAK UNKNOWN_TYPE/, /panel: BUTTON 99: layout sonomics-bedside-panel has buttons 0 to 6 \(seq 2\): answered NAK BAD_VALUE/]);
  await until(() => panel.got('NAK').length >= 2, 3000, 'two NAKs');
  t.match(panel.got('NAK'), [{ nakSeq: 1, nakType: 0x0e, reason: 1 }, { nakSeq: 2, nakType: MSG.BUTTON, reason: 5 }]);
});
