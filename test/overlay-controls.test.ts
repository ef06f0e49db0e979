// Overlay controls over a real WebSocket: one controller at a time, shared state broadcast to every
// viewer, freeze and lock on the held frame, clinical inputs, model selection, recording and marks,
// every change in the audit log; and backpressure (a stalled viewer does not slow another).
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import WebSocket from 'ws';
import { AuditLog, verifyAuditLog, type AuditEntry } from '../core/audit.js';
import { createLesionMask } from '../core/mask.js';
import { loadRiskModel } from '../core/models.js';
import { Pipeline } from '../core/pipeline.js';
import { RiskModel } from '../core/risk.js';
import { PhantomScanner } from '../device/phantom.js';
import { OnDemandRecorder } from '../device/recording.js';
import { decodeFrameMessage, serverMessageProblems, type OverlayHeader, type OverlayState } from '../web-overlay/protocol.js';
import { OverlayServer } from '../web-overlay/server.js';
import { testCard } from './cards.js';
import { fillPolygon, dice, sleep, until } from './helpers.js';
import { deepestPoint, Segmenter } from '../core/segment/segmenter.js';

const nomogram = () => new RiskModel(testCard({
  id: 'test-nomogram',
  inputs: {
    engine: { binWidth: 25, spacing: 'mm' }, features: ['bmode.lesion.firstorder_Mean'],
    clinical: [{ name: 'age', type: 'integer', unit: 'years', range: [18, 100], source: 'overlay' }],
  },
  scaling: { mean: [100, 50], std: [20, 10] },
  linearPredictor: { coefficients: [0.5, 0.8], intercept: -0.2 },
}, ['bmode.lesion.firstorder_Mean']));

interface Client {
  ws: WebSocket;
  text: Array<Record<string, unknown>>;
  frames: Array<{ header: OverlayHeader; at: number }>;
  invalid: string[];
  id: string;
  /** Sends a page message and resolves with its reply (ack or error). */
  ask(msg: Record<string, unknown>): Promise<Record<string, unknown>>;
  lastState(): OverlayState;
}

let nextId = 0;
async function client(url: string): Promise<Client> {
  const ws = new WebSocket(url.replace('http', 'ws') + 'ws', ['sonomics.v3']);
  const c = { ws, text: [], frames: [], invalid: [] } as unknown as Client;
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) {
      const { header } = decodeFrameMessage(new Uint8Array(data));
      const p = serverMessageProblems(header);
      if (p.length) c.invalid.push(p.join('; '));
      c.frames.push({ header, at: performance.now() });
    } else {
      const m = JSON.parse(String(data));
      const p = serverMessageProblems(m);
      if (p.length) c.invalid.push(`${m.type}: ${p.join('; ')}`);
      c.text.push(m);
    }
  });
  await new Promise((r) => ws.once('open', r));
  await until(() => c.text.some((m) => m.type === 'hello'), 3000, 'hello');
  c.id = (c.text.find((m) => m.type === 'hello')!.viewer as { id: string }).id;
  c.ask = async (msg) => {
    const id = `q${nextId++}`;
    ws.send(JSON.stringify({ ...msg, id }));
    await until(() => c.text.some((m) => m.id === id), 5000, `reply to ${JSON.stringify(msg).slice(0, 60)}`);
    return c.text.find((m) => m.id === id)!;
  };
  c.lastState = () => {
    const states = c.text.filter((m) => m.type === 'state' || m.type === 'hello');
    return states[states.length - 1].state as OverlayState;
  };
  return c;
}

