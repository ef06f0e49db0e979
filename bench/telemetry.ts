// npm run bench:telemetry (see docs/telemetry.md#cost): what MQTT telemetry and /metrics cost.
//   1. The publisher's CPU at a 1 s interval (the budget: under 1 % of one core) and at
//      100 ms (10x the work, a figure well above the noise), against a local mosquitto, measured
//      with process.cpuUsage over BENCH_SECONDS (20) each, minus the same process idle over the
//      same time. The telemetry reads pipeline-like stats: eight latency windows of 2048 samples
//      each, as Pipeline.stats() sorts them; one more run reuses the summaries to show that share.
//      Idle windows alternate with the runs. With BENCH_FSYNC=1 a run with spool.fsync is added.
//   2. The work of one telemetry message, split: stats, payload, schema + patient-data check,
//      spool append (write(2)), MQTT publish and PUBACK.
//   3. One /metrics scrape (prom-client text of every figure and the Node.js process metrics).
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { LatencyRecorder } from '../core/latency.js';
import { STAGES, type PipelineStats, type StageName } from '../core/pipeline.js';
import { createMetrics } from '../device/telemetry/metrics.js';
import { TelemetryPublisher } from '../device/telemetry/publisher.js';
import { payloadProblems } from '../device/telemetry/schema.js';
import { Spool } from '../device/telemetry/spool.js';
import type { OverlayStats } from '../web-overlay/server.js';
import { Broker, MOSQUITTO } from '../test/mosquitto.js';
import { table } from './table.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 20);
const withFsync = process.env.BENCH_FSYNC === '1';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const f = (v: number, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : '-');

/** Pipeline-like stats: eight full latency windows, summarised (sorted) on every call as Pipeline.stats() does. */
function fakePipeline(): () => PipelineStats {
  const rec = (base: number) => {
    const r = new LatencyRecorder();
    for (let i = 0; i < 2048; i++) r.record(base * (0.5 + Math.random()));
    return r;
  };
  const stages = Object.fromEntries(STAGES.map((s, i) => [s, rec(1 + i)])) as Record<StageName, LatencyRecorder>;
  const display = rec(8), scores = rec(60);
  let n = 0;
  return () => {
    n += 30;
    return {
      received: n, duplicates: 0, frozen: 0, displayed: n, scored: n / 3, errors: 0, dropped: { display: 0, features: n / 2, risk: 0 },
      stages: Object.fromEntries(STAGES.map((s) => [s, stages[s].summary()])) as PipelineStats['stages'],
      endToEnd: { display: display.summary(), scores: scores.summary() },
    };
  };
}

