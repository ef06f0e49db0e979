import t from 'tap';
import WebSocket from 'ws';
import { createLesionMask } from '../core/mask.js';
import { loadModelCard } from '../core/models.js';
import { Pipeline } from '../core/pipeline.js';
import { PhantomScanner, type PhantomTruth } from '../device/phantom.js';
import { decodeFrameMessage, type OverlayHeader } from '../web-overlay/protocol.js';
import { OverlayServer } from '../web-overlay/server.js';
import { dice, fillPolygon, sleep, until } from './helpers.js';

async function setup() {
  const phantom = new PhantomScanner({ seed: 5 });
  const pipeline = new Pipeline({ layout: phantom.layout, models: [loadModelCard('busi-firstorder-demo.json')] }).start();
  const server = new OverlayServer({ pipeline, port: 0 });
  const url = await server.listen();
  return { phantom, pipeline, server, url };
}

function collect(ws: WebSocket) {
  const text: Array<Record<string, unknown>> = [];
  const frames: Array<{ header: OverlayHeader; jpeg: Uint8Array }> = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) frames.push(decodeFrameMessage(new Uint8Array(data)));
    else text.push(JSON.parse(data.toString()));
  });
  return { text, frames };
}


t.test('WebSocket overlay messages carry a contour that matches the ground truth', async (t) => {
  const { phantom, pipeline, server, url } = await setup();
  t.teardown(async () => { await server.close(); await pipeline.stop(); });
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/, 'loopback by default');
  const ws = new WebSocket(url.replace('http', 'ws') + 'ws');
  const got = collect(ws);
  await new Promise((r) => ws.once('open', r));
  await until(() => got.text.some((m) => m.type === 'hello'), 2000, 'hello');
  const hello = got.text.find((m) => m.type === 'hello')!;
  t.match(hello.notice, /not for diagnosis/);
  t.same((hello.models as Array<{ id: string }>).map((m) => m.id), ['busi-firstorder-demo']);

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
  t.equal(s.scores[0].modelId, 'busi-firstorder-demo');
  ws.close();
});

t.test('malformed messages get an error reply and the connection carries on', async (t) => {
  const { pipeline, server, url } = await setup();
  t.teardown(async () => { await server.close(); await pipeline.stop(); });
  const ws = new WebSocket(url.replace('http', 'ws') + 'ws');
  const got = collect(ws);
  await new Promise((r) => ws.once('open', r));
  ws.send('{not json');
  ws.send(JSON.stringify({ type: 'launch-missiles' }));
  ws.send(JSON.stringify([1, 2]));
  ws.send(Buffer.from([1, 2, 3]));
  ws.send(JSON.stringify({ type: 'ping' }));
  await until(() => got.text.some((m) => m.type === 'pong'), 2000, 'pong');
  const errors = got.text.filter((m) => m.type === 'error').map((m) => m.error);
  t.same(errors, ['message is not valid JSON', 'unknown message type "launch-missiles"', 'message must be an object with a string "type"', 'binary messages are not accepted from the page']);
  t.equal(ws.readyState, WebSocket.OPEN);
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

t.test('security: loopback only; the socket refuses pages from other origins', async (t) => {
  const phantom = new PhantomScanner({ seed: 1, width: 640, height: 360 });
  const pipeline = new Pipeline({ layout: phantom.layout });
  t.throws(() => new OverlayServer({ pipeline, host: '0.0.0.0' }), /only loopback/);
  t.throws(() => new OverlayServer({ pipeline, host: '192.168.1.5' }), /only loopback/);
  const server = new OverlayServer({ pipeline, port: 0 });
  const url = await server.listen();
  t.teardown(() => server.close());
  const wsUrl = url.replace('http', 'ws') + 'ws';
  const evil = new WebSocket(wsUrl, { origin: 'http://evil.example' });
  const refused = await new Promise<string>((resolve) => { evil.once('unexpected-response', (_q, res) => resolve(String(res.statusCode))); evil.once('open', () => resolve('open')); evil.once('error', (e) => resolve(e.message)); });
  t.equal(refused, '401', 'other origin refused');
  const own = new WebSocket(wsUrl, { origin: url.replace(/\/$/, '') });
  await new Promise((r) => own.once('open', r));
  t.pass('same origin accepted');
  own.close();
});