async function setup(t: Tap.Test, o: { models?: RiskModel[]; recorder?: boolean; maxBufferedBytes?: number; segmenter?: Segmenter } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'sonomics-controls-'));
  const phantom = new PhantomScanner({ seed: 5 });
  const models = o.models ?? [await loadRiskModel('busi-malignancy')];
  const pipeline = new Pipeline({ layout: phantom.layout, models, segmenter: o.segmenter }).start();
  const auditPath = join(dir, 'audit.jsonl');
  const audit = new AuditLog(auditPath, () => pipeline.models.filter((m) => pipeline.enabledModels.includes(m.card.id)).map(({ card: c }) => ({ id: c.id, version: c.version, sha256: c.sha256 })));
  const recorder = o.recorder ? new OnDemandRecorder({ dir: join(dir, 'rec'), width: phantom.layout.width, height: phantom.layout.height, fps: 30, sourceId: phantom.id, layout: phantom.layout }) : undefined;
  const server = new OverlayServer({ pipeline, port: 0, audit, recording: recorder, controlRate: { perSecond: 100, burst: 100 }, maxBufferedBytes: o.maxBufferedBytes });
  recorder?.on('change', () => server.broadcastState());
  const url = await server.listen();
  let i = 0;
  let feeding = true;
  const r = phantom.layout.panes.bmode.rect;
  // The phantom at about 30 fps for as long as the test runs (bounded: 45 s at most).
  const feeder = (async () => {
    const end = Date.now() + 45000;
    while (feeding && Date.now() < end) {
      const { frame, truth } = phantom.frameAt(i);
      if (i === 0) void pipeline.lockLesion(createLesionMask(truth.lesionMask.slice(), r.width, r.height));
      pipeline.push(frame, truth);
      recorder?.write(frame);
      i++;
      await sleep(33);
    }
  })();
  const entries = () => readFileSync(auditPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as AuditEntry);
  t.teardown(async () => {
    feeding = false;
    await feeder;
    if (recorder?.state().active) await recorder.stop();
    await server.close();
    await pipeline.stop();
    audit.close();
  });
  return { phantom, pipeline, server, url, dir, auditPath, entries, recorder };
}

namespace Tap { export type Test = import('tap').Test }

t.test('one controller at a time: the first page gets control, others watch, take over is explicit and audited', async (t) => {
  const { url, entries, auditPath } = await setup(t);
  const a = await client(url);
  const b = await client(url);
  t.match(a.text.find((m) => m.type === 'hello'), { viewer: { id: a.id, role: 'controller' } }, 'the first page controls');
  t.match(b.text.find((m) => m.type === 'hello'), { viewer: { id: b.id, role: 'viewer' }, state: { controller: a.id } }, 'the second watches');
  const refused = await b.ask({ type: 'layers', layers: { rings: false } });
  t.match(refused, { type: 'error', re: 'layers' });
  t.match(refused.error, new RegExp(`^layers: only the controller may change state \\(viewer ${a.id} has control\\)`));
  t.equal(a.lastState().layers.rings, true, 'nothing changed');
  t.match((await b.ask({ type: 'control', action: 'take' })).error, new RegExp(`viewer ${a.id} has control; send "force": true`));
  t.match(await b.ask({ type: 'control', action: 'take', force: true }), { type: 'ack', result: { controller: b.id } });
  await until(() => a.lastState().controller === b.id, 8000, 'the old controller hears of it');
  t.match((await a.ask({ type: 'layers', layers: { rings: false } })).error, /only the controller/);
  t.match(await b.ask({ type: 'layers', layers: { rings: false } }), { type: 'ack', result: { layers: { rings: false, contour: true } } });
  await until(() => a.lastState().layers.rings === false, 8000, 'the viewer sees the change');
  t.match((await a.ask({ type: 'control', action: 'release' })).error, /you do not have control/);
  t.match(await b.ask({ type: 'control', action: 'release' }), { result: { controller: null } });
  t.match((await a.ask({ type: 'freeze', frozen: true })).error, /nobody has control/);
  t.match(await a.ask({ type: 'control', action: 'take' }), { result: { controller: a.id } }, 'free control needs no force');
  // The controller leaving frees control.
  a.ws.close();
  await until(() => b.lastState().controller === null, 3000, 'control freed when the controller leaves');
  b.ws.close();
  // The audit log is written in order but not within a fixed time on a loaded machine: wait for its last line.
  await until(() => entries().some((e) => e.who.id === b.id && e.what === 'disconnect'), 5000, 'the second page\'s disconnect audited');
  const log = entries().map((e) => `${e.who.id}:${e.what}:${String(e.details.action ?? '')}`);
  for (const want of [`${a.id}:connect:`, `${a.id}:control:take`, `${b.id}:control:take`, `${b.id}:layers:`, `${b.id}:control:release`, `${a.id}:control:take`, `${a.id}:disconnect:`, `${a.id}:control:release`])
    t.ok(log.includes(want), `audited: ${want}`);
  const take = entries().find((e) => e.who.id === b.id && e.what === 'control' && e.details.action === 'take')!;
  t.match(take, { who: { id: b.id, address: /127\.0\.0\.1/, role: 'controller' }, details: { from: a.id }, models: [{ id: 'busi-malignancy', version: '1.0.0', sha256: /^[0-9a-f]{64}$/ }] });
  t.ok(Date.parse(take.at) > Date.now() - 60000, 'when');
  t.same(verifyAuditLog(auditPath).problems, [], 'the audit chain holds');
  t.same([...a.invalid, ...b.invalid], [], 'every message fits the schema');
});

