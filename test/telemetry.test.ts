// MQTT telemetry against a real mosquitto (test/mosquitto.ts starts it on a free loopback port):
// the normal flow with a real pipeline fed by the phantom, the last will when the publisher is
// killed, a broker outage with nothing lost, and the spool surviving a killed process. Every
// payload seen on the broker is checked against its schema and the no-patient-data rule.
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { createLesionMask } from '../core/mask.js';
import { loadRiskModel } from '../core/models.js';
import { Pipeline, type DisplayFrame, type ScoreUpdate } from '../core/pipeline.js';
import { PhantomScanner } from '../device/phantom.js';
import { TelemetryPublisher, type TelemetryOptions } from '../device/telemetry/publisher.js';
import { UUID_V4 } from '../device/telemetry/schema.js';
import { sleep, until, waitFor, within } from './helpers.js';
import { checkPayloads, contiguous, PublisherChild, seqs, startBroker, Subscriber, PREFIX, publisher as testPublisher, tmp } from './mosquitto.js';

/** The shared test publisher, with this file's timings. */
const publisher = (t: Test, o: Partial<TelemetryOptions> & Pick<TelemetryOptions, 'url' | 'deviceId'>) => testPublisher(t, { keepaliveS: 5, ...o });

function nextEvent<T>(p: Pipeline, name: string, pred: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { p.off(name, on); reject(new Error(`no ${name} within ${timeoutMs} ms`)); }, timeoutMs);
    const on = (v: T) => { if (pred(v)) { clearTimeout(timer); p.off(name, on); resolve(v); } };
    p.on(name, on);
  });
}

const connected = (p: TelemetryPublisher, ms: number) =>
  within(new Promise<void>((resolve) => { if (p.connected) resolve(); else p.once('connect', () => resolve()); }), ms, `${p.deviceId} to connect`);

