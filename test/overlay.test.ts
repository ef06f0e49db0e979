import t from 'tap';
import { connect } from 'node:net';
import WebSocket from 'ws';
import { createLesionMask, maskStats, polygonMask, type LesionMask } from '../core/mask.js';
import { loadRiskModel } from '../core/models.js';
import { Pipeline } from '../core/pipeline.js';
import { PhantomScanner, type PhantomTruth } from '../device/phantom.js';
import { decodeFrameMessage, serverMessageProblems, type OverlayHeader } from '../web-overlay/protocol.js';
import { OverlayServer } from '../web-overlay/server.js';
import { dice, fillPolygon, sleep, until, within } from './helpers.js';

async function setup() {
  const phantom = new PhantomScanner({ seed: 5 });
  const pipeline = new Pipeline({ layout: phantom.layout, models: [await loadRiskModel('busi-malignancy')] }).start();
  // These tests send many messages in a row: a wider rate limit than the pages get.
  const server = new OverlayServer({ pipeline, port: 0, controlRate: { perSecond: 200, burst: 200 } });
  const url = await server.listen();
  return { phantom, pipeline, server, url };
}

/** Collects what a socket receives; every message is checked against the protocol's schema as it arrives. */
export function collect(ws: WebSocket) {
  const text: Array<Record<string, unknown>> = [];
  const frames: Array<{ header: OverlayHeader; jpeg: Uint8Array }> = [];
  const invalid: string[] = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const msg = isBinary ? decodeFrameMessage(new Uint8Array(data)) : JSON.parse(data.toString());
    const problems = serverMessageProblems(isBinary ? msg.header : msg);
    if (problems.length) invalid.push(`${isBinary ? 'frame' : msg.type}: ${problems.join('; ')}`);
    if (isBinary) frames.push(msg);
    else text.push(msg);
  });
  return { text, frames, invalid };
}

/** The reply (ack or error) to the page message with this id. */
const replyTo = (got: ReturnType<typeof collect>, id: string) => got.text.find((m) => (m.type === 'ack' || m.type === 'error') && m.id === id);


t.test('WebSocket overlay messages carry a contour that matches the ground truth', async (t) => {
  const { phantom, pipeline, server, url } = await setup();
  t.teardown(async () => { await server.close(); await pipeline.stop(); });
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/, 'loopback by default');
  const ws = new WebSocket(url.replace('http', 'ws') + 'ws');
  const got = collect(ws);
  await new Promise((r) => ws.once('open', r));
  await until(() => got.text.some((m) => m.type === 'hello'), 8000, 'hello');
  const hello = got.text.find((m) => m.type === 'hello')!;
  t.match(hello.notice, /not for diagnosis/);
  t.same((hello.models as Array<{ id: string }>).map((m) => m.id), ['busi-malignancy']);

  const r = phantom.layout.panes.bmode.rect;
  const truths = new Map<number, PhantomTruth>();
  for (let i = 0; i < 40; i++) {
    const { frame, truth } = phantom.frameAt(i);
    truths.set(i, truth);
    if (i === 0) pipeline.lockLesion(createLesionMask(truth.lesionMask.slice(), r.width, r.height));
    pipeline.push(frame, truth);
    await sleep(15);
  }
  await until(() => got.frames.length >= 10 && got.text.some((m) => m.type === 'scores' && m.live), 5000, 'frames and live scores');
  let checked = 0;
  for (const f of got.frames) {
    const h = f.header;
    t.equal(f.jpeg[0], 0xff, 'JPEG payload');
    if (h.tracking.state === 'idle') continue;
    const truth = truths.get(h.seq)!;
    const filled = fillPolygon(h.lesion!, r.width, r.height);
    const d = dice(filled, truth.lesionMask);
    t.ok(d > 0.97, `frame ${h.seq}: contour vs true mask Dice ${d.toFixed(4)}`);
    t.ok(Math.hypot(h.tracking.center!.x - truth.center.x, h.tracking.center!.y - truth.center.y) < 2, `frame ${h.seq}: centre within 2 px`);
    t.same(h.rings.map((x) => x.mm), [3, 5, 8]);
    // Each ring contour encloses the lesion and the previous ring.
    const areas = h.rings.map((x) => fillPolygon(x.contour, r.width, r.height).reduce((a, v) => a + (v ? 1 : 0), 0));
    t.ok(areas[0] > filled.reduce((a, v) => a + (v ? 1 : 0), 0) && areas[1] > areas[0] && areas[2] > areas[1], 'rings nest outward');
    checked++;
  }
  t.ok(checked >= 5, `${checked} tracked frames checked`);
  const s = got.text.find((m) => m.type === 'scores' && m.live) as { scores: Array<{ modelId: string; notice: string }> };
  t.equal(s.scores[0].modelId, 'busi-malignancy');
  ws.close();
});

