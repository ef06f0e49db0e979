// Helpers of the panel tests: socat pty pairs, the C panel simulator (compiled with gcc from the
// generated codec), a TypeScript panel on a pty, and bounded waits. Every process started here is
// killed by its own PID in the test's teardown. Under CI a missing tool fails the test.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import type { EventEmitter } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { SerialPort } from 'serialport';
import { decodePayload, encodeMessage, FrameDecoder, PROTOCOL_VERSION, type PanelMessage, type RawFrame } from '../device/panel/codec.js';
import { layoutHash, loadPanelLayout, type PanelLayout } from '../device/panel/layout.js';
import type { PanelDriverOptions } from '../device/panel/driver.js';
import { CI, fromRoot, gone, sleep } from './helpers.js';

/** The tool's path, or undefined (after failing the test under CI, or a SKIP comment elsewhere). */
export function requireTool(t: Test, tool: 'socat' | 'gcc'): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = join(dir, tool);
    if (existsSync(p)) return p;
  }
  const why = `${tool} is missing: install Debian's ${tool} (apt-get install -y ${tool}) to run the panel tests over a pty`;
  if (CI) t.fail(why);
  else t.comment(`SKIP: ${why}`);
  return undefined;
}

export const tmp = (what = 'panel') => mkdtempSync(join(tmpdir(), `sonomics-${what}-`));

/** Kills a child by its PID and waits (bounded) until it is gone. */
export async function killChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try { process.kill(pid, signal); } catch { return; }
  await Promise.race([exited, sleep(2000)]);
  if (!gone(pid)) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone meanwhile */ }
    await Promise.race([exited, sleep(2000)]);
  }
}

export interface PtyPair {
  /** The module's end and the panel's end (symlinks to /dev/pts/N made by socat). */
  a: string;
  b: string;
  pid: number;
  /** Kills socat by its PID (the links disappear: an unplug). */
  kill(): Promise<void>;
  /** Starts socat again with the same links (a replug). */
  restart(): Promise<void>;
}

/** A socat pty pair in dir, started and waited for (both links exist); killed in teardown. */
export async function ptyPair(t: Test, dir: string): Promise<PtyPair> {
  const a = join(dir, 'a'), b = join(dir, 'b');
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    const end = performance.now() + 5000;
    while (!(existsSync(a) && existsSync(b))) {
      if (performance.now() > end || child.exitCode !== null) throw new Error(`socat did not make the pty pair within 5 s: ${err.slice(-400)}`);
      await sleep(10);
    }
    pair.pid = child.pid!;
  };
  const pair: PtyPair = {
    a, b, pid: 0,
    kill: async () => { if (child) await killChild(child); },
    restart: start,
  };
  await start();
  t.teardown(() => pair.kill());
  return pair;
}

let simBinary: string | undefined;

/** The C panel simulator, compiled once per process from firmware-config/sim/panel_sim.c and the generated codec. */
export function buildSim(): string {
  if (simBinary) return simBinary;
  const out = join(tmp('panel-sim'), 'panel_sim');
  const gen = fromRoot('firmware-config', 'generated');
  execFileSync('gcc', ['-std=c99', '-Wall', '-Wextra', '-Wpedantic', '-Werror', '-O2', '-I', gen,
    fromRoot('firmware-config', 'sim', 'panel_sim.c'), join(gen, 'panel_codec.c'), '-o', out], { stdio: 'pipe' });
  return (simBinary = out);
}

/** The C panel on a tty: commands on its stdin, one line per event on its stdout. */
export class CPanel {
  readonly lines: string[] = [];
  private readonly child: ChildProcess;
  private buf = '';