t.test('freeze holds the frame for every viewer; a lock on it is taken at once, shown and scored; unfreeze resumes', async (t) => {
  const { url, pipeline, phantom, entries } = await setup(t);
  const a = await client(url);
  const b = await client(url);
  await until(() => a.frames.some((f) => f.header.tracking.state === 'tracking'), 8000, 'tracking');
  const ack = await a.ask({ type: 'freeze', frozen: true });
  t.match(ack, { type: 'ack', re: 'freeze', result: { frozen: true } });
  const held = (ack.result as { seq: number }).seq;
  await until(() => b.lastState().frozen && b.lastState().frozenSeq === held, 8000, 'the viewer sees the freeze');
  await until(() => a.frames.some((f) => f.header.seq === held && f.header.frozen), 8000, 'the held frame is sent again, marked frozen');
  const frozenAt = a.frames.length, skippedBefore = pipeline.stats().frozen;
  // Counted, not timed: a loaded machine renders fewer phantom frames a second.
  await until(() => pipeline.stats().frozen - skippedBefore >= 8, 8000, '8 frames arriving while frozen');
  await sleep(100);
  t.same(a.frames.slice(frozenAt).map((f) => f.header.seq), [], 'no new frames while frozen');
  t.ok(pipeline.stats().frozen - skippedBefore >= 8, `${pipeline.stats().frozen - skippedBefore} frames arrived and were skipped`);
  // A late viewer gets the held frame at once.
  const late = await client(url);
  await until(() => late.frames.length > 0, 8000, 'a late viewer gets a picture');
  t.equal(late.frames[0].header.seq, held, 'the held frame');
  // Outline the lesion on the held frame: a polygon around the true lesion, 4 px out.
  const truth = phantom.frameAt(held).truth;
  const r = phantom.layout.panes.bmode.rect;
  const rad = Math.sqrt(truth.lesionMask.reduce((s, v) => s + (v ? 1 : 0), 0) / Math.PI) + 4;
  const polygon: number[] = [];
  for (let k = 0; k < 24; k++) polygon.push(truth.center.x + rad * Math.cos((k * Math.PI) / 12), truth.center.y + rad * Math.sin((k * Math.PI) / 12));
  const before = a.frames.length;
  const scoresBefore = a.text.filter((m) => m.type === 'scores').length;
  const lock = await a.ask({ type: 'lock', polygon });
  t.match(lock, { type: 'ack', re: 'lock', result: { shape: 'polygon', points: 24, seq: held } }, 'taken on the held frame');
  await until(() => a.frames.length > before, 8000, 'the held frame is sent again with the new outline');
  const again = a.frames[a.frames.length - 1].header;
  t.equal(again.seq, held);
  t.equal(again.frozen, true, 'marked frozen');
  const d = dice(fillPolygon(again.lesion!, r.width, r.height), fillPolygon(polygon, r.width, r.height));
  t.ok(d > 0.9, `its contour is the drawn outline (Dice ${d.toFixed(3)})`);
  await until(() => a.text.filter((m) => m.type === 'scores').length > scoresBefore, 5000, 'the held frame is scored with the new outline');
  t.equal(a.text.filter((m) => m.type === 'scores').at(-1)!.seq, held);
  t.match(await a.ask({ type: 'freeze', frozen: false }), { result: { frozen: false, seq: held } });
  const n = a.frames.length;
  await until(() => a.frames.slice(n).some((f) => f.header.seq > held + 3 && f.header.tracking.state === 'tracking'), 5000, 'live frames resume, tracking from the held frame');
  t.match(entries().filter((e) => ['freeze', 'lock'].includes(e.what)).map((e) => [e.what, e.details.frozen]), [['freeze', true], ['lock', true], ['freeze', false]]);
  t.match((await late.ask({ type: 'freeze', frozen: true })).error, /only the controller/, 'a viewer cannot freeze');
  t.same([...a.invalid, ...b.invalid, ...late.invalid], []);
});

