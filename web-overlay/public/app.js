// The sonomics overlay page: draws each video frame with the overlay that travelled with it
// (same WebSocket message, same sequence number), shows live scores, tracking and status, and
// lets the sonographer outline the lesion (or lock a centred ellipse) to (re)start tracking.
const canvas = document.getElementById('view');
const ctx = canvas.getContext('2d');
const $ = (id) => document.getElementById(id);
const state = {
  layout: null, models: [], framesDrawn: 0, lastSeq: -1, lastHeader: null, scores: null, errors: [], drawing: false, next: null,
  bitmap: null,
  // Tracking state of the newest frame; scores for frames up to notLiveSeq are not shown as live.
  trackingState: 'idle', notLiveSeq: -1,
  // Outline in progress: { points: [x0, y0, ...] } in B-mode pane pixel coordinates, or null.
  outline: null, lockPending: false, locks: [],
};
window.__sonomics = state;

const MAX_OUTLINE_POINTS = 1024;
const ELLIPSE_RADII_MM = [5, 4];

function connect() {
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => { $('conn').textContent = 'live'; $('conn').className = 'pill ok'; };
  ws.onclose = () => {
    $('conn').textContent = 'reconnecting…';
    $('conn').className = 'pill';
    // Nothing shown may pass for live while the page hears nothing.
    state.scores = null;
    state.trackingState = 'disconnected';
    state.lockPending = false;
    renderScores();
    setTimeout(connect, 1000);
  };
  ws.onmessage = (ev) => {
    if (typeof ev.data !== 'string') { onFrame(ev.data); return; }
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    if (msg.type === 'hello') onHello(msg);
    else if (msg.type === 'scores') onScores(msg);
    else if (msg.type === 'status') onStatus(msg.stats);
    else if (msg.type === 'locked') onLocked(msg);
    else if (msg.type === 'error') onError(msg.error);
  };
  state.ws = ws;
}

function onHello(msg) {
  state.layout = msg.layout;
  state.models = msg.models;
  $('notice').textContent = msg.notice;
  canvas.width = msg.layout.width;
  canvas.height = msg.layout.height;
  // A new connection may be a restarted server: its frame numbers start again.
  state.lastSeq = -1;
  state.notLiveSeq = -1;
  state.scores = null;
  renderScores();
  $('outline').disabled = false;
  $('lock-ellipse').disabled = false;
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
    // Keep the picture: an outline in progress is redrawn on it between frames.
    if (state.bitmap) state.bitmap.close();
    state.bitmap = bmp;
    state.lastHeader = header;
    redraw();
    state.framesDrawn++;
    state.lastSeq = header.seq;
    showTracking(header.tracking);
    setTrackingState(header.tracking.state, header.seq, header.tracking.reason);
  } finally {
    state.drawing = false;
    const next = state.next;
    state.next = null;
    if (next) draw(next.header, next.jpeg);
  }
}

