// The panel driver: the module's end of the serial line to the bedside panel (protocol v1,
// docs/panel.md), over serialport. It opens the configured port, or finds it by USB vendor and
// product id; asks the panel to identify (HELLO_REQUEST) and, on its HELLO, sends WELCOME and the
// whole state (LEDs and the status line), so a panel that was restarted, replugged or connected
// late shows what holds now. It re-opens a port that went away (unplug) with exponential backoff,
// notices a silent panel (heartbeat timeout), counts and drops garbage, partial frames, oversized
// runs and CRC errors, ACKs what it takes and NAKs what it cannot (unknown type, bad length, bad
// value, wrong version, CRC error with a plausible header, not ready). Bad bytes never throw.
import { EventEmitter } from 'node:events';
import { SerialPort } from 'serialport';
import {
  decodePayload, DELIMITER, encodeMessage, FrameDecoder, LED_MODES, messageName, MESSAGES, MSG, NAK, nakName, PROTOCOL_VERSION,
  toStatusLine, WELCOME_STATUS, type DecodeEvent, type LedMode, type PanelMessage, type RawFrame,
} from './codec.js';
import { hex32, layoutHash, loadPanelLayout, sliderValue, type PanelAction, type PanelLayout } from './layout.js';

/** What SerialPort.list() reports of a port (the fields the driver reads). */
export interface PortListing { path: string; vendorId?: string; productId?: string; manufacturer?: string; serialNumber?: string }

export interface PanelDriverOptions {
  /** The serial device (e.g. /dev/ttyACM0, /dev/ttyUSB0, a pty). */
  path?: string;
  /** Without a path: the first port with these USB ids (4 hex digits each) in SerialPort.list(). */
  usb?: { vendorId: string; productId: string };
  baudRate: number;
  /** Re-opening after the port went away or failed to open: initialMs, doubling up to maxMs. */
  reconnect: { initialMs: number; maxMs: number };
  /** Silence from the panel after which it counts as gone (it sends a HEARTBEAT every protocol.heartbeatMs). */
  heartbeatTimeoutMs: number;
  /** The panel layout (default: the package's firmware-config/panel-layout.json). */
  layout?: PanelLayout;
  /** An unfinished frame is dropped after this long without another byte (default 100 ms). */
  frameTimeoutMs?: number;
  /** HELLO_REQUEST is repeated this often until the panel says HELLO (default 1000 ms). */
  helloRetryMs?: number;
  /** LEDS and STATUS not acknowledged within this are sent again, twice at most (default 300 ms). */
  ackTimeoutMs?: number;
  /** Lists the serial ports (default SerialPort.list); for tests. */
  list?: () => Promise<PortListing[]>;
}

export type PanelErrorCode =
  | 'open-failed' | 'not-found' | 'port-lost' | 'port-error' | 'write-failed' | 'heartbeat-timeout' | 'layout-mismatch' | 'protocol-mismatch'
  | 'unknown-type' | 'bad-length' | 'bad-value' | 'bad-version' | 'not-ready' | 'nak' | 'not-acked';

export class PanelError extends Error {
  constructor(readonly code: PanelErrorCode, message: string) {
    super(`panel: ${message}`);
    this.name = 'PanelError';
  }
}

export interface PanelHello {
  firmware: string;
  protocol: number;
  layoutHash: string;
  /** The panel's firmware was generated from the layout this driver uses. */
  layoutMatches: boolean;
  buttons: number;
  leds: number;
}

export interface PanelButtonEvent { id: number; name: string; action: PanelAction; pressed: boolean; seq: number }
export interface PanelSliderEvent { id: number; raw: number; value: number; controls: PanelLayout['slider']['controls'] }

export interface PanelStats {
  state: PanelState;
  connected: boolean;
  path: string | null;
  /** Valid frames received / frames sent. */
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  /** Bytes of the valid frames received, delimiters included (bytesIn = frameBytes + garbageBytes + bytes of a frame still arriving). */
  frameBytes: number;
  bytesOut: number;
  garbageBytes: number;
  crcErrors: number;
  partialFrames: number;
  oversized: number;
  /** Frames refused for their type (unknown, or not a panel message), length, value or version. */
  unknownTypes: number;
  badPayloads: number;
  naksSent: number;
  naksReceived: number;
  acksReceived: number;
  /** BUTTON/SLIDER resent by the panel (same seq and payload within 1 s): acknowledged, not acted on twice. */
  duplicates: number;
  /** Times the port was opened again after it was lost or failed. */
  reconnects: number;
  heartbeatTimeouts: number;
}