t.test('malformed messages get an error reply naming the problem, and the connection carries on', async (t) => {
  const { pipeline, server, url } = await setup();
  t.teardown(async () => { await server.close(); await pipeline.stop(); });
  const { ws, got } = await openSocket(url);
  const cases: Array<[string, string | Buffer, string]> = [
    ['not JSON', '{not json', 'message is not valid JSON'],
    ['unknown type', JSON.stringify({ type: 'launch-missiles' }), 'unknown message type "launch-missiles" (known: ping, control, layers, models, freeze, lock, clinical, record, mark, reference, perfusion, segment, proposal)'],
    ['not an object', JSON.stringify([1, 2]), 'message must be an object with a string "type"'],
    ['type not a string', JSON.stringify({ type: 7 }), 'message must be an object with a string "type"'],
    ['binary', Buffer.from([1, 2, 3]), 'binary messages are not accepted from the page'],
    ['unknown field', JSON.stringify({ type: 'ping', extra: 1 }), 'ping: unknown field "extra"'],
    ['id not a string', JSON.stringify({ type: 'ping', id: 5 }), 'ping.id must be a string (got number)'],
    ['layer name misspelt', JSON.stringify({ type: 'layers', layers: { contuor: false } }), 'layers.layers: unknown field "contuor"'],
    ['no layer named', JSON.stringify({ type: 'layers', layers: {} }), 'layers.layers must name at least 1 field'],
    ['layer not boolean', JSON.stringify({ type: 'layers', layers: { rings: 'off' } }), 'layers.layers.rings must be a boolean (got string)'],
    ['control action', JSON.stringify({ type: 'control', action: 'grab' }), 'control.action must be one of "take", "release" (got "grab")'],
    ['control without action', JSON.stringify({ type: 'control' }), 'control.action is required'],
    ['models repeated', JSON.stringify({ type: 'models', enabled: ['a', 'a'] }), 'models.enabled must not repeat an item (items 0 and 1 are the same)'],
    ['freeze not boolean', JSON.stringify({ type: 'freeze', frozen: 1 }), 'freeze.frozen must be a boolean (got number)'],
    ['clinical value an array', JSON.stringify({ type: 'clinical', values: { age: [1] } }), 'clinical.values.age must be a number, true/false, a level name (up to 64 characters), or null to clear'],
    ['record action', JSON.stringify({ type: 'record', action: 'pause' }), 'record.action must be one of "start", "stop" (got "pause")'],
    ['mark label too long', JSON.stringify({ type: 'mark', label: 'x'.repeat(200) }), 'mark.label must be at most 120 characters (got 200)'],
  ];
  for (const [what, msg, error] of cases) {
    const n = got.text.length;
    ws.send(msg);
    await until(() => got.text.slice(n).some((m) => m.type === 'error'), 8000, `reply to ${what}`);
    const reply = got.text.slice(n).find((m) => m.type === 'error')!;
    t.equal(reply.error, error, what);
  }
  // The reply names the request it answers when it can.
  ws.send(JSON.stringify({ type: 'freeze', frozen: 'yes', id: 'f9' }));
  await until(() => replyTo(got, 'f9') !== undefined, 8000, 'reply f9');
  t.match(replyTo(got, 'f9'), { type: 'error', re: 'freeze', id: 'f9' });
  ws.send(JSON.stringify({ type: 'ping', id: 'last' }));
  await until(() => replyTo(got, 'last') !== undefined, 8000, 'ping ack');
  t.match(replyTo(got, 'last'), { type: 'ack', re: 'ping' });
  t.equal(ws.readyState, WebSocket.OPEN);
  t.equal(pipeline.frozen, false, 'nothing changed');
  t.same(got.invalid, [], 'every message the server sent fits the protocol schema');
  ws.close();
});