  constructor(t: Test, tty: string, args: string[] = []) {
    this.child = spawn(buildSim(), [tty, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => {
      this.buf += d.toString();
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        this.lines.push(this.buf.slice(0, nl));
        this.buf = this.buf.slice(nl + 1);
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => this.lines.push(`stderr ${d.toString().trim()}`));
    // Writes to a panel that has exited are dropped (an unplug test kills its line).
    this.child.stdin!.on('error', () => undefined);
    t.teardown(() => this.kill());
  }

  get pid(): number { return this.child.pid!; }
  get exited(): boolean { return this.child.exitCode !== null || this.child.signalCode !== null; }

  send(cmd: string): void {
    if (!this.exited) this.child.stdin!.write(`${cmd}\n`);
  }

  /** Lines matching re from index `from` on. */
  matching(re: RegExp, from = 0): string[] {
    return this.lines.slice(from).filter((l) => re.test(l));
  }

  /** Waits (bounded) for a line matching re after index `from`; returns it. */
  async waitLine(re: RegExp, ms = 3000, from = 0): Promise<string> {
    const end = performance.now() + ms;
    for (;;) {
      const hit = this.lines.slice(from).find((l) => re.test(l));
      if (hit) return hit;
      if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for a panel line ${re}; last lines:\n  ${this.lines.slice(-12).join('\n  ')}`);
      await sleep(5);
    }
  }

  kill(): Promise<void> {
    return killChild(this.child);
  }
}

/** A panel written in TypeScript on a pty end: answers like the firmware, records what it gets. */
export class TsPanel {
  readonly received: Array<{ frame: RawFrame; msg?: PanelMessage; at: number }> = [];
  readonly decoder = new FrameDecoder();
  readonly port: SerialPort;
  /** Bytes written to the line. */
  bytesOut = 0;
  private seq = 0;

  private constructor(port: SerialPort, readonly layout: PanelLayout, readonly autoAnswer: boolean) {
    this.port = port;
    port.on('data', (chunk: Buffer) => this.decoder.push(chunk, (e) => {
      if (e.kind !== 'frame') return;
      const d = decodePayload(e.frame.type, e.frame.payload);
      const msg = d.ok ? d.msg : undefined;
      this.received.push({ frame: e.frame, msg, at: performance.now() });
      if (!this.autoAnswer || !msg) return;
      if (msg.type === 'HELLO_REQUEST') this.hello();
      else if (msg.type === 'LEDS' || msg.type === 'STATUS' || msg.type === 'WELCOME') this.send({ type: 'ACK', ackSeq: e.frame.seq, ackType: e.frame.type });
    }));
  }

  static async open(t: Test, path: string, o: { layout?: PanelLayout; autoAnswer?: boolean } = {}): Promise<TsPanel> {
    const layout = o.layout ?? loadPanelLayout();
    const port = new SerialPort({ path, baudRate: layout.protocol.baudRate, autoOpen: false });
    await new Promise<void>((res, rej) => port.open((e) => (e ? rej(e) : res())));
    const p = new TsPanel(port, layout, o.autoAnswer ?? true);
    t.teardown(() => p.close());
    return p;
  }

  send(m: PanelMessage, seq?: number): Uint8Array {
    const wire = encodeMessage(m, seq ?? this.seq);
    if (seq === undefined) this.seq = (this.seq + 1) & 0xff;
    this.write(wire);
    return wire;
  }

  write(bytes: Uint8Array): void {
    this.bytesOut += bytes.length;
    this.port.write(Buffer.from(bytes));
  }

  hello(hash = layoutHash(this.layout)): void {
    this.send({ type: 'HELLO', protocol: PROTOCOL_VERSION, firmware: [9, 9, 9], layoutHash: hash, buttons: this.layout.buttons.length, leds: this.layout.leds.length });
  }

  press(id: number, pressed = true): Uint8Array {
    return this.send({ type: 'BUTTON', id, pressed });
  }

  /** Messages of a type received so far. */
  got<T extends PanelMessage['type']>(type: T): Array<Extract<PanelMessage, { type: T }>> {
    return this.received.filter((r) => r.msg?.type === type).map((r) => r.msg as Extract<PanelMessage, { type: T }>);
  }

  close(): Promise<void> {
    return new Promise((r) => (this.port.isOpen ? this.port.close(() => r()) : r()));
  }
}

/** Driver options for tests: short timeouts, the given path. */
export function testDriverOptions(path: string, more: Partial<PanelDriverOptions> = {}): PanelDriverOptions {
  return { path, baudRate: 115200, reconnect: { initialMs: 50, maxMs: 400 }, heartbeatTimeoutMs: 1500, helloRetryMs: 200, ...more };
}

/** Resolves with the arguments of the next `event` (for which pred holds) within ms; rejects naming it otherwise. */
export function nextEvent<T = unknown>(em: EventEmitter, event: string, ms = 3000, pred: (v: T) => boolean = () => true): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const on = (v: T) => {
      if (!pred(v)) return;
      clearTimeout(timer);
      em.off(event, on);
      resolve(v);
    };
    const timer = setTimeout(() => { em.off(event, on); reject(new Error(`timed out after ${ms} ms waiting for '${event}'`)); }, ms);
    em.on(event, on);
  });
}