t.test('normal flow: birth (retained), telemetry at the interval, events from a real pipeline, offline on stop', async (t) => {
  const broker = await startBroker(t);
  if (!broker) return;
  const sub = await Subscriber.open(broker.url, `${PREFIX}/#`);
  t.teardown(() => sub.close());

  // The phantom leaves the view after 1 s (10 fps): tracking is lost around frame 18.
  const phantom = new PhantomScanner({ seed: 3, width: 640, height: 480, fps: 10, motion: { excursions: [{ startS: 1, durationS: 4, dxMm: 35, dyMm: 0 }] } });
  const model = await loadRiskModel('busi-malignancy');
  const pipeline = new Pipeline({ layout: phantom.layout, models: [model] }).start();
  t.teardown(() => pipeline.stop());
  const pub = publisher(t, { url: broker.url, deviceId: 'box-flow' });
  pub.attachSource(phantom);
  pub.attachPipeline(pipeline);
  const t0 = performance.now();
  pub.start();
  await connected(pub, 10000);

  const late = await Subscriber.open(broker.url, `${PREFIX}/box-flow/status`);
  const birth = await late.waitFor((m) => m.json.state === 'online', 5000, 'the retained birth');
  t.equal(birth.retain, true, 'a client subscribing later gets the birth as a retained message');
  t.equal(birth.json.reason, 'birth');
  await late.close();

  const r = phantom.layout.panes.bmode.rect;
  let frozenSeq: number | null = null;
  let lostAt = -1;
  for (let i = 0; i < 45 && performance.now() - t0 < 60000; i++) {
    const { frame, truth } = phantom.frameAt(i);
    if (i === 0) void pipeline.lockLesion(createLesionMask(truth.lesionMask.slice(), r.width, r.height));
    const shown = nextEvent<DisplayFrame>(pipeline, 'display', (d) => d.frame.seq === i);
    const scored = nextEvent<ScoreUpdate>(pipeline, 'scores', (u) => u.seq === i, 5000).catch(() => undefined);
    pipeline.push(frame, truth);
    const d = await shown;
    if (d.rings && i < 10) await scored;
    if (i === 8) {
      frozenSeq = pipeline.freeze(true);
      pipeline.freeze(false);
    }
    if (d.track.state === 'lost' && lostAt < 0) lostAt = i;
    if (lostAt >= 0 && i > lostAt + 2) break;
    await sleep(40);
  }
  t.ok(lostAt > 0, `tracking was lost at frame ${lostAt}`);
  await sub.waitFor((m) => m.json.event === 'tracking.lost', 5000, 'tracking.lost');
  // Enough telemetry to see the interval.
  await until(() => sub.on('telemetry').length >= 6, 5000, 'six telemetry messages');
  await pub.stop();
  await sub.waitFor((m) => m.json.kind === 'status' && m.json.state === 'offline', 5000, 'the offline status on stop');
  await pipeline.stop();

  const seen = sub.seen;
  checkPayloads(t, seen, 'normal flow');
  t.notOk(seen.some((m) => /phantom:3|Doe|\^/.test(m.text)), 'no source id or name in any payload');
  const statuses = sub.on('status').map((m) => `${m.json.state}/${m.json.reason}`);
  t.same(statuses, ['online/birth', 'offline/shutdown'], 'birth on connect, offline on a clean stop');
  t.ok(sub.on('status').every((m) => m.json.boot === pub.boot), 'the status names this run');

  const tel = sub.on('telemetry');
  const gaps = tel.slice(1).map((m, i) => Date.parse(m.json.at as string) - Date.parse(tel[i].json.at as string)).sort((a, b) => a - b);
  const median = gaps[Math.floor(gaps.length / 2)];
  t.ok(median >= 150 && median <= 300, `telemetry every ${median} ms (median; interval 200 ms)`);
  const last = tel.at(-1)!.json as Record<string, never>;
  t.ok(tel.some((m) => (m.json.fps as { displayed: number }).displayed > 0), 'frame rate reported');
  t.ok(tel.some((m) => (m.json.latencyMs as { display: { p50: number | null } }).display.p50! > 0), 'latency percentiles reported');
  t.ok(tel.some((m) => (m.json.tracking as { state: string }).state === 'tracking'), 'tracking state reported');
  t.equal((last['source'] as { kind: string }).kind, 'phantom', 'the source kind, not its id');
  t.ok((last['memory'] as { rssBytes: number }).rssBytes > 0 && (last['cpu'] as { cores: number }).cores >= 1, 'CPU and memory');
  t.ok((last['frames'] as { received: number }).received > 0, 'frame counters');

  const events = sub.on('events').map((m) => m.json);
  const names = events.map((e) => e.event);
  t.same(names.filter((n) => n !== 'tracking.regained'), ['session.start', 'model.loaded', 'score.freeze', 'tracking.lost', 'session.stop'], 'the events, in order');
  const card = { id: model.card.id, version: model.card.version, sha256: model.card.sha256 };
  t.same((events[0].data as { models: unknown[] }).models, [card], 'the session names the models');
  t.same((events[0].data as { source: string }).source, 'phantom', 'and the kind of source');
  t.same((events[1].data as { model: unknown }).model, card, 'model loaded with version and hash');
  const session = events[0].session as string;
  t.match(session, UUID_V4, 'the session id is a random UUID');
  t.ok(events.every((e) => e.session === session), 'every event of the session carries its id');
  t.ok(tel.every((m) => m.json.session === session), 'so does the telemetry');
  const fz = events.find((e) => e.event === 'score.freeze')!.data as { frameSeq: number; live: boolean; scores: Array<{ modelId: string; value: number; category: string; band: number[] }> };
  t.equal(fz.frameSeq, frozenSeq, 'the frozen frame');
  t.equal(fz.live, true);
  t.equal(fz.scores[0].modelId, 'busi-malignancy');
  t.ok(fz.scores[0].value > 0 && fz.scores[0].value < 1 && fz.scores[0].band.length === 2 && fz.scores[0].category.length > 0, 'score summary: value, band, category');
  t.equal(contiguous(seqs(seen)), '', 'sequence numbers contiguous and in order');
  t.equal(new Set(seqs(seen)).size, seqs(seen).length, 'no duplicates on a healthy connection');
  t.same(pub.stats().refused, 0);
});

