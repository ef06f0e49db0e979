// `sonomics panel-sim PATH`: plays the bedside panel from the keyboard, for testing the module's
// side at the bedside without the panel (or before its firmware exists): point it at the other
// end of a null-modem cable, a USB serial adapter, or a socat pty pair (docs/panel.md).
// Keys: 1-9 press and release the layout's buttons in order, + and - move the slider one step,
// h sends HELLO, q (or Ctrl-C, Ctrl-D, the end of input) quits. It answers the module as the
// firmware does (HELLO on HELLO_REQUEST, ACKs, NAKs, a HEARTBEAT every protocol.heartbeatMs) and
// prints what the module sends: the LEDs and the status line.
import { SerialPort } from 'serialport';
import {
  decodePayload, encodeMessage, FrameDecoder, LED_MODES, messageName, MESSAGES, NAK, nakName, PROTOCOL_VERSION, WELCOME_STATUS,
  type PanelMessage,
} from '../device/panel/codec.js';
import { layoutHash, loadPanelLayout, sliderRaw, sliderValue, type PanelLayout } from '../device/panel/layout.js';

export interface PanelSimOptions {
  /** The serial device to play the panel on. */
  path: string;
  /** Keystrokes (a TTY is switched to raw mode while the simulator runs). */
  in: NodeJS.ReadableStream;
  out: (line: string) => void;
  /** Default: the package's firmware-config/panel-layout.json. */
  layout?: PanelLayout;
  /** Default: the layout's protocol.baudRate. */
  baudRate?: number;
  /** Send heartbeats (default true). */
  heartbeat?: boolean;
  /** Firmware version it reports in HELLO (default 0.0.0: a simulator). */
  firmware?: [number, number, number];
}