export type PanelState = 'stopped' | 'waiting' | 'opening' | 'open' | 'ready';

const TICK_MS = 25;
const DUPLICATE_WINDOW_MS = 1000;
const ACK_TRIES = 3;

type Tracked = 'WELCOME' | 'LEDS' | 'STATUS';

/**
 * Events: 'open' (path), 'hello' (PanelHello), 'connected' (PanelHello & {path}), 'synced' (the
 * panel acknowledged the state sent on connect), 'disconnected' ({reason}), 'button'
 * (PanelButtonEvent), 'slider' (PanelSliderEvent), 'heartbeat' ({uptimeMs, rxErrors}), 'ack'
 * ({seq, type}), 'nak' ({seq, type, reason}), 'retry' ({attempt, delayMs, error}), 'error'
 * (PanelError). Without an 'error' listener, errors become process warnings: nothing on the line
 * can throw.
 */
export class PanelDriver extends EventEmitter {
  readonly layout: PanelLayout;
  readonly layoutHash: number;
  private readonly o: Required<Omit<PanelDriverOptions, 'path' | 'usb' | 'layout'>> & Pick<PanelDriverOptions, 'path' | 'usb'>;
  private port: SerialPort | undefined;
  private openPath: string | null = null;
  private st: PanelState = 'stopped';
  private connected = false;
  private readonly decoder = new FrameDecoder();
  private seqOut = 0;
  private attempt = 0;
  private opened = 0;
  private reopenTimer: NodeJS.Timeout | undefined;
  private frameTimer: NodeJS.Timeout | undefined;
  private tick: NodeJS.Timeout | undefined;
  private lastRx = 0;
  private lastHelloRequest = -Infinity;
  private lastOpenError = '';
  private readonly ledModes: LedMode[];
  private statusLine = 'sonomics';
  private readonly outstanding = new Map<number, { type: Tracked; at: number; tries: number }>();
  private syncing = false;
  private readonly accepted = new Map<number, { seq: number; key: string; at: number }>();
  private counters = { framesOut: 0, bytesOut: 0, unknownTypes: 0, badPayloads: 0, naksSent: 0, naksReceived: 0, acksReceived: 0, duplicates: 0, reconnects: 0, heartbeatTimeouts: 0 };

  constructor(opts: PanelDriverOptions) {
    super();
    if (!opts.path && !opts.usb) throw new RangeError('panel: give a port path or USB vendor/product ids');
    if (!(opts.reconnect.initialMs > 0) || !(opts.reconnect.maxMs >= opts.reconnect.initialMs))
      throw new RangeError(`panel: reconnect.initialMs must be > 0 and maxMs >= initialMs (got ${opts.reconnect.initialMs}, ${opts.reconnect.maxMs})`);
    this.layout = opts.layout ?? loadPanelLayout();
    this.layoutHash = layoutHash(this.layout);
    this.o = {
      path: opts.path, usb: opts.usb, baudRate: opts.baudRate, reconnect: { ...opts.reconnect }, heartbeatTimeoutMs: opts.heartbeatTimeoutMs,
      frameTimeoutMs: opts.frameTimeoutMs ?? 100, helloRetryMs: opts.helloRetryMs ?? 1000, ackTimeoutMs: opts.ackTimeoutMs ?? 300,
      list: opts.list ?? (() => SerialPort.list() as Promise<PortListing[]>),
    };
    this.ledModes = this.layout.leds.map(() => 'off');
  }

  get state(): PanelState { return this.st; }
  get isConnected(): boolean { return this.connected; }

  /** Opens the port (and keeps re-opening it until stop()). */
  start(): this {
    if (this.st !== 'stopped') return this;
    this.st = 'waiting';
    this.tick = setInterval(() => this.onTick(), TICK_MS);
    this.tick.unref();
    void this.open();
    return this;
  }