t.test('last will: the broker marks the box offline (retained) when the publisher is killed', async (t) => {
  const broker = await startBroker(t);
  if (!broker) return;
  const sub = await Subscriber.open(broker.url, `${PREFIX}/box-lwt/#`);
  t.teardown(() => sub.close());
  const child = new PublisherChild(t, { url: broker.url, deviceId: 'box-lwt', prefix: PREFIX, intervalMs: 200, keepaliveS: 5, spool: { dir: join(tmp(t), 'spool') } });
  const { boot } = await child.waitLine((l) => l.e === 'connect', 10000, 'connect');
  await sub.waitFor((m) => m.json.state === 'online', 5000, 'birth');
  await sub.waitFor((m) => m.json.kind === 'telemetry', 5000, 'telemetry');
  const killedAt = performance.now();
  await child.kill();
  const will = await sub.waitFor((m) => m.json.state === 'offline', 10000, 'the last will');
  t.equal(will.json.reason, 'connection lost');
  t.equal(will.json.boot, boot, 'the will names the run that died');
  t.ok(will.atMs - killedAt < 5000, `offline ${Math.round(will.atMs - killedAt)} ms after the kill`);
  const late = await Subscriber.open(broker.url, `${PREFIX}/box-lwt/status`);
  t.teardown(() => late.close());
  const kept = await late.waitFor(() => true, 5000, 'the retained status');
  t.equal(kept.json.state, 'offline', 'the fleet sees the box offline: the will is retained');
  t.equal(kept.retain, true);
  checkPayloads(t, [...sub.seen, ...late.seen], 'last will');
});

t.test('broker outage: the publisher keeps producing into its spool; after the broker is back nothing is lost, in order', async (t) => {
  // The broker's persistence keeps only the test subscriber's session (so it misses nothing while
  // it reconnects); what the publisher produces during the outage lives in its own spool.
  const broker = await startBroker(t, { persistence: true });
  if (!broker) return;
  const sub = await Subscriber.open(broker.url, `${PREFIX}/box-outage/#`, { clientId: 'sonomics-test-outage-sub', clean: false, reconnectPeriod: 100 });
  t.teardown(() => sub.close());
  const pub = publisher(t, { url: broker.url, deviceId: 'box-outage', intervalMs: 100, reconnectMs: 500 });
  pub.start();
  await connected(pub, 10000);
  await until(() => sub.on('telemetry').length >= 5, 5000, 'five telemetry messages');

  const down = new Promise<void>((resolve) => pub.once('disconnect', () => resolve()));
  await broker.stop('SIGTERM');
  await within(down, 10000, 'the publisher to notice the broker is gone');
  const atStop = pub.stats().spool.nextId;
  pub.event('source.signal', { state: 'no signal' });
  await sleep(1500);
  const during = pub.stats();
  t.ok(during.spooled >= 10, `${during.spooled} messages spooled while the broker was down`);
  t.equal(during.connected, false);

  await broker.start();
  await connected(pub, 15000);
  t.ok(await pub.flush(10000), 'the spool drained after the reconnect');
  const lastSeq = pub.stats().spool.nextId - 1;
  await sub.waitFor((m) => m.json.seq === lastSeq, 10000, `the subscriber to get seq ${lastSeq}`);
  const s = seqs(sub.seen);
  t.equal(contiguous(s), '', 'nothing lost, in order');
  t.ok(s.includes(atStop) && s.includes(lastSeq), `from before the outage through after it (${s[0]}..${lastSeq})`);
  t.ok(sub.seen.some((m) => m.json.event === 'source.signal'), 'the event made during the outage arrived');
  const dups = s.length - new Set(s).size;
  t.ok(dups <= 32, `${dups} duplicates (QoS 1 is at least once: a message in flight at the cut may come twice)`);
  t.equal(pub.stats().reconnects, 1);
  t.equal(pub.stats().dropped, 0);
  t.same(sub.on('status').filter((m) => m.json.state === 'online').length >= 2, true, 'a new birth after the reconnect');
  checkPayloads(t, sub.seen, 'outage');
});

