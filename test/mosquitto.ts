// Test harness for MQTT telemetry: a real mosquitto broker on a free 127.0.0.1 port, with its
// config, certificates and password file in a temporary folder, started and stopped by its own
// PID; a subscriber that records every message; a publisher in a child process (so a test can
// SIGKILL it by its PID). Every wait is bounded. Under CI a missing mosquitto or openssl fails the
// test (it never skips there).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import type { Test } from 'tap';
import { TelemetryPublisher, type TelemetryOptions } from '../device/telemetry/publisher.js';
import { checkNoPatientData, schemaProblems } from '../device/telemetry/schema.js';
import { CI, gone, sleep, waitFor, within } from './helpers.js';

export const MOSQUITTO = '/usr/sbin/mosquitto';
export const MOSQUITTO_PASSWD = '/usr/bin/mosquitto_passwd';
const TOOLS: Record<string, string> = {
  mosquitto: `${MOSQUITTO} is missing: install Debian's mosquitto (apt-get install -y mosquitto) to run the MQTT telemetry tests`,
  mosquitto_passwd: `${MOSQUITTO_PASSWD} is missing: it comes with Debian's mosquitto package`,
  openssl: 'openssl is missing: install Debian\'s openssl to make the test certificates',
};

function which(cmd: string): boolean {
  if (cmd === 'mosquitto') return existsSync(MOSQUITTO);
  if (cmd === 'mosquitto_passwd') return existsSync(MOSQUITTO_PASSWD);
  try {
    execFileSync(cmd, ['version'], { stdio: 'ignore', timeout: 10000 });
    return true;
  } catch {
    return false;
  }
}

/** True when every tool is there; otherwise fails the test under CI, or notes a SKIP elsewhere. */
export function haveTools(t: Test, tools: Array<'mosquitto' | 'mosquitto_passwd' | 'openssl'>): boolean {
  const missing = tools.filter((x) => !which(x));
  for (const m of missing) {
    if (CI) t.fail(TOOLS[m]);
    else t.comment(`SKIP: ${TOOLS[m]}`);
  }
  return missing.length === 0;
}

/** A port nobody listens on at the moment (the broker may still race another process for it: start retries). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves when something accepts TCP connections on the port; false after ms. */
export async function listening(port: number, ms: number, alive: () => boolean = () => true): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end && alive()) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = tcpConnect({ host: '127.0.0.1', port });
      const done = (v: boolean) => { sock.destroy(); resolve(v); };
      sock.once('connect', () => done(true));
      sock.once('error', () => done(false));
      sock.setTimeout(500, () => done(false));
    });
    if (ok) return true;
    await sleep(25);
  }
  return false;
}

export interface Certs {
  dir: string;
  /** The test CA that signed the server and client certificates. */
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** Another CA, which signed nothing here: a client trusting it must refuse the broker. */
  wrongCa: string;
}