  /** Closes the port and stops re-opening it. */
  async stop(): Promise<void> {
    this.st = 'stopped';
    clearInterval(this.tick);
    clearTimeout(this.reopenTimer);
    clearTimeout(this.frameTimer);
    const port = this.port;
    this.port = undefined;
    if (this.connected) {
      this.connected = false;
      this.emit('disconnected', { reason: 'driver stopped' });
    }
    if (port?.isOpen) await new Promise<void>((r) => port.close(() => r()));
  }

  /** Sets LEDs by name (others keep their mode); sent at once when connected and changed. */
  setLeds(modes: Readonly<Record<string, LedMode>>): void {
    let changed = false;
    for (const [name, mode] of Object.entries(modes)) {
      const k = this.layout.leds.findIndex((l) => l.name === name);
      if (k < 0) throw new RangeError(`panel: no LED "${name}" in layout ${this.layout.name} (${this.layout.leds.map((l) => l.name).join(', ')})`);
      if (!LED_MODES.includes(mode)) throw new RangeError(`panel: LED mode must be one of ${LED_MODES.join(', ')} (got ${String(mode)})`);
      if (this.layout.leds[k].shows === 'link') continue; // the driver's own
      if (this.ledModes[k] !== mode) { this.ledModes[k] = mode; changed = true; }
    }
    if (changed && this.connected) this.sendTracked('LEDS');
  }

  /** The LED modes by name, as the panel shows them once in sync. */
  leds(): Record<string, LedMode> {
    return Object.fromEntries(this.layout.leds.map((l, k) => [l.name, this.modeOf(k)]));
  }

  /** Sets the status line (printable ASCII, cut to 32 characters); sent at once when connected and changed. */
  setStatus(text: string): void {
    const line = toStatusLine(text);
    if (line === this.statusLine) return;
    this.statusLine = line;
    if (this.connected) this.sendTracked('STATUS');
  }

  status(): string { return this.statusLine; }

  /** Bytes written as they are (diagnostics and tests: garbage, a corrupted frame). */
  sendRaw(bytes: Uint8Array): void {
    this.write(bytes);
  }

  stats(): PanelStats {
    const d = this.decoder.counters;
    return {
      state: this.st, connected: this.connected, path: this.openPath, framesIn: d.frames, bytesIn: d.bytesIn, frameBytes: d.frameBytes, garbageBytes: d.garbageBytes, crcErrors: d.crcErrors,
      partialFrames: d.partialFrames, oversized: d.oversized, ...this.counters,
    };
  }

  // --- the port -------------------------------------------------------------------------------

  private problem(code: PanelErrorCode, message: string): void {
    const e = new PanelError(code, message);
    if (this.listenerCount('error') > 0) this.emit('error', e);
    else process.emitWarning(e.message);
  }

  private async resolvePath(): Promise<string> {
    if (this.o.path) return this.o.path;
    const { vendorId, productId } = this.o.usb!;
    let ports: PortListing[];
    try {
      ports = await this.o.list();
    } catch (e) {
      throw new PanelError('not-found', `cannot list the serial ports: ${(e as Error).message}`);
    }
    const same = (a: string | undefined, b: string) => a !== undefined && a.toLowerCase() === b.toLowerCase();
    const hit = ports.find((p) => same(p.vendorId, vendorId) && same(p.productId, productId));
    if (!hit) {
      const seen = ports.filter((p) => p.vendorId).map((p) => `${p.path} ${p.vendorId}:${p.productId}`);
      throw new PanelError('not-found', `no serial port with USB id ${vendorId}:${productId} (${seen.length ? `found ${seen.join(', ')}` : 'no USB serial ports'})`);
    }
    return hit.path;
  }

  private async open(): Promise<void> {
    if (this.st === 'stopped') return;
    this.st = 'opening';
    let path: string;
    try {
      path = await this.resolvePath();
    } catch (e) {
      this.retry(e as PanelError);
      return;
    }
    if (this.st !== 'opening') return;
    const port = new SerialPort({ path, baudRate: this.o.baudRate, autoOpen: false });
    port.open((err) => {
      if (this.st !== 'opening') {
        if (!err) port.close();
        return;
      }
      if (err) {
        // serialport says "Error: No such file or directory, cannot open PATH": keep the reason.
        this.retry(new PanelError('open-failed', `cannot open ${path}: ${err.message.replace(/^Error: /, '').replace(/, cannot open .*$/, '')}`));
        return;
      }
      this.attach(port, path);
    });
  }

