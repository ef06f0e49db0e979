// The telemetry spool (bounds, order, restart), the payload schemas and the no-patient-data rule,
// and the Prometheus metrics. No broker needed here (test/telemetry.test.ts has those).
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { Pipeline } from '../core/pipeline.js';
import { PhantomScanner } from '../device/phantom.js';
import { createMetrics } from '../device/telemetry/metrics.js';
import { TelemetryPublisher } from '../device/telemetry/publisher.js';
import { checkNoPatientData, payloadProblems, schemaProblems, TELEMETRY_FORMAT } from '../device/telemetry/schema.js';
import { Spool, SpoolLockedError } from '../device/telemetry/spool.js';
import { OverlayServer } from '../web-overlay/server.js';
import type { PipelineStats } from '../core/pipeline.js';

function tmp(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'sonomics-spool-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const payload = (n: number, pad = 0) => JSON.stringify({ n, pad: 'x'.repeat(pad) });
const ids = (s: Spool) => s.pendingFrom().map((e) => e.id);

t.test('spool: in order, removed on ack, survives a restart with ids continuing', async (t) => {
  const dir = tmp(t);
  let s = new Spool({ dir });
  for (let i = 0; i < 10; i++) t.equal(s.append('a/b', payload(i))!.id, i);
  t.equal(s.size, 10);
  t.ok(s.ack(0) && s.ack(1) && s.ack(5), 'acks, one out of order');
  t.notOk(s.ack(5), 'an id is acknowledged once');
  t.same(ids(s), [2, 3, 4, 6, 7, 8, 9]);
  s.close();
  s = new Spool({ dir });
  t.same(ids(s), [2, 3, 4, 6, 7, 8, 9], 'acknowledged messages are not replayed after a restart, the rest are, in order');
  t.same(s.pendingFrom(0).map((e) => JSON.parse(e.payload).n), [2, 3, 4, 6, 7, 8, 9], 'payloads intact');
  t.equal(s.append('a/b', payload(10))!.id, 10, 'ids continue across restarts');
  for (const id of ids(s)) s.ack(id);
  t.equal(s.size, 0);
  s.close();
  t.same(readdirSync(dir).filter((f) => f.startsWith('seg-')), [], 'segments are deleted once nothing in them is pending');
  s = new Spool({ dir });
  t.equal(s.nextId, 11, 'the next id is kept when the spool is empty');
  s.close();
});

t.test('spool: the size bound drops the oldest first and counts them; the disk stays bounded', async (t) => {
  const dir = tmp(t);
  const dropped: number[] = [];
  const s = new Spool({ dir, maxBytes: 4096, segmentBytes: 1024 });
  s.on('drop', (e: { id: number }, reason: string) => { if (reason === 'size') dropped.push(e.id); });
  for (let i = 0; i < 200; i++) s.append('a/b', payload(i, 60));
  const kept = ids(s);
  t.ok(s.bytes <= 4096, `pending bytes ${s.bytes} <= 4096`);
  t.equal(kept.length + dropped.length, 200, 'every message is either kept or counted as dropped');
  t.same(dropped, Array.from({ length: dropped.length }, (_, i) => i), 'the oldest went first, in order');
  t.same(kept, Array.from({ length: kept.length }, (_, i) => 200 - kept.length + i), 'the newest are kept, in order');
  t.equal(s.stats().dropped.size, dropped.length);
  t.ok(s.diskBytes() <= 4096 + 1024 + 200, `on disk ${s.diskBytes()} bytes (<= maxBytes + one segment)`);
  t.equal(s.append('a/b', payload(0, 5000)), undefined, 'a message larger than the whole spool is dropped and counted');
  t.equal(s.stats().dropped.size, dropped.length);
  t.equal(dropped.length, 200 - kept.length + 1);
  s.close();
  const again = new Spool({ dir, maxBytes: 4096 });
  t.same(ids(again), kept, 'the same messages after a restart');
  t.equal(again.stats().dropped.size, dropped.length, 'drop counts are kept across restarts');
  again.close();
});

t.test('spool: the age bound drops old messages (counted), a smaller bound on reopen applies too', async (t) => {
  const dir = tmp(t);
  let now = 1_000_000;
  const s = new Spool({ dir, maxAgeMs: 10_000, now: () => now });
  for (let i = 0; i < 5; i++) { s.append('a/b', payload(i)); now += 3000; }
  // Appended at 0, 3, 6, 9, 12 s (the append at 12 s expired the one of 0 s); now 15 s: the one of 3 s goes too.
  t.same(ids(s), [1, 2, 3, 4]);
  t.equal(s.expire(), 1);
  t.same(ids(s), [2, 3, 4]);
  t.equal(s.stats().dropped.age, 2);
  now += 20_000;
  s.append('a/b', payload(5));
  t.same(ids(s), [5], 'an append expires what is too old');
  t.equal(s.stats().dropped.age, 5);
  s.close();
});

t.test('spool: canDrop keeps messages the client is sending', async (t) => {
  const dir = tmp(t);
  const held = new Set([0, 1]);
  const s = new Spool({ dir, maxBytes: 2048, canDrop: (e) => !held.has(e.id) });
  for (let i = 0; i < 60; i++) s.append('a/b', payload(i, 40));
  const kept = ids(s);
  t.same(kept.slice(0, 2), [0, 1], 'held messages stay');
  t.ok(kept[2] > 2, 'the oldest of the others went');
  s.close();
  // Out-of-order removals are remembered across a restart (state.json "gone").
  const s2 = new Spool({ dir, maxBytes: 2048 });
  t.same(ids(s2), kept);
  s2.close();
});

t.test('spool: a torn last line (a killed process) is skipped and counted; a lock held by a live process refuses', async (t) => {
  const dir = tmp(t);
  const s = new Spool({ dir });
  for (let i = 0; i < 3; i++) s.append('a/b', payload(i));
  t.throws(() => new Spool({ dir }), SpoolLockedError, 'a second spool on the same folder in the same process');
  s.close();
  const seg = readdirSync(dir).find((f) => f.startsWith('seg-'))!;
  appendFileSync(join(dir, seg), '{"id":3,"t":1,"topic":"a/b","retain":false,"p":{"n"');
  // A lock left by a process that is gone is taken over.
  const dead = spawnSync(process.execPath, ['-e', '0']).pid;
  writeFileSync(join(dir, 'lock'), String(dead));
  const s2 = new Spool({ dir });
  t.same(ids(s2), [0, 1, 2]);
  t.equal(s2.stats().corrupt, 1);
  t.equal(s2.append('a/b', payload(9))!.id, 3, 'the torn line\'s id is given again (that message never left the box: lines are written before they are sent)');
  s2.close();
  const s3 = new Spool({ dir });
  t.same(ids(s3), [0, 1, 2, 3], 'the new line went to a new segment, not after the torn one');
  s3.close();
  t.equal(readFileSync(join(dir, 'state.json'), 'utf8').includes('sonomics.spool/v1'), true);
});

// ---- Payload rules -------------------------------------------------------------------------------

const UUID = '0b6f1a52-3a5e-4d7c-9a8e-2f1d3c4b5a69';
const env = { format: TELEMETRY_FORMAT, deviceId: 'box-1', boot: UUID, at: '2026-11-22T09:14:03.120Z' };
const sha = 'a'.repeat(64);
const freeze = {
  ...env, kind: 'event', seq: 7, event: 'score.freeze', session: UUID,
  data: { frameSeq: 812, live: true, scores: [{ modelId: 'busi-malignancy', version: '1.0.0', sha256: sha, value: 0.31, band: [0.25, 0.4], category: 'higher risk', status: 'ok', frames: 15 }] },
};

t.test('schemas: valid payloads pass, unknown keys and wrong types are refused by name', async (t) => {
  t.same(payloadProblems(freeze), []);
  t.same(payloadProblems({ ...env, kind: 'status', state: 'online', reason: 'birth', software: { product: 'sonomics', version: '0.1.0' }, intervalMs: 1000 }), []);
  t.match(schemaProblems({ ...freeze, data: { ...freeze.data, extra: 1 } }).join(), /unknown key "extra"/);
  t.match(schemaProblems({ ...freeze, event: 'patient.arrived' }).join(), /event: must be one of/);
  t.match(schemaProblems({ ...freeze, format: 'sonomics.telemetry/v0' }).join(), /format/);
  t.match(schemaProblems({ ...freeze, session: 'exam-42' }).join(), /session/);
});

t.test('the no-patient-data rule names every kind of patient data', async (t) => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['a name key', { patientName: 'x' }, /patientName.*names patient data/],
    ['a plain name key', { name: 'Jane' }, /"name" names patient data/],
    ['an id key', { PatientID: '123' }, /names patient data/],
    ['mrn', { mrn: '77' }, /names patient data/],
    ['accession', { accession_number: 'A1' }, /names patient data/],
    ['a birth date key', { birthDate: '1970' }, /names patient data/],
    ['a DICOM person name', { note: 'DOE^JANE' }, /person name/],
    ['a DICOM date', { when: '19700101' }, /DICOM date/],
    ['a DICOM UID', { uid: '1.2.840.10008.5.1.4.1.1.6.1' }, /DICOM UID/],
    ['a patient tag', { tag: '(0010,0010)' }, /patient tag/],
    ['base64 image data', { jpg: Buffer.alloc(120, 7).toString('base64') }, /base64/],
    ['a data URL', { src: 'data:image/png;base64,iVBORw0' }, /data: URL/],
    ['a Buffer', { b: Buffer.alloc(4) }, /binary data/],
    ['a typed array', { px: new Uint8Array(16) }, /binary data/],
    ['a long array (pixels)', { px: Array.from({ length: 500 }, () => 0) }, /array of 500/],
    ['a file path', { file: '/data/exams/Doe_Jane.dcm' }, /path/],
    ['a session id that is not random', { session: 'exam-2026-11-22-bed4' }, /random UUID/],
    ['a session id that is a v1 (time/MAC) UUID', { sessionId: 'a8098c1a-f86e-11da-bd1a-00112444be1e' }, /random UUID/],
    ['an image key', { image: 1 }, /names patient data/],
    ['clinical inputs', { clinical: { x: 1 } }, /names patient data/],
  ];
  for (const [what, p, re] of cases) t.match(checkNoPatientData(p).join('; '), re, what);
  t.same(checkNoPatientData(freeze), [], 'a score summary passes');
  t.same(checkNoPatientData({ session: UUID, at: env.at, version: '1.0.0', sha256: sha }), [], 'UUIDs, ISO times, versions, hashes pass');
});