t.test('models, clinical inputs and marks: checked, shared, audited; a refusal changes nothing', async (t) => {
  const { url, pipeline, entries } = await setup(t, { models: [await loadRiskModel('busi-malignancy'), nomogram()] });
  const a = await client(url);
  const b = await client(url);
  const hello = b.text.find((m) => m.type === 'hello') as { models: Array<{ id: string; clinical: unknown[] }> };
  t.same(hello.models.map((m) => m.id), ['busi-malignancy', 'test-nomogram']);
  t.same(hello.models[1].clinical, [{ name: 'age', type: 'integer', unit: 'years', range: [18, 100], levels: null, source: 'overlay' }], 'the page learns what to ask for');
  await until(() => a.text.some((m) => m.type === 'scores' && (m.scores as unknown[]).length === 2), 8000, 'both models scored');
  const inc = (a.text.filter((m) => m.type === 'scores' && (m.scores as unknown[]).length === 2).at(-1)!.scores as Array<{ status: string; missing?: string[] }>)[1];
  t.match(inc, { status: 'incomplete', missing: ['age'] }, 'the nomogram waits for age, never guessed');
  // Clinical: a bad value is refused by name and nothing changes; a good one is shared.
  const bad = await a.ask({ type: 'clinical', values: { age: 12 } });
  t.match(bad.error, /^clinical: clinical age = 12: must be in \[18, 100\] years/);
  t.same(pipeline.clinicalValues, {});
  t.match(await a.ask({ type: 'clinical', values: { age: 54 } }), { type: 'ack', result: { clinical: { age: 54 } } });
  await until(() => b.lastState().clinical.age === 54, 8000, 'the viewer sees the value');
  const n = a.text.length;
  await until(() => a.text.slice(n).some((m) => m.type === 'scores' && (m.scores as Array<{ modelId: string; status: string }>).some((s) => s.modelId === 'test-nomogram' && s.status !== 'incomplete')), 8000, 'the nomogram scores');
  // Models: an unknown id is refused; a deselected model is neither scored nor sent.
  t.match((await a.ask({ type: 'models', enabled: ['busi-malignancy', 'nope'] })).error, /^models\.enabled: no loaded model "nope" \(loaded: busi-malignancy, test-nomogram\)/);
  t.match(await a.ask({ type: 'models', enabled: ['test-nomogram'] }), { result: { enabled: ['test-nomogram'] } });
  await until(() => b.lastState().models.length === 1, 8000, 'shared');
  const m = a.text.length;
  await until(() => a.text.slice(m).filter((x) => x.type === 'scores' && x.live).length >= 3, 8000, 'scores after the change');
  const after = a.text.slice(m).filter((x) => x.type === 'scores' && x.live).slice(1);
  t.ok(after.every((x) => (x.scores as Array<{ modelId: string }>).every((s) => s.modelId === 'test-nomogram')), 'only the selected model is scored');
  // Mark: every viewer hears of it.
  const mark = await a.ask({ type: 'mark', label: 'suspicious margin' });
  t.match(mark, { type: 'ack', re: 'mark', result: { seq: Number } });
  await until(() => b.text.some((x) => x.type === 'event'), 8000, 'event broadcast');
  t.match(b.text.find((x) => x.type === 'event'), { event: { kind: 'mark', label: 'suspicious margin', by: a.id } });
  t.match((await a.ask({ type: 'record', action: 'start' })).error, /^record: recording is not available here/);
  const audited = entries().filter((e) => ['clinical', 'models', 'mark'].includes(e.what));
  t.match(audited.map((e) => e.what), ['clinical', 'models', 'mark'], 'each change once; refusals change nothing and are not state changes');
  t.same(audited[0].details, { values: { age: 54 } });
  t.same(audited[2].models.map((x) => x.id), ['test-nomogram'], 'the models in use at the time');
  t.same([...a.invalid, ...b.invalid], []);
});