  private attach(port: SerialPort, path: string): void {
    this.port = port;
    this.openPath = path;
    this.st = 'open';
    if (this.opened++ > 0) this.counters.reconnects++;
    this.lastOpenError = '';
    this.decoder.flush();
    port.on('data', (chunk: Buffer) => this.onData(chunk));
    port.on('error', (e: Error) => this.problem('port-error', `${path}: ${e.message}`));
    port.on('close', (e: Error | null) => this.onClose(port, e));
    this.emit('open', path);
    // A lone delimiter ends whatever half frame the panel's receiver holds; then ask who is there.
    this.write(Uint8Array.of(DELIMITER));
    this.requestHello();
  }

  private onClose(port: SerialPort, err: Error | null): void {
    if (this.port !== port) return;
    this.port = undefined;
    clearTimeout(this.frameTimer);
    this.decoder.flush();
    this.outstanding.clear();
    if (this.st === 'stopped') return;
    // The driver closes its port only when stopping (above): any other close is the port going away,
    // with or without an error from the binding (a pty's master closing may read as a plain end).
    const reason = `${this.openPath} went away${err ? ` (${err.message})` : ''}`;
    this.problem('port-lost', reason);
    this.setDisconnected(reason);
    this.st = 'waiting';
    this.scheduleOpen(err?.message ?? 'closed');
  }

  private retry(e: PanelError): void {
    if (this.st === 'stopped') return;
    this.st = 'waiting';
    // One error per kind of failure; the attempts themselves are 'retry' events.
    if (e.message !== this.lastOpenError) this.problem(e.code, e.message.replace(/^panel: /, ''));
    this.lastOpenError = e.message;
    this.scheduleOpen(e.message);
  }