t.test('the publisher refuses (and counts) a payload that breaks the rules, before spooling it', async (t) => {
  const dir = tmp(t);
  const p = new TelemetryPublisher({ url: 'mqtt://127.0.0.1:1', deviceId: 'box-rules', spool: { dir } });
  const refused: string[][] = [];
  p.on('refused', (problems: string[]) => refused.push(problems));
  const bad = { ...freeze.data, scores: [{ ...freeze.data.scores[0], category: 'DOE^JANE' }] };
  t.equal(p.event('score.freeze', bad as never), false);
  t.equal(p.event('model.loaded', { model: { id: 'm', version: '1', sha256: sha }, patientId: '123' } as never), false);
  t.equal(p.event('model.loaded', { model: { id: 'm', version: '1', sha256: sha } }), true);
  t.equal(p.stats().refused, 2);
  t.equal(p.stats().spooled, 1, 'only the good one was spooled');
  t.match(refused[0].join(), /person name/);
  t.match(refused[1].join(), /patientId/);
  t.throws(() => new TelemetryPublisher({ url: 'mqtt://user:pw@127.0.0.1:1', deviceId: 'x', spool: { dir: join(dir, 'b') } }), /credentials never go in the URL/);
  t.throws(() => new TelemetryPublisher({ url: 'mqtt://127.0.0.1:1', deviceId: 'a/b', spool: { dir: join(dir, 'c') } }), /deviceId/);
  t.throws(() => new TelemetryPublisher({ url: 'mqtt://127.0.0.1:1', deviceId: 'x', prefix: 'a/#', spool: { dir: join(dir, 'd') } }), /prefix/);
  await p.stop();
});