/** Records the masks handed to pipeline.lockLesion and the pipeline's 'lock' events. */
function spyLocks(pipeline: Pipeline) {
  const masks: LesionMask[] = [];
  const events: number[] = [];
  const lockLesion = pipeline.lockLesion.bind(pipeline);
  pipeline.lockLesion = (m: LesionMask) => { masks.push(m); return lockLesion(m); };
  pipeline.on('lock', (seq: number) => events.push(seq));
  return { masks, events };
}

/** Feeds phantom frames (bounded) until cond() holds or the frames run out. */
async function feed(phantom: PhantomScanner, pipeline: Pipeline, from: number, frames: number, cond: () => boolean): Promise<number> {
  let i = from;
  for (; i < from + frames && !cond(); i++) {
    const { frame, truth } = phantom.frameAt(i);
    pipeline.push(frame, truth);
    await sleep(15);
  }
  return i;
}

async function openSocket(url: string) {
  const ws = new WebSocket(url.replace('http', 'ws') + 'ws');
  const got = collect(ws);
  await new Promise((r) => ws.once('open', r));
  await until(() => got.text.some((m) => m.type === 'hello'), 8000, 'hello');
  return { ws, got };
}

t.test('lock with a polygon: the server builds the mask and tracking restarts from it', async (t) => {
  const { phantom, pipeline, server, url } = await setup();
  t.teardown(async () => { await server.close(); await pipeline.stop(); });
  const spy = spyLocks(pipeline);
  const { ws, got } = await openSocket(url);
  const r = phantom.layout.panes.bmode.rect;
  // An octagon around the phantom's lesion, as a sonographer would click it (fractional pane pixels).
  const c = phantom.frameAt(0).truth.center, rad = Math.sqrt(maskStats(createLesionMask(phantom.frameAt(0).truth.lesionMask, r.width, r.height)).area / Math.PI) + 3;
  const polygon: number[] = [];
  for (let k = 0; k < 8; k++) polygon.push(Math.round((c.x + rad * Math.cos((k * Math.PI) / 4)) * 100) / 100, Math.round((c.y + rad * Math.sin((k * Math.PI) / 4)) * 100) / 100);
  let i = await feed(phantom, pipeline, 0, 5, () => false);
  t.equal(pipeline.trackingState, 'idle', 'idle before the lock');
  ws.send(JSON.stringify({ type: 'lock', polygon, id: 'p1' }));
  // The lock is taken on the next frame; the reply follows it.
  const replied = () => replyTo(got, 'p1') !== undefined;
  await until(() => spy.masks.length > 0, 8000, 'mask handed over');
  i = await feed(phantom, pipeline, i, 50, replied);
  await until(replied, 8000, 'lock reply');
  const reply = replyTo(got, 'p1')!;
  const expected = polygonMask(r.width, r.height, polygon);
  t.same(reply, { type: 'ack', v: 3, re: 'lock', id: 'p1', result: { shape: 'polygon', points: 8, area: maskStats(expected).area, seq: spy.events[0] } }, 'ack, with the seq of the frame it was taken on');
  t.equal(spy.masks.length, 1, 'one mask handed to pipeline.lockLesion');
  t.same([spy.masks[0].width, spy.masks[0].height], [r.width, r.height], 'B-mode pane sized');
  t.ok(Buffer.from(spy.masks[0].data).equals(Buffer.from(expected.data)), 'the mask is polygonMask of the outline');
  const before = got.frames.length;
  i = await feed(phantom, pipeline, i, 100, () => spy.events.length > 0 && got.frames.slice(before).some((f) => f.header.tracking.state !== 'idle'));
  t.equal(spy.events.length, 1, "the pipeline emitted 'lock'");
  t.not(pipeline.trackingState, 'idle', `tracking left idle (${pipeline.trackingState})`);
  t.ok(got.frames.slice(before).some((f) => f.header.tracking.state !== 'idle' && f.header.lesion !== null), 'frames after the lock carry a tracking state and a contour');
  ws.send(JSON.stringify({ type: 'ping' }));
  await until(() => got.text.some((m) => m.type === 'ack' && m.re === 'ping'), 8000, 'ping acknowledged');
  t.equal(ws.readyState, WebSocket.OPEN);
  t.same(got.invalid, [], 'every message the server sent fits the protocol schema');
  ws.close();
});