function redraw() {
  if (state.bitmap) ctx.drawImage(state.bitmap, 0, 0);
  else ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (state.lastHeader) drawOverlay(state.lastHeader);
  drawOutline();
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

// ---- Outlining the lesion -------------------------------------------------------------------

// Screen (client) position -> B-mode pane pixel coordinates. The canvas is scaled by CSS with
// object-fit: contain (centred, letterboxed); pane pixel k spans canvas [rect.x + k, rect.x + k + 1),
// and pane coordinate k names its centre, as in the contours the server sends.
function toPane(clientX, clientY) {
  const r = canvas.getBoundingClientRect();
  const s = Math.min(r.width / canvas.width, r.height / canvas.height);
  const cx = (clientX - r.left - (r.width - canvas.width * s) / 2) / s;
  const cy = (clientY - r.top - (r.height - canvas.height * s) / 2) / s;
  const b = state.layout.panes.bmode.rect;
  return { x: cx - b.x - 0.5, y: cy - b.y - 0.5, inside: cx >= b.x && cx < b.x + b.width && cy >= b.y && cy < b.y + b.height };
}

const round2 = (v) => Math.round(v * 100) / 100;

function drawOutline() {
  const o = state.outline;
  if (!o || !state.layout || o.points.length === 0) return;
  const { x, y } = state.layout.panes.bmode.rect;
  const p = o.points;
  ctx.save();
  ctx.strokeStyle = '#ff4fd8';
  ctx.fillStyle = '#ff4fd8';
  ctx.lineWidth = 2;
  ctx.beginPath();
  for (let i = 0; i < p.length; i += 2) {
    const px = x + p[i] + 0.5, py = y + p[i + 1] + 0.5;
    if (i === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
  }
  ctx.stroke();
  if (p.length >= 6) {
    // The closing edge, dashed: where the outline will close when it is locked.
    ctx.setLineDash([5, 4]);
    ctx.beginPath();
    ctx.moveTo(x + p[p.length - 2] + 0.5, y + p[p.length - 1] + 0.5);
    ctx.lineTo(x + p[0] + 0.5, y + p[1] + 0.5);
    ctx.stroke();
  }
  for (let i = 0; i < p.length; i += 2) ctx.fillRect(x + p[i] - 1.5, y + p[i + 1] - 1.5, 4, 4);
  ctx.restore();
}

let flashTimer = null;
function flash(text, kind, ms = 5000) {
  const m = $('lock-msg');
  m.textContent = text;
  m.className = `lock-msg ${kind || ''}`;
  clearTimeout(flashTimer);
  flashTimer = ms ? setTimeout(() => { if (state.outline) outlineHint(); else { m.textContent = ''; m.className = 'lock-msg'; } }, ms) : null;
}

function outlineHint() {
  const n = state.outline.points.length / 2;
  flash(`Outlining: ${n} point${n === 1 ? '' : 's'}. Click around the lesion on the B-mode pane; Enter, double-click or Lock to finish, Backspace to undo, Esc to cancel.`, 'hint', 0);
}

function outlineButtons() {
  const on = state.outline !== null;
  $('outline').hidden = on;
  $('outline-lock').hidden = !on;
  $('outline-cancel').hidden = !on;
  $('outline-lock').disabled = !on || state.outline.points.length < 6;
  canvas.classList.toggle('outlining', on);
}

function startOutline() {
  if (!state.layout) return;
  state.outline = { points: [] };
  outlineButtons();
  outlineHint();
}

function cancelOutline() {
  state.outline = null;
  outlineButtons();
  redraw();
  flash('Outline cancelled.', '', 3000);
}

function finishOutline() {
  const o = state.outline;
  if (!o) return;
  if (o.points.length < 6) { flash('An outline needs at least 3 points.', 'error', 3000); return; }
  if (!sendLock({ type: 'lock', polygon: o.points })) return; // not connected: keep the outline
  state.outline = null;
  outlineButtons();
  redraw();
}

function onCanvasClick(ev) {
  if (!state.outline || !state.layout) return;
  if (ev.detail > 1) return; // second click of a double-click: the dblclick closes the outline
  const p = toPane(ev.clientX, ev.clientY);
  if (!p.inside) { flash('Click inside the B-mode pane.', 'error', 2500); return; }
  if (state.outline.points.length / 2 >= MAX_OUTLINE_POINTS) { flash(`At most ${MAX_OUTLINE_POINTS} points: press Enter to lock.`, 'error', 2500); return; }
  state.outline.points.push(round2(p.x), round2(p.y));
  outlineButtons();
  outlineHint();
  redraw();
}

function lockEllipse() {
  if (!state.layout) return;
  const pane = state.layout.panes.bmode;
  const { width, height } = pane.rect;
  const [mmX, mmY] = ELLIPSE_RADII_MM;
  // Centred on the pane; 5 mm x 4 mm radii converted with the pane's pixel spacing (mm/pixel).
  sendLock({ type: 'lock', ellipse: { cx: (width - 1) / 2, cy: (height - 1) / 2, rx: round2(mmX / pane.spacingX), ry: round2(mmY / pane.spacingY) } });
}

function sendLock(msg) {
  const ws = state.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN) { flash('Not connected: nothing was locked.', 'error'); return false; }
  ws.send(JSON.stringify(msg));
  state.lockPending = true;
  state.locks.push(msg);
  flash('Locking…', 'hint', 0);
  return true;
}

function onLocked(msg) {
  state.lockPending = false;
  const what = msg.shape === 'polygon' ? `outline of ${msg.points} points` : 'ellipse';
  flash(`Locked: ${what}, ${msg.area} px. Tracking restarts from it.`, 'ok');
}

function onError(error) {
  state.errors.push(error);
  if (state.lockPending) {
    state.lockPending = false;
    flash(`Not locked: ${error}`, 'error', 8000);
  }
}

canvas.addEventListener('click', onCanvasClick);
canvas.addEventListener('dblclick', (ev) => { if (state.outline) { ev.preventDefault(); finishOutline(); } });
document.addEventListener('keydown', (ev) => {
  if (!state.outline) return;
  if (ev.key === 'Enter') { ev.preventDefault(); finishOutline(); }
  else if (ev.key === 'Escape') { ev.preventDefault(); cancelOutline(); }
  else if (ev.key === 'Backspace') { ev.preventDefault(); state.outline.points.length = Math.max(0, state.outline.points.length - 2); outlineButtons(); outlineHint(); redraw(); }
});
$('outline').addEventListener('click', startOutline);
$('outline-lock').addEventListener('click', finishOutline);
$('outline-cancel').addEventListener('click', cancelOutline);
$('lock-ellipse').addEventListener('click', lockEllipse);

// ---- Tracking state and scores ------------------------------------------------------------

const NOT_LIVE = {
  idle: 'Not tracking: outline the lesion to start. No live score.',
  uncertain: 'Tracking uncertain: the lesion match is weak. No live score.',
  lost: 'Tracking lost: searching for the lesion. No live score.',
  disconnected: 'Disconnected from the server: no live score.',
};

// The newest frame's tracking state decides whether scores are shown: scores travel behind the
// frames, so a live score computed before a loss must not stay on screen after it.
function setTrackingState(s, seq, reason) {
  if (s !== 'tracking' && seq > state.notLiveSeq) state.notLiveSeq = seq;
  if (reason !== undefined && (reason || null) !== state.trackingReason) {
    state.trackingReason = reason || null;
    if (s === state.trackingState) renderScores();
  }
  if (s === state.trackingState) return;
  state.trackingState = s;
  renderScores();
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
  // Without frames (none drawn yet, or the page is behind), the score's own state is the newest.
  if (msg.seq >= state.lastSeq) setTrackingState(msg.trackingState, msg.seq);
  renderScores();
}

function renderScores() {
  const s = state.trackingState;
  const msg = state.scores;
  const line = $('score-state');
  line.className = `score-state ${s}`;
  line.replaceChildren();
  const box = $('scores');
  box.replaceChildren();
  const live = s === 'tracking' && msg && msg.live && msg.seq > state.notLiveSeq;
  if (s !== 'tracking') line.append(el('div', '', NOT_LIVE[s] || `Tracking ${s}. No live score.`));
  else if (!live) line.append(el('div', '', 'Tracking: waiting for a live score…'));
  // The newest frame's own reason (why it is not tracking) wins over an older score's.
  if (s !== 'tracking' && state.trackingReason) line.append(el('div', 'small', `reason: ${state.trackingReason}`));
  else if (msg && !msg.live && msg.reason && msg.trackingState === s) line.append(el('div', 'small', `reason: ${msg.reason}`));
  if (!live) return;
  for (const s of msg.scores) {
    const card = el('div', 'model' + (s.status === 'ok' ? '' : ' stale'));
    const model = state.models.find((m) => m.id === s.modelId);
    card.append(el('div', 'name', model ? model.task : s.modelId));
    card.append(el('div', 'small', `${s.modelId} v${s.version}`));
    if (model && model.researchUseOnly) card.append(el('div', 'small ruo', 'Research use only'));
    if (s.status === 'invalid') { card.append(el('div', 'category hi', `invalid: ${s.problem}`)); box.append(card); continue; }
    if (s.status === 'incomplete') {
      card.append(el('div', 'category hi', `incomplete: enter ${(s.missing || []).join(', ')} (never guessed)`));
      box.append(card);
      continue;
    }
    if (s.link === 'cox') {
      card.append(el('div', '', `risk group: ${s.category} (linear predictor ${s.value.toFixed(2)}, band ${s.band[0].toFixed(2)} to ${s.band[1].toFixed(2)})`));
      card.append(el('div', 'small', s.notice));
      box.append(card);
      continue;
    }
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
    card.append(el('div', 'small', `band ${pct(s.band[0])}–${pct(s.band[1])} over ${s.frames} frames${s.status === 'warming-up' ? ' (warming up)' : ''}; ` +
      `${model && model.radScore ? 'Rad-score' : 'linear predictor'} ${Number.isFinite(s.linearPredictor) ? s.linearPredictor.toFixed(2) : 'n/a'}`));
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