const openssl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30000 });
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A CA, a server certificate for IP 127.0.0.1, a client certificate, and an unrelated CA (EC P-256, valid 2 days). */
export function makeCerts(dir: string): Certs {
  const caExt = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'];
  openssl(['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=sonomics test CA', ...caExt], dir);
  openssl(['req', '-x509', ...EC, '-keyout', 'wrong-ca.key', '-out', 'wrong-ca.pem', '-days', '2', '-subj', '/CN=some other CA', ...caExt], dir);
  const leaf = (name: string, cn: string, ext: string) => {
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`], dir);
  };
  leaf('server', '127.0.0.1', 'basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'sonomics-test-box', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
  return {
    dir, ca: join(dir, 'ca.pem'), serverCert: join(dir, 'server.pem'), serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.pem'), clientKey: join(dir, 'client.key'), wrongCa: join(dir, 'wrong-ca.pem'),
  };
}

export interface BrokerOptions {
  /** A TLS listener (test CA, server certificate for 127.0.0.1) that requires a client certificate. */
  tls?: boolean;
  /** Users and passwords (mosquitto_passwd -b): anonymous clients are then refused. */
  users?: Record<string, string>;
  /** Keep sessions and queued messages across a restart (saved on SIGTERM). Used for test subscribers' sessions only. */
  persistence?: boolean;
}

/** A mosquitto broker on 127.0.0.1. stop() and kill() end it by its PID; start() brings it back on the same port. */
export class Broker {
  readonly host = '127.0.0.1';
  port = 0;
  readonly dir: string;
  readonly certs?: Certs;
  private child: ChildProcess | undefined;
  private log = '';
  private readonly conf: string;

  constructor(readonly opts: BrokerOptions = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'sonomics-mqtt-'));
    this.conf = join(this.dir, 'mosquitto.conf');
    if (opts.tls) this.certs = makeCerts(this.dir);
    if (opts.users) {
      const file = join(this.dir, 'passwd');
      Object.entries(opts.users).forEach(([user, pw], i) => {
        execFileSync(MOSQUITTO_PASSWD, [...(i === 0 ? ['-c'] : []), '-b', file, user, pw], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10000 });
      });
    }
  }

  get url(): string { return `${this.opts.tls ? 'mqtts' : 'mqtt'}://${this.host}:${this.port}`; }
  get pid(): number | undefined { return this.child?.pid; }
  get running(): boolean { return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null; }
  /** The broker's log so far (for failure messages). */
  get output(): string { return this.log; }

  private writeConfig(): void {
    const lines = [
      'per_listener_settings true',
      `persistence ${this.opts.persistence ? 'true' : 'false'}`,
      `persistence_location ${this.dir}/`,
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      'connection_messages true',
      // Run as root (CI), mosquitto would switch to the mosquitto user, which cannot read this folder.
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      `listener ${this.port} ${this.host}`,
      ...(this.opts.users ? ['allow_anonymous false', `password_file ${join(this.dir, 'passwd')}`] : ['allow_anonymous true']),
      ...(this.certs ? [
        `cafile ${this.certs.ca}`, `certfile ${this.certs.serverCert}`, `keyfile ${this.certs.serverKey}`,
        'require_certificate true', 'tls_version tlsv1.2',
      ] : []),
    ];
    writeFileSync(this.conf, lines.join('\n') + '\n');
  }

  /** Starts the broker (on a new free port the first time, the same port after) and waits until it accepts connections. */
  async start(limitMs = 10000): Promise<void> {
    if (this.running) return;
    const fresh = this.port === 0;
    const end = performance.now() + limitMs;
    for (let attempt = 0; ; attempt++) {
      if (fresh) this.port = await freePort();
      this.writeConfig();
      const child = spawn(MOSQUITTO, ['-c', this.conf], { stdio: ['ignore', 'pipe', 'pipe'] });
      this.child = child;
      const keep = (d: Buffer) => { this.log = (this.log + d.toString()).slice(-16000); };
      child.stdout!.on('data', keep);
      child.stderr!.on('data', keep);
      if (await listening(this.port, Math.max(500, end - performance.now()), () => this.running)) return;
      await this.stop();
      // The port was taken meanwhile (first start), or is not free again yet (restart): try again, bounded.
      if (performance.now() > end || attempt >= 20) throw new Error(`mosquitto did not start on 127.0.0.1:${this.port}:\n${this.log}`);
      await sleep(100);
    }
  }

  /** Ends the broker by its PID: SIGTERM (it saves its persistence), SIGKILL after limitMs. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', limitMs = 5000): Promise<void> {
    const child = this.child;
    if (!child || !child.pid) return;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      process.kill(child.pid, signal);
      const timer = setTimeout(() => { if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL'); }, limitMs);
      await exited;
      clearTimeout(timer);
    }
    this.child = undefined;
  }

  /** Stops the broker and removes its folder. */
  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A started broker that the test tears down; undefined when mosquitto (or openssl for TLS) is
 * missing outside CI (a SKIP comment). Under CI a missing tool fails the test.
 */
export async function startBroker(t: Test, opts: BrokerOptions = {}): Promise<Broker | undefined> {
  const tools: Array<'mosquitto' | 'mosquitto_passwd' | 'openssl'> = ['mosquitto'];
  if (opts.tls) tools.push('openssl');
  if (opts.users) tools.push('mosquitto_passwd');
  if (!haveTools(t, tools)) return undefined;
  const b = new Broker(opts);
  t.teardown(() => b.close());
  await b.start();
  return b;
}

// ---- Publishers under test ----------------------------------------------------------------------

/** The topic prefix the telemetry tests publish under. */
export const PREFIX = 'sonomics-test';

/** A temporary folder removed at the end of the test. */
export function tmp(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'sonomics-telemetry-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A publisher with the tests' quick timings and its own spool, stopped at the end of the test. */
export function publisher(t: Test, o: Partial<TelemetryOptions> & Pick<TelemetryOptions, 'url' | 'deviceId'>): TelemetryPublisher {
  const p = new TelemetryPublisher({ prefix: PREFIX, intervalMs: 200, reconnectMs: 300, spool: { dir: join(tmp(t), 'spool') }, ...o });
  t.teardown(() => p.stop());
  return p;
}

// ---- MQTT clients -------------------------------------------------------------------------------

export interface Seen {
  topic: string;
  text: string;
  json: Record<string, unknown> & { kind?: string; seq?: number; event?: string; state?: string; reason?: string; boot?: string; session?: string | null };
  retain: boolean;
  atMs: number;
}

/** An MQTT client subscribed to `filter` (QoS 1) that keeps every message it gets. */
export class Subscriber {
  readonly seen: Seen[] = [];
  private constructor(readonly client: MqttClient) {}

  static async open(url: string, filter: string, opts: IClientOptions = {}, limitMs = 10000): Promise<Subscriber> {
    const client = connect(url, { reconnectPeriod: 200, connectTimeout: 5000, ...opts });
    const s = new Subscriber(client);
    client.on('message', (topic, payload, packet) => {
      const text = payload.toString('utf8');
      let json: Seen['json'];
      try { json = JSON.parse(text); } catch { json = { unparsable: text }; }
      s.seen.push({ topic, text, json, retain: packet.retain, atMs: performance.now() });
    });
    client.on('error', () => { /* retried; the tests wait on what arrives */ });
    try {
      await within(new Promise<void>((resolve) => client.once('connect', () => resolve())), limitMs, `a subscriber to connect to ${url}`);
      await within(client.subscribeAsync(filter, { qos: 1 }), limitMs, `subscribing to ${filter}`);
    } catch (e) {
      client.end(true);
      throw e;
    }
    return s;
  }

  on(topicEnd: string): Seen[] { return this.seen.filter((m) => m.topic.endsWith(`/${topicEnd}`)); }

  async waitFor(pred: (m: Seen) => boolean, ms: number, what: string): Promise<Seen> {
    if (!(await waitFor(() => this.seen.some(pred), ms))) throw new Error(`timed out after ${ms} ms waiting for ${what}; seen ${this.seen.length} messages`);
    return this.seen.find(pred)!;
  }

  async close(): Promise<void> {
    await within(new Promise<void>((resolve) => this.client.end(true, {}, () => resolve())), 5000, 'the subscriber to close').catch(() => undefined);
  }
}

/** Every message checked against its schema and the no-patient-data rule: one assertion naming all problems. */
export function checkPayloads(t: Test, seen: readonly Seen[], what: string): void {
  const problems = seen.flatMap((m) => [...schemaProblems(m.json), ...checkNoPatientData(m.json)].map((p) => `${m.topic} #${m.json.seq ?? '-'}: ${p}`));
  t.same(problems, [], `${what}: ${seen.length} payloads match their schema and carry no patient data`);
}

/** Spool sequence numbers of the telemetry and event messages, in arrival order. */
export const seqs = (seen: readonly Seen[]) => seen.filter((m) => m.json.kind === 'telemetry' || m.json.kind === 'event').map((m) => m.json.seq as number);

/** Is `xs` (duplicates removed, first arrival kept) exactly lo, lo+1, ..., hi in order? Returns a description of what is wrong, or ''. */
export function contiguous(xs: readonly number[]): string {
  const firsts: number[] = [];
  const seenSet = new Set<number>();
  for (const x of xs) if (!seenSet.has(x)) { seenSet.add(x); firsts.push(x); }
  for (let i = 1; i < firsts.length; i++) {
    if (firsts[i] < firsts[i - 1]) return `out of order at ${firsts[i - 1]} -> ${firsts[i]}`;
    if (firsts[i] !== firsts[i - 1] + 1) return `missing ${firsts[i - 1] + 1}..${firsts[i] - 1}`;
  }
  return '';
}

const CHILD = `
const { TelemetryPublisher } = await import(process.env.SONOMICS_TEST_PUBLISHER_MODULE);
const p = new TelemetryPublisher(JSON.parse(process.env.SONOMICS_TEST_PUBLISHER_OPTIONS));
const out = (m) => process.stdout.write(JSON.stringify(m) + '\\n');
p.on('connect', () => out({ e: 'connect', boot: p.boot }));
p.on('disconnect', () => out({ e: 'disconnect' }));
p.on('connectError', (err) => out({ e: 'connectError', message: err.message }));
p.start();
setInterval(() => { const s = p.stats(); out({ e: 'stats', connected: s.connected, spooled: s.spooled, published: s.published, nextId: s.spool.nextId }); }, 100);
`;

export interface ChildLine { e: string; [k: string]: unknown }

/** A TelemetryPublisher in a child process (node -e), reporting on stdout one JSON line per event and its stats every 100 ms. */
export class PublisherChild {
  readonly lines: ChildLine[] = [];
  readonly child: ChildProcess;
  private err = '';

  constructor(t: Test, opts: TelemetryOptions) {
    const module = new URL('../device/telemetry/publisher.js', import.meta.url).href;
    this.child = spawn(process.execPath, ['--input-type=module', '-e', CHILD], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SONOMICS_TEST_PUBLISHER_MODULE: module, SONOMICS_TEST_PUBLISHER_OPTIONS: JSON.stringify(opts) },
    });
    let buf = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try { this.lines.push(JSON.parse(line)); } catch { this.err += `${line}\n`; }
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => { this.err = (this.err + d.toString()).slice(-8000); });
    t.teardown(() => this.kill());
  }

  get pid(): number { return this.child.pid!; }
  get stderr(): string { return this.err; }
  get lastStats(): ChildLine | undefined { return this.lines.filter((l) => l.e === 'stats').at(-1); }

  async waitLine(pred: (l: ChildLine) => boolean, ms: number, what: string): Promise<ChildLine> {
    if (!(await waitFor(() => this.lines.some(pred) || this.child.exitCode !== null, ms)) || !this.lines.some(pred))
      throw new Error(`timed out after ${ms} ms waiting for the child publisher: ${what} (exit ${this.child.exitCode}; stderr: ${this.err.slice(-2000)})`);
    return this.lines.find(pred)!;
  }

  /** SIGKILL by its PID; resolves when it is gone (bounded). */
  async kill(): Promise<void> {
    const pid = this.child.pid;
    if (!pid || this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    process.kill(pid, 'SIGKILL');
    await within(exited, 5000, 'the child publisher to die');
    await waitFor(() => gone(pid), 2000);
  }
}