t.test('lock with an ellipse: the same, from a centred ellipse', async (t) => {
  const { phantom, pipeline, server, url } = await setup();
  t.teardown(async () => { await server.close(); await pipeline.stop(); });
  const spy = spyLocks(pipeline);
  const { ws, got } = await openSocket(url);
  const pane = phantom.layout.panes.bmode, r = pane.rect;
  const ellipse = { cx: (r.width - 1) / 2, cy: (r.height - 1) / 2, rx: 5 / pane.spacingX, ry: 4 / pane.spacingY };
  ws.send(JSON.stringify({ type: 'lock', ellipse, id: 'e1' }));
  const replied = () => replyTo(got, 'e1') !== undefined;
  await until(() => spy.masks.length > 0, 8000, 'mask handed over');
  await feed(phantom, pipeline, 0, 50, replied);
  await until(replied, 8000, 'lock reply');
  const ack = replyTo(got, 'e1')! as { type: string; result: { shape: string; area: number } };
  t.equal(ack.type, 'ack', JSON.stringify(ack));
  const reply = ack.result;
  t.equal(reply.shape, 'ellipse');
  t.ok(Math.abs(reply.area - Math.PI * ellipse.rx * ellipse.ry) < Math.PI * (ellipse.rx + ellipse.ry) / 2, `area ${reply.area} px ~ pi*rx*ry`);
  t.equal(spy.masks.length, 1);
  const s = maskStats(spy.masks[0]);
  t.ok(Math.hypot(s.cx - ellipse.cx, s.cy - ellipse.cy) < 0.5, 'mask centred on the pane');
  await feed(phantom, pipeline, 50, 100, () => spy.events.length > 0 && got.frames.some((f) => f.header.tracking.state !== 'idle'));
  t.equal(spy.events.length, 1, "the pipeline emitted 'lock'");
  t.not(pipeline.trackingState, 'idle', `tracking left idle (${pipeline.trackingState})`);
  ws.close();
});