/** CPU seconds of a process from /proc (utime + stime), for the broker's share. */
function procCpuS(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

interface Run { label: string; cpuPct: number; brokerPct: number; messages: number; wallS: number }

async function measure(label: string, broker: Broker, run: (() => Promise<() => Promise<number>>) | undefined): Promise<Run> {
  const stop = run ? await run() : async () => 0;
  await sleep(1000); // settle: connected, first messages out
  const c0 = process.cpuUsage(), b0 = procCpuS(broker.pid), t0 = performance.now();
  await sleep(seconds * 1000);
  const cpu = process.cpuUsage(c0), b1 = procCpuS(broker.pid), wallS = (performance.now() - t0) / 1000;
  const messages = await stop();
  return { label, cpuPct: ((cpu.user + cpu.system) / 1e6 / wallS) * 100, brokerPct: ((b1 - b0) / wallS) * 100, messages, wallS };
}

async function publisherRun(broker: Broker, intervalMs: number, o: { fsync?: boolean; light?: boolean } = {}): Promise<() => Promise<number>> {
  const dir = mkdtempSync(join(os.tmpdir(), 'sonomics-bench-telemetry-'));
  const full = fakePipeline();
  // "light": the latency summaries computed once and reused, to show what sorting them costs.
  const once = full();
  let n = 0;
  const stats = o.light ? (): PipelineStats => ({ ...once, received: (n += 30), displayed: n }) : full;
  const p = new TelemetryPublisher({
    url: broker.url, deviceId: `bench-${intervalMs}${o.fsync ? '-fsync' : ''}${o.light ? '-light' : ''}`, prefix: 'sonomics-bench', intervalMs,
    spool: { dir, fsync: o.fsync ?? false }, sources: { pipelineStats: stats, trackingState: () => 'tracking', sourceState: () => ({ id: 'phantom:1', state: 'live', fps: 30 }) },
  });
  p.start();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no connection to ${broker.url}`)), 10000);
    p.once('connect', () => { clearTimeout(timer); resolve(); });
  });
  return async () => {
    const published = p.stats().published;
    await p.stop();
    rmSync(dir, { recursive: true, force: true });
    return published;
  };
}

async function perMessage(broker: Broker): Promise<string[][]> {
  const N = 2000;
  const stats = fakePipeline();
  const time = (fn: () => void, n = N) => {
    const t0 = process.cpuUsage();
    for (let i = 0; i < n; i++) fn();
    const c = process.cpuUsage(t0);
    return (c.user + c.system) / n; // µs of CPU per call
  };
  const dir = mkdtempSync(join(os.tmpdir(), 'sonomics-bench-telemetry-'));
  const p = new TelemetryPublisher({
    url: broker.url, deviceId: 'bench-split', prefix: 'sonomics-bench', intervalMs: 3_600_000, spool: { dir: join(dir, 'p'), maxBytes: 256 * 1024 * 1024 },
    sources: { pipelineStats: stats, trackingState: () => 'tracking', sourceState: () => ({ id: 'phantom:1', state: 'live', fps: 30 }) },
  });
  // One payload, to time the checks and the spool on their own.
  let sample: unknown;
  p.on('refused', () => undefined);
  const statsUs = time(() => { stats(); });
  const payloadUs = time(() => { sample = (p as unknown as { telemetryPayload(): unknown }).telemetryPayload(); });
  const checkUs = time(() => { payloadProblems(sample); });
  const text = JSON.stringify(sample);
  const jsonUs = time(() => { JSON.stringify(sample); });
  const spool = new Spool({ dir: join(dir, 's'), maxBytes: 256 * 1024 * 1024 });
  const appendUs = time(() => { const e = spool.append('t/t', text)!; spool.ack(e.id); });
  spool.close();
  const spoolF = new Spool({ dir: join(dir, 'f'), maxBytes: 256 * 1024 * 1024, fsync: true });
  const appendFsyncUs = time(() => { const e = spoolF.append('t/t', text)!; spoolF.ack(e.id); }, 200);
  spoolF.close();
  // The whole path through the broker: N messages published and acknowledged, CPU per message.
  p.start();
  await new Promise<void>((resolve) => p.once('connect', () => resolve()));
  await p.flush(5000);
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) p.publishTelemetry();
  await p.flush(60000);
  const c = process.cpuUsage(c0);
  const wholeUs = (c.user + c.system) / N;
  await p.stop();
  rmSync(dir, { recursive: true, force: true });
  return [
    ['pipeline stats (8 windows x 2048 samples sorted)', f(statsUs, 1)],
    ['telemetry payload (stats, CPU, memory, counters)', f(payloadUs, 1)],
    ['schema + no-patient-data check', f(checkUs, 1)],
    ['JSON.stringify', f(jsonUs, 1)],
    [`spool append + ack (${text.length} B line)`, f(appendUs, 1)],
    ['spool append + ack with fsync', f(appendFsyncUs, 1)],
    ['whole message: payload to PUBACK (QoS 1, mosquitto on loopback)', f(wholeUs, 1)],
  ];
}

async function metricsCost(): Promise<string[][]> {
  const lat = { count: 100, p50: 5, p99: 9, max: 12 };
  const overlay: OverlayStats = {
    viewers: 2, controller: 'v1', encoded: 100, encodeDropped: 1, sent: 190, skipped: 3, rateLimited: 0, refused: 0, invalidOutgoing: 0,
    encode: lat, captureToSend: lat, clients: [],
  };
  const m = createMetrics({
    pipeline: fakePipeline(), overlay: () => overlay, source: () => ({ id: 'phantom:1', state: 'live', fps: 30, stats: { delivered: 1, dropped: 0, duplicates: 0, gaps: 0 } }),
    tracking: () => 'tracking',
    telemetry: () => ({
      connected: true, published: 10, spooled: 0, spoolBytes: 0, dropped: 0, droppedBy: { size: 0, age: 0 }, refused: 0, reconnects: 0, inflight: 0,
      statusPublished: 1, lastError: null, session: null,
      spool: { messages: 0, bytes: 0, appended: 10, acked: 10, dropped: { size: 0, age: 0 }, corrupt: 0, writeErrors: 0, segments: 0, nextId: 10 },
    }),
  });
  const text = await m.metricsText();
  for (let i = 0; i < 20; i++) await m.metricsText();
  const N = 300;
  const c0 = process.cpuUsage(), t0 = performance.now();
  for (let i = 0; i < N; i++) await m.metricsText();
  const c = process.cpuUsage(c0);
  const cpuMs = (c.user + c.system) / 1000 / N;
  const wallMs = (performance.now() - t0) / N;
  return [[
    String(text.split('\n').filter((l) => l && !l.startsWith('#')).length), String(text.length), f(wallMs, 3), f(cpuMs, 3),
    f((cpuMs / 15000) * 100, 4), f((cpuMs / 1000) * 100, 3),
  ]];
}

async function main(): Promise<void> {
  try {
    readFileSync(MOSQUITTO);
  } catch {
    console.error(`${MOSQUITTO} is missing: install Debian's mosquitto (apt-get install -y mosquitto)`);
    process.exit(1);
  }
  const broker = new Broker();
  await broker.start();
  try {
    console.log(`Telemetry cost on ${os.cpus()[0]?.model ?? 'this CPU'} (${os.availableParallelism()} cores), Node ${process.version}, mosquitto on 127.0.0.1, ${seconds} s per run`);
    // Warm-up (not measured): the publisher's code compiled, start-up garbage collected.
    const warm = await publisherRun(broker, 50, {});
    await sleep(3000);
    await warm();
    await sleep(3000);
    const idles: Run[] = [];
    const runs: Run[] = [];
    const plan: Array<[string, number, { fsync?: boolean; light?: boolean }]> = [
      ['publisher, 1 s interval', 1000, {}],
      ['publisher, 100 ms interval', 100, {}],
      ['publisher, 100 ms, stats without sorting the latency windows', 100, { light: true }],
      ...(withFsync ? [['publisher, 100 ms, spool fsync', 100, { fsync: true }] as [string, number, { fsync?: boolean }]] : []),
    ];
    // Idle windows between the runs: the baseline is their mean.
    for (const [label, interval, o] of plan) {
      idles.push(await measure('idle', broker, undefined));
      runs.push(await measure(label, broker, () => publisherRun(broker, interval, o)));
    }
    idles.push(await measure('idle', broker, undefined));
    const sorted = idles.map((r) => r.cpuPct).sort((a, b) => a - b);
    const idle = sorted[Math.floor(sorted.length / 2)];
    table(`1. Publisher CPU over ${seconds} s each (% of one core), idle windows in between; telemetry % = process % - the idle median ${f(idle, 3)} %`,
      ['<run', 'messages', 'process %', 'telemetry %', 'ms CPU per message', 'broker %'],
      [
        ...runs.map((r) => {
          const net = Math.max(0, r.cpuPct - idle);
          const perSecond = r.messages / r.wallS;
          return [r.label, String(r.messages), f(r.cpuPct, 3), f(net, 3), f(perSecond > 0 ? (net * 10) / perSecond : NaN, 3), f(r.brokerPct, 3)];
        }),
        ...idles.map((r, i) => [`idle window ${i + 1}`, '-', f(r.cpuPct, 3), '-', '-', f(r.brokerPct, 3)]),
      ],
      ['budget: under 1 % of one core at a 1 s interval. messages: telemetry acknowledged by the broker during the run',
        'ms CPU per message = telemetry % x 10 / messages per second; at a 1 s interval the cost is about that figure / 10 in % of a core',
        'stats without sorting: the latency windows summarised once, to show the share of Pipeline.stats() (it sorts 8 windows of 2048 samples per call)'],
    );
    table('2. One telemetry message, split (µs of CPU per call, 2000 calls)', ['<step', 'µs'], await perMessage(broker));
    table('3. One /metrics scrape (prom-client, every group and the Node.js process metrics)',
      ['samples', 'bytes', 'ms (wall)', 'ms (CPU)', '% of a core, scraped every 15 s', '% every 1 s'], await metricsCost());
  } finally {
    await broker.close();
  }
}

await main();