// ---- Prometheus --------------------------------------------------------------------------------

const lat = (p50: number) => ({ count: 10, p50, p99: p50 * 2, max: p50 * 3 });
const pipelineStats = (): PipelineStats => ({
  received: 100, duplicates: 3, frozen: 2, displayed: 95, scored: 40, errors: 0, dropped: { display: 1, features: 20, risk: 2 },
  stages: { layout: lat(0.1), track: lat(2), regions: lat(1), features: lat(30), risk: lat(0.5), publish: lat(0.05) },
  endToEnd: { display: lat(4), scores: lat(40) },
});

t.test('metrics: the Prometheus text names every figure; /metrics needs the token when one is set', async (t) => {
  let calls = 0;
  const none = { count: 0, p50: NaN, p99: NaN, max: NaN };
  const m = createMetrics({
    pipeline: () => { calls++; const st = pipelineStats(); return { ...st, endToEnd: { ...st.endToEnd, scores: none } }; },
    source: () => ({ id: 'dicom:Doe_Jane.dcm', state: 'live', fps: 30, stats: { delivered: 100, dropped: 1, duplicates: 3, gaps: 1 } }),
    tracking: () => 'tracking',
  });
  const text = await m.metricsText();
  t.equal(calls, 1, 'one pipeline.stats() per scrape');
  t.match(text, /^sonomics_pipeline_frames_received_total 100$/m);
  t.match(text, /^sonomics_pipeline_frames_dropped_total\{slot="features"\} 20$/m);
  t.match(text, /^sonomics_pipeline_stage_latency_seconds\{stage="features",quantile="0.99"\} 0.06$/m);
  t.match(text, /^sonomics_pipeline_latency_seconds\{path="display",quantile="0.5"\} 0.004$/m);
  t.match(text, /^sonomics_tracking_state\{state="tracking"\} 1$/m);
  t.match(text, /^sonomics_tracking_state\{state="lost"\} 0$/m);
  t.match(text, /^sonomics_source_info\{kind="dicom"\} 1$/m);
  t.notMatch(text, /Doe_Jane/, 'the source id (a file name) never appears');
  t.match(text, /^# TYPE sonomics_pipeline_frames_received_total counter$/m);
  t.match(text, /^process_cpu_seconds_total /m, 'Node.js process metrics');
  t.notMatch(text, /sonomics_overlay_/, 'no overlay group without an overlay');
  t.notMatch(text, /path="scores"/, 'a latency window without samples exposes nothing');
  t.notMatch(text.split('\n').filter((l) => l.startsWith('sonomics_')).join('\n'), /\bnan\b/i, 'no NaN values in our metrics');

  // Served by the overlay server, behind its token.
  const token = 'tok-0123456789abcdef';
  const server = new OverlayServer({ pipeline: new Pipeline({ layout: new PhantomScanner({ seed: 1, width: 640, height: 360 }).layout }), port: 0, token, metrics: m });
  const url = `${await server.listen()}metrics`;
  t.teardown(() => server.close());
  t.equal((await fetch(url)).status, 401);
  t.equal((await fetch(url, { headers: { authorization: 'Bearer wrong-token-000000' } })).status, 401);
  const ok = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  t.equal(ok.status, 200);
  t.match(ok.headers.get('content-type') ?? '', /^text\/plain; version=0.0.4/);
  t.match(await ok.text(), /sonomics_pipeline_frames_displayed_total 95/);
});