t.test('bad lock messages: an error naming the field and problem, nothing changes, the connection carries on', async (t) => {
  const { phantom, pipeline, server, url } = await setup();
  t.teardown(async () => { await server.close(); await pipeline.stop(); });
  const spy = spyLocks(pipeline);
  const { ws, got } = await openSocket(url);
  const tooMany = Array.from({ length: 2 * 1025 }, (_, k) => 100 + (k % 50));
  const cases: Array<[string, string, RegExp]> = [
    ['neither shape', JSON.stringify({ type: 'lock' }), /^lock needs one of "polygon" or "ellipse"$/],
    ['both shapes', JSON.stringify({ type: 'lock', polygon: [1, 2, 3, 4, 5, 6], ellipse: { cx: 1, cy: 1, rx: 1, ry: 1 } }), /^lock takes one of "polygon" or "ellipse", not both$/],
    ['polygon not an array', JSON.stringify({ type: 'lock', polygon: '10,10,20,20' }), /^lock\.polygon must be an array \(got string\)$/],
    ['polygon an object', JSON.stringify({ type: 'lock', polygon: { x: 1 } }), /^lock\.polygon must be an array \(got object\)$/],
    ['polygon null', JSON.stringify({ type: 'lock', polygon: null }), /^lock\.polygon must be an array \(got null\)$/],
    ['odd length', JSON.stringify({ type: 'lock', polygon: [100, 100, 200, 100, 200, 200, 100] }), /^lock\.polygon: odd length 7: points must be x,y pairs/],
    ['a string among the numbers', JSON.stringify({ type: 'lock', polygon: [100, 100, '200', 100, 200, 200] }), /^lock\.polygon\[2\] must be a number \(got string\)$/],
    ['a null among the numbers', JSON.stringify({ type: 'lock', polygon: [100, 100, 200, 100, 200, null] }), /^lock\.polygon\[5\] must be a number \(got null\)$/],
    ['nested arrays', JSON.stringify({ type: 'lock', polygon: [[100, 100], [200, 100], [200, 200], [1, 1], [2, 2]] }),
      /^lock\.polygon\[0\] must be a number \(got array\); lock\.polygon\[1\] .*; lock\.polygon\[2\] .*; \(and 2 more\)$/],
    ['a non-finite number', '{"type":"lock","polygon":[100,100,1e999,100,200,200]}', /^lock\.polygon\[2\] must be a finite number \(got Infinity\)$/],
    ['too few points', JSON.stringify({ type: 'lock', polygon: [100, 100, 200, 200] }), /^lock\.polygon: 2 points: at least 3 are needed$/],
    ['too many points', JSON.stringify({ type: 'lock', polygon: tooMany }), /^lock\.polygon: 1025 points: at most 1024 are accepted$/],
    ['outside the pane', JSON.stringify({ type: 'lock', polygon: [-50, -50, -10, -50, -10, -10] }), /^lock\.polygon: the outline covers no pixel centre of the 576x561 pane/],
    ['no area', JSON.stringify({ type: 'lock', polygon: [10, 10, 20, 20, 30, 30] }), /^lock\.polygon: the outline covers no pixel centre/],
    ['ellipse not an object', JSON.stringify({ type: 'lock', ellipse: 'big' }), /^lock\.ellipse must be an object \(got string\)$/],
    ['ellipse an array', JSON.stringify({ type: 'lock', ellipse: [1, 2, 3, 4] }), /^lock\.ellipse must be an object \(got array\)$/],
    ['ellipse missing ry', JSON.stringify({ type: 'lock', ellipse: { cx: 100, cy: 100, rx: 20 } }), /^lock\.ellipse\.ry is required$/],
    ['ellipse with a stray field', JSON.stringify({ type: 'lock', ellipse: { cx: 100, cy: 100, rx: 20, ry: 20, rz: 1 } }), /^lock\.ellipse: unknown field "rz"$/],
    ['ellipse cx a string', JSON.stringify({ type: 'lock', ellipse: { cx: '100', cy: 100, rx: 20, ry: 20 } }), /^lock\.ellipse\.cx must be a number \(got string\)$/],
    ['ellipse rx 0', JSON.stringify({ type: 'lock', ellipse: { cx: 100, cy: 100, rx: 0, ry: 20 } }), /^lock\.ellipse: rx must be a finite number > 0 \(got 0\)$/],
    ['ellipse ry negative', JSON.stringify({ type: 'lock', ellipse: { cx: 100, cy: 100, rx: 20, ry: -3 } }), /^lock\.ellipse: ry must be a finite number > 0 \(got -3\)$/],
    ['ellipse outside the pane', JSON.stringify({ type: 'lock', ellipse: { cx: 5000, cy: 100, rx: 20, ry: 20 } }), /^lock\.ellipse: no pixel centre of the 576x561 pane falls inside the ellipse$/],
  ];
  let i = await feed(phantom, pipeline, 0, 3, () => false);
  for (const [what, text, re] of cases) {
    const n = got.text.length;
    ws.send(text);
    await until(() => got.text.length > n && got.text.slice(n).some((m) => m.type !== 'status' && m.type !== 'scores'), 8000, `reply to ${what}`);
    const reply = got.text.slice(n).find((m) => m.type !== 'status' && m.type !== 'scores')!;
    t.equal(reply.type, 'error', `${what}: error reply`);
    t.equal(reply.v, 3);
    t.equal(reply.re, 'lock');
    t.match(reply.error, re, `${what}: ${reply.error}`);
  }
  i = await feed(phantom, pipeline, i, 10, () => false);
  t.equal(spy.masks.length, 0, 'no mask reached the pipeline');
  t.same(spy.events, [], "no 'lock' event");
  t.equal(pipeline.trackingState, 'idle', 'tracking still idle');
  ws.send(JSON.stringify({ type: 'ping', id: 'still' }));
  await until(() => replyTo(got, 'still') !== undefined, 8000, 'ping ack');
  t.equal(ws.readyState, WebSocket.OPEN, 'connection still open');
  // An outline too small to track is refused by the tracker on the next frame, by name.
  ws.send(JSON.stringify({ type: 'lock', polygon: [100, 100, 104, 100, 104, 104] }));
  await until(() => spy.masks.length === 1, 8000, 'tiny mask handed over');
  i = await feed(phantom, pipeline, i, 50, () => got.text.some((m) => m.type === 'error' && /too small/.test(String(m.error))));
  t.ok(got.text.some((m) => m.type === 'error' && /^lock: the lesion outline is too small to track/.test(String(m.error))), 'too small: refused by name');
  t.equal(pipeline.trackingState, 'idle', 'still idle');
  // And a good lock still works afterwards.
  ws.send(JSON.stringify({ type: 'lock', polygon: [100, 100, 200, 100, 200, 200, 100, 200] }));
  await until(() => spy.masks.length === 2, 8000, 'mask handed over');
  await feed(phantom, pipeline, i, 50, () => got.text.some((m) => m.type === 'ack' && m.re === 'lock'));
  await until(() => got.text.some((m) => m.type === 'ack' && m.re === 'lock'), 8000, 'lock ack');
  t.equal(spy.masks.length, 2);
  ws.close();
});

t.test('HTTP: the page, its assets, status; nothing else', async (t) => {
  const { pipeline, server, url } = await setup();
  t.teardown(async () => { await server.close(); await pipeline.stop(); });
  const page = await fetch(url);
  t.equal(page.status, 200);
  t.match(await page.text(), /not for diagnosis/);
  t.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
  t.equal((await fetch(url + 'app.js')).status, 200);
  t.equal((await fetch(url + '../../etc/passwd')).status, 404);
  t.equal((await fetch(url + 'package.json')).status, 404);
  t.equal((await fetch(url, { method: 'POST' })).status, 405);
  const status = await (await fetch(url + 'api/status')).json() as { pipeline: { displayed: number } };
  t.equal(typeof status.pipeline.displayed, 'number');
});

t.test('close() ends even with a request caught half-sent (a page reconnecting as the server stops)', async (t) => {
  const { pipeline, server, url } = await setup();
  t.teardown(async () => { await pipeline.stop(); });
  const { port } = new URL(url);
  const sock = connect(Number(port), '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  // An upgrade request whose headers never end: the server holds an active connection.
  sock.write('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n');
  await sleep(50);
  await within(server.close(), 3000, 'server.close() with a half-sent request open');
  t.pass('closed');
  sock.destroy();
});