t.test('the spool survives a killed process: the next run sends what the last one could not, in order', async (t) => {
  const broker = await startBroker(t);
  if (!broker) return;
  const sub = await Subscriber.open(broker.url, `${PREFIX}/box-restart/#`, { reconnectPeriod: 100 });
  t.teardown(() => sub.close());
  const dir = join(tmp(t), 'spool');
  const opts: TelemetryOptions = { url: broker.url, deviceId: 'box-restart', prefix: PREFIX, intervalMs: 100, reconnectMs: 300, keepaliveS: 5, spool: { dir } };
  const child = new PublisherChild(t, opts);
  await child.waitLine((l) => l.e === 'connect', 10000, 'connect');
  await until(() => sub.on('telemetry').length >= 3, 5000, 'telemetry from the first run');
  await broker.stop('SIGKILL');
  await child.waitLine((l) => l.e === 'stats' && l.connected === false && (l.spooled as number) >= 8, 10000, 'eight messages spooled while the broker is down');
  await child.kill();
  const leftBehind = child.lastStats!;
  await broker.start();
  // A fresh subscription (the broker kept nothing): it is in place before the next run connects.
  await sub.close();
  const sub2 = await Subscriber.open(broker.url, `${PREFIX}/box-restart/#`);
  t.teardown(() => sub2.close());
  const pub = publisher(t, { ...opts });
  pub.start();
  await connected(pub, 10000);
  await sub2.waitFor((m) => m.json.kind === 'telemetry' && m.json.boot === pub.boot, 10000, 'telemetry of the new run');
  t.ok(await pub.flush(10000), 'drained');
  const lastSeq = pub.stats().spool.nextId - 1;
  await sub2.waitFor((m) => m.json.seq === lastSeq, 10000, `seq ${lastSeq}`);
  const all = [...sub.seen, ...sub2.seen];
  const s = seqs(all);
  t.equal(contiguous(s), '', 'nothing lost across the killed process, in order');
  const bootsInOrder = [...new Set(all.filter((m) => m.json.kind === 'telemetry').map((m) => m.json.boot))];
  t.equal(bootsInOrder.length, 2, 'messages of both runs');
  t.equal(bootsInOrder[1], pub.boot, "the dead run's messages first, then the new run's");
  t.ok(new Set(s).size >= (leftBehind.nextId as number), `every message of the first run arrived (${leftBehind.nextId} made, ${leftBehind.spooled} of them left in its spool)`);
  t.ok(sub2.seen.filter((m) => m.json.boot !== pub.boot).length >= (leftBehind.spooled as number), 'what the killed run left in its spool was sent by the next run');
  checkPayloads(t, all, 'restart');
});

t.test('waits are bounded: an unreachable broker leaves everything in the spool and stop() returns', async (t) => {
  const pub = publisher(t, { url: 'mqtt://127.0.0.1:1', deviceId: 'box-nobroker', intervalMs: 50, reconnectMs: 200, stopTimeoutMs: 500 });
  pub.start();
  await waitFor(() => pub.stats().spooled >= 3, 3000);
  t.equal(pub.connected, false);
  t.ok(pub.stats().lastError, `the error is kept: ${pub.stats().lastError}`);
  const t0 = performance.now();
  await pub.stop();
  t.ok(performance.now() - t0 < 3000, 'stop() returned');
  t.ok(pub.stats().spooled >= 3, 'the messages stay spooled for the next start');
});