/** Resolves when the user quits, the input ends or the port goes away; rejects when the port cannot be opened. */
export async function panelSim(opts: PanelSimOptions): Promise<void> {
  const layout = opts.layout ?? loadPanelLayout();
  const out = opts.out;
  const port = new SerialPort({ path: opts.path, baudRate: opts.baudRate ?? layout.protocol.baudRate, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(new Error(`panel-sim: cannot open ${opts.path}: ${e.message}`)) : resolve())));
  const s = layout.slider;
  let raw = sliderRaw(s, s.default);
  let seq = 0;
  const t0 = performance.now();
  const send = (m: PanelMessage) => {
    port.write(Buffer.from(encodeMessage(m, seq)));
    seq = (seq + 1) & 0xff;
  };
  const hello = () => send({
    type: 'HELLO', protocol: PROTOCOL_VERSION, firmware: opts.firmware ?? [0, 0, 0], layoutHash: layoutHash(layout), buttons: layout.buttons.length, leds: layout.leds.length,
  });
  const keys = layout.buttons.slice(0, 9).map((b, i) => `${i + 1} ${b.label ?? b.name}`).join(', ');
  out(`panel-sim on ${opts.path} (layout ${layout.name} ${layout.version}): keys ${keys}; + - slider (${s.label ?? s.controls}); h hello; q quit`);

  const decoder = new FrameDecoder();
  port.on('data', (chunk: Buffer) => decoder.push(chunk, (e) => {
    if (e.kind === 'crc') out(`< bad frame (CRC error, type 0x${e.type.toString(16)})`);
    if (e.kind !== 'frame') return;
    const f = e.frame;
    const name = messageName(f.type);
    const refuse = (reason: number, why: string) => {
      out(`< refused ${why}: NAK ${nakName(reason)}`);
      send({ type: 'NAK', nakSeq: f.seq, nakType: f.type, reason });
    };
    if (f.version !== PROTOCOL_VERSION) return refuse(NAK.BAD_VERSION, `protocol version ${f.version}`);
    if (!name || MESSAGES[name].direction === 'panel-to-module') return refuse(NAK.UNKNOWN_TYPE, `type 0x${f.type.toString(16)}`);
    const d = decodePayload(f.type, f.payload);
    if (!d.ok) return refuse(d.reason, d.problem);
    const m = d.msg;
    const ack = () => send({ type: 'ACK', ackSeq: f.seq, ackType: f.type });
    switch (m.type) {
      case 'HELLO_REQUEST': hello(); return;
      case 'WELCOME':
        out(`< welcome: ${m.status === WELCOME_STATUS.OK ? 'connected' : m.status === WELCOME_STATUS.LAYOUT_MISMATCH ? 'LAYOUT MISMATCH' : 'PROTOCOL MISMATCH'} (heartbeat ${m.heartbeatMs} ms)`);
        ack();
        return;
      case 'LEDS':
        if (m.modes.length !== layout.leds.length) return refuse(NAK.BAD_LENGTH, `LEDS with ${m.modes.length} LEDs (layout has ${layout.leds.length})`);
        out(`< leds ${layout.leds.map((l, k) => `${l.name}=${LED_MODES[m.modes[k]]}`).join(' ')}`);
        ack();
        return;
      case 'STATUS':
        out(`< status "${m.text}"`);
        ack();
        return;
      case 'NAK':
        out(`< nak: the module refused ${messageName(m.nakType) ?? m.nakType} seq ${m.nakSeq}: ${nakName(m.reason)}`);
        return;
      default:
        return;
    }
  }));

  const beat = opts.heartbeat === false ? undefined : setInterval(() => send({ type: 'HEARTBEAT', uptimeMs: Math.round(performance.now() - t0) >>> 0, rxErrors: 0 }), layout.protocol.heartbeatMs);
  hello();

  const input = opts.in as NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (on: boolean) => void };
  const tty = input.isTTY === true && typeof input.setRawMode === 'function';
  if (tty) input.setRawMode!(true);
  await new Promise<void>((resolve) => {
    let done = false;
    const finish = (why?: string) => {
      if (done) return;
      done = true;
      if (why) out(why);
      input.off('data', onKeys);
      input.off('end', onEnd);
      // Stop reading (process.stdin would otherwise keep the command running).
      input.pause();
      resolve();
    };
    const slide = (dir: 1 | -1) => {
      const step = s.step ?? (s.max - s.min) / 20;
      const value = Math.min(s.max, Math.max(s.min, sliderValue(s, raw) + dir * step));
      raw = sliderRaw(s, value);
      send({ type: 'SLIDER', id: 0, value: raw });
      out(`> slider ${value} (raw ${raw})`);
    };
    const onKeys = (chunk: Buffer | string) => {
      for (const ch of String(chunk)) {
        if (ch === 'q' || ch === '\x03' || ch === '\x04') return finish('bye');
        if (ch === 'h') { hello(); out('> hello'); continue; }
        if (ch === '+' || ch === '=') { slide(1); continue; }
        if (ch === '-' || ch === '_') { slide(-1); continue; }
        const k = ch.charCodeAt(0) - 0x31;
        if (k >= 0 && k < 9 && k < layout.buttons.length) {
          const b = layout.buttons[k];
          send({ type: 'BUTTON', id: b.id, pressed: true });
          send({ type: 'BUTTON', id: b.id, pressed: false });
          out(`> ${b.label ?? b.name} (${b.action})`);
        }
      }
    };
    const onEnd = () => finish();
    input.on('data', onKeys);
    input.on('end', onEnd);
    port.once('close', (e: Error | null) => finish(`the port closed${e ? `: ${e.message}` : ''}`));
  });
  if (tty) input.setRawMode!(false);
  if (beat) clearInterval(beat);
  if (port.isOpen) await new Promise<void>((r) => port.close(() => r()));
}

/** The command's help text (for cli/main.ts). */
export const PANEL_SIM_HELP = `Usage: sonomics panel-sim PATH [--layout FILE] [--baud N]

Plays the bedside panel on the serial device PATH from the keyboard: 1-9 press and release the
layout's buttons in order, + and - move the slider, h sends HELLO, q quits. Prints the LEDs and
the status line the module sends. Test without hardware over a pty pair:
  socat -d -d pty,raw,echo=0,link=/tmp/panel-module pty,raw,echo=0,link=/tmp/panel
  sonomics demo --panel /tmp/panel-module      # in one terminal
  sonomics panel-sim /tmp/panel                # in another
See docs/panel.md.
`;
