// The sonomics overlay page: draws each video frame with the overlay that travelled with it
// (same WebSocket message, same sequence number), shows live scores, tracking and status.
const canvas = document.getElementById('view');
const ctx = canvas.getContext('2d');
const $ = (id) => document.getElementById(id);
const state = { layout: null, models: [], framesDrawn: 0, lastSeq: -1, lastHeader: null, scores: null, errors: [], drawing: false, next: null };
window.__sonomics = state;

function connect() {
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => { $('conn').textContent = 'live'; $('conn').className = 'pill ok'; };
  ws.onclose = () => { $('conn').textContent = 'reconnecting…'; $('conn').className = 'pill'; setTimeout(connect, 1000); };
  ws.onmessage = (ev) => {
    if (typeof ev.data !== 'string') { onFrame(ev.data); return; }
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    if (msg.type === 'hello') onHello(msg);
    else if (msg.type === 'scores') onScores(msg);
    else if (msg.type === 'status') onStatus(msg.stats);
    else if (msg.type === 'error') state.errors.push(msg.error);
  };
  state.ws = ws;
}

function onHello(msg) {
  state.layout = msg.layout;
  state.models = msg.models;
  $('notice').textContent = msg.notice;
  canvas.width = msg.layout.width;
  canvas.height = msg.layout.height;
}

// Frames: decode, then draw picture + its own overlay. While one is decoding, keep only the newest.
function onFrame(buf) {
  const view = new DataView(buf);
  const n = view.getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, n)));
  const jpeg = new Blob([new Uint8Array(buf, 4 + n)], { type: 'image/jpeg' });
  if (state.drawing) { state.next = { header, jpeg }; return; }
  draw(header, jpeg);
}

async function draw(header, jpeg) {
  state.drawing = true;
  try {
    const bmp = await createImageBitmap(jpeg);
    ctx.drawImage(bmp, 0, 0);
    bmp.close();
    drawOverlay(header);
    state.framesDrawn++;
    state.lastSeq = header.seq;
    state.lastHeader = header;
    showTracking(header.tracking);
  } finally {
    state.drawing = false;
    const next = state.next;
    state.next = null;
    if (next) draw(next.header, next.jpeg);
  }
}

function path(contour, ox, oy) {
  ctx.beginPath();
  for (let i = 0; i < contour.length; i += 2) {
    const x = ox + contour[i] + 0.5, y = oy + contour[i + 1] + 0.5;
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  }
  ctx.closePath();
}

function drawOverlay(h) {
  if (!state.layout || !h.lesion) return;
  const colourFor = { tracking: '#ffd23f', uncertain: '#ffb347', lost: '#ff5c5c' };
  for (const pane of Object.values(state.layout.panes)) {
    const { x, y } = pane.rect;
    if ($('layer-rings').checked) {
      ctx.setLineDash([6, 5]);
      ctx.lineWidth = 1.5;
      h.rings.forEach((r, k) => {
        ctx.strokeStyle = `rgba(57,192,255,${0.9 - k * 0.2})`;
        path(r.contour, x, y);
        ctx.stroke();
      });
      ctx.setLineDash([]);
    }
    if ($('layer-contour').checked) {
      ctx.strokeStyle = colourFor[h.tracking.state] || '#ffd23f';
      ctx.lineWidth = 2;
      path(h.lesion, x, y);
      ctx.stroke();
    }
  }
}

function showTracking(t) {
  const el = $('tracking');
  el.textContent = t.state;
  el.className = `state ${t.state}`;
  $('confidence').textContent = t.state === 'idle' ? '–' : t.confidence.toFixed(2);
}

function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }

function onScores(msg) {
  state.scores = msg;
  const box = $('scores');
  box.replaceChildren();
  if (!msg.live) { box.append(el('div', 'small', msg.reason || 'no live score')); return; }
  for (const s of msg.scores) {
    const card = el('div', 'model' + (s.status === 'ok' ? '' : ' stale'));
    const model = state.models.find((m) => m.id === s.modelId);
    card.append(el('div', 'name', model ? model.task : s.modelId));
    card.append(el('div', 'small', `${s.modelId} v${s.version}`));
    if (s.status === 'invalid') { card.append(el('div', 'category hi', `invalid: ${s.problem}`)); box.append(card); continue; }
    const pct = (v) => `${(100 * v).toFixed(0)}%`;
    const line = el('div');
    line.append(el('span', 'value-text', pct(s.value)), el('span', 'category ' + (s.value >= s.cutoff ? 'hi' : 'lo'), `  ${s.category}`));
    card.append(line);
    const g = el('div', 'gauge');
    const band = el('div', 'band'); band.style.left = pct(s.band[0]); band.style.width = pct(Math.max(0.005, s.band[1] - s.band[0]));
    const cut = el('div', 'cutoff'); cut.style.left = pct(s.cutoff);
    const val = el('div', 'value'); val.style.left = `calc(${pct(s.value)} - 2px)`;
    g.append(band, cut, val);
    card.append(g);
    card.append(el('div', 'small', `band ${pct(s.band[0])}–${pct(s.band[1])} over ${s.frames} frames${s.status === 'warming-up' ? ' (warming up)' : ''}`));
    const ul = el('ul', 'drivers');
    for (const d of s.drivers) ul.append(el('li', '', `${d.feature.replace(/^bmode\.lesion\./, '')} ${d.contribution >= 0 ? '+' : ''}${d.contribution.toFixed(2)}`));
    card.append(ul);
    card.append(el('div', 'small', s.notice));
    box.append(card);
  }
}

function onStatus(stats) {
  const dl = $('status');
  dl.replaceChildren();
  const p = stats.pipeline;
  const row = (k, v) => dl.append(el('dt', '', k), el('dd', '', v));
  const ms = (s) => (s && s.count ? `${s.p50.toFixed(1)} / ${s.p99.toFixed(1)} ms` : '–');
  const src = stats.source;
  if (src) {
    row('source', `${src.id} ${Math.round(src.fps * 100) / 100} fps`);
    if (src.signal) row('signal', src.signal === 'live' ? 'live' : `NO SIGNAL${src.reason ? ` (${src.reason})` : ''}`);
    if (src.delivered !== undefined) row('capture', `${src.unique} new, ${src.duplicates} repeated, ${src.dropped} lost, ${src.gaps} gaps`);
  }
  row('latency display', ms(p.endToEnd.display));
  row('latency scores', ms(p.endToEnd.scores));
  row('frames', `${p.displayed} shown, ${p.scored} scored, ${p.duplicates ?? 0} repeats skipped`);
  row('dropped', `${p.dropped.display} display, ${p.dropped.features} features, ${p.dropped.risk} risk`);
  row('viewers', String(stats.overlay.viewers));
  for (const m of state.models) row('model', `${m.id} v${m.version}`);
}

connect();