t.test('record start/stop from the page: a recording folder with the frames and the marked events', async (t) => {
  const { url, dir, entries } = await setup(t, { recorder: true });
  const a = await client(url);
  t.equal(a.lastState().recording.available, true);
  const start = await a.ask({ type: 'record', action: 'start' });
  t.match(start, { type: 'ack', result: { action: 'start', name: /^session-.*\.sonrec$/ } });
  const name = (start.result as { name: string }).name;
  await until(() => a.lastState().recording.active && a.lastState().recording.name === name, 8000, 'state says recording');
  t.match((await a.ask({ type: 'record', action: 'start' })).error, /already recording/);
  await sleep(700);
  await a.ask({ type: 'mark', label: 'wash-in' });
  await sleep(300);
  const stop = await a.ask({ type: 'record', action: 'stop' });
  t.match(stop, { type: 'ack', result: { action: 'stop', name, frames: Number } });
  t.ok((stop.result as { frames: number }).frames > 0, `${(stop.result as { frames: number }).frames} frames recorded`);
  await until(() => !a.lastState().recording.active, 8000, 'state says stopped');
  const folder = join(dir, 'rec', name);
  t.ok(existsSync(join(folder, 'video.nut')) && existsSync(join(folder, 'session.json')), readdirSync(folder).join(', '));
  const events = readFileSync(join(folder, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.match(events, [{ kind: 'mark', label: 'wash-in', by: a.id, i: Number }]);
  t.match((await a.ask({ type: 'record', action: 'stop' })).error, /not recording/);
  t.match(entries().filter((e) => e.what === 'record').map((e) => e.details.action), ['start', 'stop']);
  t.same(a.invalid, []);
});

t.test('backpressure: a viewer that stops reading does not slow another; its frames are skipped and counted', async (t) => {
  // A small send buffer, so the stalled socket fills it within the test.
  const { url, server } = await setup(t, { maxBufferedBytes: 256 * 1024 });
  const fast = await client(url);
  // A raw socket that completes the WebSocket handshake and then never reads again.
  const { port } = new URL(url);
  const stalled = connect(Number(port), '127.0.0.1');
  await new Promise((r) => stalled.once('connect', r));
  stalled.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  await new Promise((r) => stalled.once('data', r));
  stalled.pause();
  t.teardown(() => stalled.destroy());
  await until(() => server.stats().viewers === 2, 8000, 'two viewers');
  const e0 = server.stats().encoded, f0 = fast.frames.length, s0 = server.stats().skipped;
  // Until the stalled socket has filled the kernel's buffers and its own, and 10 frames were
  // skipped for it: counted, not timed (a loaded machine encodes fewer frames a second).
  await until(() => server.stats().skipped - s0 >= 10, 30000, 'frames skipped for the stalled viewer');
  await sleep(300);
  const encoded = server.stats().encoded - e0, got = fast.frames.length - f0, skipped = server.stats().skipped - s0;
  t.ok(encoded >= 20, `${encoded} frames encoded meanwhile`);
  t.ok(got >= encoded - 3, `the reading viewer got ${got} of ${encoded}`);
  t.ok(skipped >= 10, `the stalled viewer's frames were skipped (${skipped})`);
  const [reader, staller] = server.stats().clients;
  t.equal(reader.id, fast.id);
  t.equal(reader.skipped, 0, 'none skipped for the reading viewer');
  t.ok(staller.skipped >= 10, `per viewer: ${staller.skipped} skipped for the stalled one`);
  t.same(fast.invalid, []);
});

t.test('perfusion: the reference is placed and cleared from the page, a new injection restarts the curve, messages and exports carry the session', async (t) => {
  const { url, entries, pipeline } = await setup(t);
  const a = await client(url);
  const b = await client(url);
  await until(() => a.frames.some((f) => f.header.tracking.state === 'tracking'), 5000, 'tracking');
  // Placed on the frame this page shows, which may lag the server's: anchored to that frame's lesion.
  const onScreen = a.frames.at(-1)!.header;
  const c = onScreen.tracking.center!;
  t.match((await b.ask({ type: 'reference', x: 10, y: 10, radiusMm: 3 })).error, /^reference: only the controller/, 'viewers cannot place it');
  t.match(await a.ask({ type: 'reference', x: c.x + 120, y: c.y - 60, radiusMm: 4, seq: onScreen.seq }),
    { type: 'ack', re: 'reference', result: { reference: { radiusMm: 4 }, anchoredOn: onScreen.seq } });
  await until(() => b.frames.some((f) => f.header.reference !== null), 3000, 'frames carry the reference');
  const ref = b.frames.filter((f) => f.header.reference).at(-1)!.header;
  const off = { x: ref.reference!.x - ref.tracking.center!.x, y: ref.reference!.y - ref.tracking.center!.y };
  t.ok(Math.abs(off.x - 120) < 10 && Math.abs(off.y + 60) < 10, `the disc keeps its place beside the lesion (${off.x.toFixed(1)}, ${off.y.toFixed(1)})`);
  t.match((await a.ask({ type: 'reference', x: -40, y: 10, radiusMm: 4 })).error, /^reference: reference \(-40, 10\) lies outside the \d+x\d+ pane/);
  t.match((await a.ask({ type: 'reference', x: 40, y: 10, radiusMm: 50 })).error, /reference\.radiusMm: must be <= 20/);
  t.match((await a.ask({ type: 'reference', x: 40, y: 10, radiusMm: 4, seq: 1.5 })).error, /^reference\.seq must be an integer/);
  t.match((await a.ask({ type: 'reference', x: 40 })).error, /either "x", "y" and "radiusMm", or "clear": true/);
  await until(() => a.text.filter((m) => m.type === 'perfusion').length >= 2, 8000, 'perfusion messages');
  const msg = a.text.filter((m) => m.type === 'perfusion').at(-1)! as { curve: { t: number[]; series: Record<string, unknown[]> }; notice: string; state: string };
  t.match(msg.notice, /not for diagnosis/);
  t.ok(msg.curve.t.length > 20 && 'lesion' in msg.curve.series && 'reference' in msg.curve.series, `the session's curve (${msg.curve.t.length} points)`);
  t.ok(['too-few-frames', 'no-wash-in', 'rising', 'fitted'].includes(msg.state), `a state, not a made-up fit (${msg.state})`);
  const csv = await (await fetch(`${url}api/perfusion.csv`)).text();
  t.match(csv, /^t_s,lesion,(ring\w+,)+reference\n/, `the CSV export (${csv.slice(0, 60)})`);
  const json = await (await fetch(`${url}api/perfusion.json`)).json() as { notice: string; curve: { t: number[] } };
  t.match(json.notice, /not for diagnosis/);
  t.ok(json.curve.t.length > 20, 'the JSON export');
  const before = pipeline.perfusion!.stats.samples;
  t.match(await a.ask({ type: 'perfusion', action: 'reset' }), { type: 'ack', result: { action: 'reset' } });
  t.ok(pipeline.perfusion!.stats.samples < before, 'a new injection: the curve starts again');
  t.match(await a.ask({ type: 'reference', clear: true }), { type: 'ack', result: { reference: null, anchoredOn: null } });
  await until(() => a.frames.at(-1)!.header.reference === null, 3000, 'the disc is gone');
  t.same(a.invalid, [], 'every message the server sent matched its schema');
  const audited = entries().filter((e) => e.what === 'reference' || e.what === 'perfusion').map((e) => e.what);
  t.same(audited, ['reference', 'perfusion', 'reference'], 'placements and the reset are audited (refusals change nothing and are not)');
});

t.test('tap to outline: a proposal from a tap, grown, shrunk, accepted as the lock (audited); no lesion at a far tap; refusals by name', async (t) => {
  const segmenter = await Segmenter.load();
  t.teardown(() => segmenter.close());
  const { url, pipeline, phantom, entries } = await setup(t, { segmenter });
  const a = await client(url);
  const b = await client(url);
  t.match(a.text.find((m) => m.type === 'hello'), { segmenter: { id: segmenter.manifest.id, version: segmenter.manifest.version } }, 'hello names the segmenter');
  await until(() => a.frames.some((f) => f.header.tracking.state === 'tracking'), 8000, 'tracking');
  const held = (await a.ask({ type: 'freeze', frozen: true })).result as { seq: number };
  const truth = phantom.render(held.seq).truth;
  const { width, height } = phantom.layout.panes.bmode.rect;
  const tap = deepestPoint(truth.lesionMask, width, height);
  t.match((await b.ask({ type: 'segment', x: tap.x, y: tap.y })).error, /only the controller may change state/, 'a watcher may not propose');
  const r = (await a.ask({ type: 'segment', x: tap.x, y: tap.y })).result as { found: boolean; seq: number; contour: number[]; area: number; confidence: number };
  t.equal(r.found, true, 'a lesion at the tap');
  t.equal(r.seq, held.seq, 'on the held frame');
  const filled = fillPolygon(r.contour, width, height);
  const d = dice(filled, truth.lesionMask);
  t.ok(d > 0.85, `the proposed outline against the phantom's truth: Dice ${d.toFixed(3)}`);
  const grown = (await a.ask({ type: 'proposal', action: 'grow' })).result as { area: number; grownPx: number };
  t.ok(grown.area > r.area && grown.grownPx > 0, `grow: ${r.area} -> ${grown.area} px`);
  const shrunk = (await a.ask({ type: 'proposal', action: 'shrink' })).result as { area: number; grownPx: number };
  t.ok(shrunk.area < grown.area && shrunk.grownPx === 0, `shrink: ${grown.area} -> ${shrunk.area} px`);
  const acc = (await a.ask({ type: 'proposal', action: 'accept' })).result as { shape: string; seq: number; area: number };
  t.match(acc, { shape: 'tap', seq: held.seq }, 'accepted: locked on the held frame');
  await until(() => a.frames.some((f) => f.header.frozen && f.header.seq === held.seq && f.header.tracking.state === 'tracking'), 3000, 'the held frame re-sent with the new lock');
  t.match(await a.ask({ type: 'proposal', action: 'accept' }), { error: /proposal: nothing proposed to accept: tap the lesion first/, code: 'no-proposal' }, 'nothing left to accept');
  // A proposal on a held frame does not outlive the freeze.
  t.equal(((await a.ask({ type: 'segment', x: tap.x, y: tap.y })).result as { found: boolean }).found, true);
  await a.ask({ type: 'freeze', frozen: false });
  t.match(await a.ask({ type: 'proposal', action: 'accept' }), { error: new RegExp(`proposal: it was made on held frame ${held.seq}, which is no longer held: tap again`), code: 'no-proposal' }, 'unfrozen: the proposal is gone');
  t.match((await a.ask({ type: 'proposal', action: 'grow' })).error, /nothing proposed to grow/, 'and dropped');
  // Far from the lesion: the top-left corner of the pane.
  const far = (await a.ask({ type: 'segment', x: 6, y: 6 })).result as { found: boolean; reason: string };
  t.match(far, { found: false, reason: /no lesion found/ }, 'a tap far from the lesion finds nothing');
  t.match((await a.ask({ type: 'segment', x: width + 5, y: 10 })).error, /segment: the seed \(\d+, 10\) lies outside the \d+x\d+ pane/, 'a tap off the pane');
  const empty = await a.ask({ type: 'segment', box: { x0: 10, y0: 10, x1: 5, y1: 20 } });
  t.match(empty.error, /segment: the box .* is empty/, 'an empty box');
  t.notOk('code' in empty, 'a refusal the page need not act on carries no code');
  t.match((await a.ask({ type: 'segment', x: 1 } as never)).error, /segment/, 'a tap without y is refused by the schema');
  const audited = entries().filter((e) => e.what === 'segment' || (e.what === 'lock' && e.details.shape === 'tap'));
  t.same(audited.map((e) => e.what), ['segment', 'lock', 'segment', 'segment'], 'proposals and the lock audited');
  t.same(pipeline.stats().errors, 0);
  t.same([...a.invalid, ...b.invalid], [], 'every message fits the schema');
});

t.test('without a segmenter the tap is refused by name', async (t) => {
  const { url } = await setup(t);
  const a = await client(url);
  t.equal(a.text.find((m) => m.type === 'hello')!.segmenter, null, 'hello says no segmenter is loaded');
  await until(() => a.frames.length > 2, 8000, 'frames');
  t.match((await a.ask({ type: 'segment', x: 50, y: 50 })).error, /segment: no segmenter is loaded: outline the lesion instead/);
  t.match((await a.ask({ type: 'proposal', action: 'grow' })).error, /nothing proposed to grow/);
});