  private scheduleOpen(error: string): void {
    const { initialMs, maxMs } = this.o.reconnect;
    const delayMs = Math.min(maxMs, initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    this.emit('retry', { attempt: this.attempt, delayMs, error });
    clearTimeout(this.reopenTimer);
    // A retry alone does not keep the process alive (the command serving the pipeline does).
    this.reopenTimer = setTimeout(() => void this.open(), delayMs).unref();
  }

  private write(bytes: Uint8Array): boolean {
    const port = this.port;
    if (!port?.isOpen) return false;
    this.counters.bytesOut += bytes.length;
    port.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), (err) => {
      if (err && this.port === port) this.problem('write-failed', `writing to ${this.openPath}: ${err.message}`);
    });
    return true;
  }

  private send(m: PanelMessage): number {
    const seq = this.seqOut;
    if (!this.write(encodeMessage(m, seq))) return -1;
    this.seqOut = (seq + 1) & 0xff;
    this.counters.framesOut++;
    return seq;
  }

  private nak(seq: number, type: number, reason: number): void {
    this.counters.naksSent++;
    this.send({ type: 'NAK', nakSeq: seq, nakType: type, reason });
  }

  private requestHello(): void {
    this.lastHelloRequest = performance.now();
    this.send({ type: 'HELLO_REQUEST' });
  }

  private modeOf(k: number): LedMode {
    return this.layout.leds[k].shows === 'link' ? (this.connected ? 'on' : 'off') : this.ledModes[k];
  }

  /** LEDS, STATUS or WELCOME, tracked until acknowledged (a newer one of the same type replaces it). */
  private sendTracked(type: Tracked, tries = 1, welcomeStatus: number = WELCOME_STATUS.OK): void {
    for (const [seq, t] of this.outstanding) if (t.type === type) this.outstanding.delete(seq);
    const msg: PanelMessage = type === 'LEDS' ? { type, modes: this.layout.leds.map((_, k) => LED_MODES.indexOf(this.modeOf(k))) }
      : type === 'STATUS' ? { type, text: this.statusLine }
        : { type, protocol: PROTOCOL_VERSION, status: welcomeStatus, heartbeatMs: this.layout.protocol.heartbeatMs };
    const seq = this.send(msg);
    if (seq >= 0) this.outstanding.set(seq, { type, at: performance.now(), tries });
  }

  private setDisconnected(reason: string): void {
    if (!this.connected) return;
    this.connected = false;
    this.syncing = false;
    this.emit('disconnected', { reason });
  }

  // --- receiving ------------------------------------------------------------------------------

  private readonly sink = (e: DecodeEvent) => this.onDecoded(e);

  private onData(chunk: Buffer): void {
    this.decoder.push(chunk, this.sink);
    clearTimeout(this.frameTimer);
    if (this.decoder.pending > 0) this.frameTimer = setTimeout(() => this.decoder.flush(), this.o.frameTimeoutMs).unref();
  }

  private onDecoded(e: DecodeEvent): void {
    if (e.kind === 'frame') this.onFrame(e.frame);
    // A frame whose header looks like ours is NAKed so the panel may resend at once; other bad bytes are only counted.
    else if (e.kind === 'crc' && e.plausible && MESSAGES[messageName(e.type)!].direction !== 'module-to-panel') this.nak(e.seq, e.type, NAK.BAD_CRC);
  }

  private refuse(f: RawFrame, reason: number, code: PanelErrorCode, problem: string): void {
    if (reason === NAK.UNKNOWN_TYPE) this.counters.unknownTypes++;
    else this.counters.badPayloads++;
    this.nak(f.seq, f.type, reason);
    this.problem(code, `${problem} (seq ${f.seq}): answered NAK ${nakName(reason)}`);
  }

  private onFrame(f: RawFrame): void {
    this.lastRx = performance.now();
    if (f.version !== PROTOCOL_VERSION) {
      this.refuse(f, NAK.BAD_VERSION, 'bad-version', `a frame of protocol version ${f.version} (this module speaks ${PROTOCOL_VERSION})`);
      return;
    }
    const name = messageName(f.type);
    if (name && MESSAGES[name].direction === 'module-to-panel') {
      this.refuse(f, NAK.UNKNOWN_TYPE, 'unknown-type', `the panel sent ${name}, a module-to-panel message`);
      return;
    }
    const d = decodePayload(f.type, f.payload);
    if (!d.ok) {
      this.refuse(f, d.reason, d.reason === NAK.UNKNOWN_TYPE ? 'unknown-type' : d.reason === NAK.BAD_LENGTH ? 'bad-length' : 'bad-value', d.problem);
      return;
    }
    const m = d.msg;
    switch (m.type) {
      case 'HELLO': this.onHello(m); return;
      case 'HEARTBEAT':
        this.send({ type: 'ACK', ackSeq: f.seq, ackType: f.type });
        this.emit('heartbeat', { uptimeMs: m.uptimeMs, rxErrors: m.rxErrors });
        return;
      case 'ACK': {
        this.counters.acksReceived++;
        const t = this.outstanding.get(m.ackSeq);
        if (t && MSG[t.type] === m.ackType) {
          this.outstanding.delete(m.ackSeq);
          if (this.syncing && ![...this.outstanding.values()].some((o) => o.type !== 'WELCOME')) {
            this.syncing = false;
            this.emit('synced');
          }
        }
        this.emit('ack', { seq: m.ackSeq, type: m.ackType });
        return;
      }
      case 'NAK': {
        this.counters.naksReceived++;
        this.outstanding.delete(m.nakSeq);
        this.emit('nak', { seq: m.nakSeq, type: m.nakType, reason: m.reason });
        this.problem('nak', `the panel refused ${messageName(m.nakType) ?? `type 0x${m.nakType.toString(16)}`} seq ${m.nakSeq}: ${nakName(m.reason)}`);
        return;
      }
      case 'BUTTON':
      case 'SLIDER': {
        if (!this.connected) {
          this.refuse(f, NAK.NOT_READY, 'not-ready', `${m.type} before an accepted HELLO`);
          this.maybeRequestHello();
          return;
        }
        if (m.type === 'BUTTON' && m.id >= this.layout.buttons.length) {
          this.refuse(f, NAK.BAD_VALUE, 'bad-value', `BUTTON ${m.id}: layout ${this.layout.name} has buttons 0 to ${this.layout.buttons.length - 1}`);
          return;
        }
        if (m.type === 'SLIDER' && m.id !== 0) {
          this.refuse(f, NAK.BAD_VALUE, 'bad-value', `SLIDER ${m.id}: layout ${this.layout.name} has slider 0 only`);
          return;
        }
        this.send({ type: 'ACK', ackSeq: f.seq, ackType: f.type });
        if (this.duplicate(f)) return;
        if (m.type === 'BUTTON') {
          const b = this.layout.buttons[m.id];
          this.emit('button', { id: m.id, name: b.name, action: b.action, pressed: m.pressed, seq: f.seq } satisfies PanelButtonEvent);
        } else {
          const s = this.layout.slider;
          this.emit('slider', { id: m.id, raw: m.value, value: sliderValue(s, m.value), controls: s.controls } satisfies PanelSliderEvent);
        }
        return;
      }
      default:
        return;
    }
  }

  /** A BUTTON or SLIDER the panel sent again (same seq and payload within the window). */
  private duplicate(f: RawFrame): boolean {
    const key = Buffer.from(f.payload).toString('hex');
    const now = performance.now();
    const last = this.accepted.get(f.type);
    if (last && last.seq === f.seq && last.key === key && now - last.at < DUPLICATE_WINDOW_MS) {
      this.counters.duplicates++;
      return true;
    }
    this.accepted.set(f.type, { seq: f.seq, key, at: now });
    return false;
  }

  private onHello(m: Extract<PanelMessage, { type: 'HELLO' }>): void {
    const hello: PanelHello = {
      firmware: m.firmware.join('.'), protocol: m.protocol, layoutHash: hex32(m.layoutHash), layoutMatches: m.layoutHash === this.layoutHash,
      buttons: m.buttons, leds: m.leds,
    };
    this.emit('hello', hello);
    if (m.protocol !== PROTOCOL_VERSION) {
      this.sendTracked('WELCOME', 1, WELCOME_STATUS.PROTOCOL_MISMATCH);
      this.setDisconnected('the panel speaks another protocol version');
      this.problem('protocol-mismatch', `the panel (firmware ${hello.firmware}) speaks protocol version ${m.protocol}, this module ${PROTOCOL_VERSION}: update the panel's firmware`);
      return;
    }
    if (!hello.layoutMatches) {
      this.sendTracked('WELCOME', 1, WELCOME_STATUS.LAYOUT_MISMATCH);
      this.send({ type: 'STATUS', text: 'LAYOUT MISMATCH: REFLASH' });
      this.setDisconnected('the panel was built from another layout');
      this.problem('layout-mismatch', `the panel's firmware ${hello.firmware} was generated from layout ${hello.layoutHash}, this module uses ${this.layout.name} ${this.layout.version} (${hex32(this.layoutHash)}): ` +
        'regenerate the firmware from this layout (sonomics panel-firmware) and reflash it, or configure the layout it was built from; its buttons are refused (NAK NOT_READY) until then');
      return;
    }
    const was = this.connected;
    this.connected = true;
    this.st = 'ready';
    this.attempt = 0;
    // The whole state, whatever the panel showed before (it may have restarted).
    this.syncing = true;
    this.sendTracked('WELCOME');
    this.sendTracked('LEDS');
    this.sendTracked('STATUS');
    if (!was) this.emit('connected', { ...hello, path: this.openPath });
  }

  private maybeRequestHello(): void {
    if (this.port && performance.now() - this.lastHelloRequest >= this.o.helloRetryMs) this.requestHello();
  }

  private onTick(): void {
    if (!this.port) return;
    const now = performance.now();
    if (this.connected && now - this.lastRx > this.o.heartbeatTimeoutMs) {
      this.counters.heartbeatTimeouts++;
      const reason = `nothing from the panel for ${this.o.heartbeatTimeoutMs} ms (heartbeat timeout)`;
      this.st = 'open';
      this.setDisconnected(reason);
      this.problem('heartbeat-timeout', `${this.openPath}: ${reason}; asking it to say HELLO again`);
      this.outstanding.clear();
      this.requestHello();
      return;
    }
    if (!this.connected) this.maybeRequestHello();
    for (const [seq, t] of this.outstanding) {
      if (now - t.at < this.o.ackTimeoutMs) continue;
      this.outstanding.delete(seq);
      if (t.tries >= ACK_TRIES) {
        this.problem('not-acked', `the panel did not acknowledge ${t.type} (seq ${seq}) after ${ACK_TRIES} tries`);
        continue;
      }
      // The current state goes out again (not the old message).
      if (t.type !== 'WELCOME' && this.connected) this.sendTracked(t.type, t.tries + 1);
    }
  }
}
