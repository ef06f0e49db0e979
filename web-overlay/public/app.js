// The sonomics overlay page, WebSocket protocol v3 (web-overlay/protocol.ts).
//
// - Each video frame is drawn with the overlay that travelled with it (one binary message: header
//   + JPEG), so a contour can never drift from its picture.
// - The overlay's state (layers, models, freeze, clinical inputs, recording, who has control) is
//   SHARED: the page never changes it locally; it asks the server, and draws what the server's
//   `state` says. Only the controller may ask; other viewers see read-only controls.
// - The lesion is drawn with Pointer Events (mouse, pen and touch alike) on the B-mode pane, or
//   tapped or boxed (Tap tool, either pane: a press is a tap, a press dragged past BOX_DRAG_PX a
//   box): the server's segmenter proposes its outline, which is grown, shrunk, accepted or
//   discarded there (`segment`, `proposal`); the page draws what it returns.
// - The perfusion card draws the server's `perfusion` message as it is: the session's curves, the
//   fitted curves, the phases and the parameters of the regions whose fit stands (never of others).
// Decision support only, not for diagnosis.

const $ = (id) => document.getElementById(id);
const canvas = $('view');
const ctx = canvas.getContext('2d');

const SUBPROTOCOL = 'sonomics.v3';
const TOKEN_KEY = 'sonomics.token';
const MAX_OUTLINE_POINTS = 1024;
/** Grow / Shrink step: scales the proposed outline about its centroid. */
const SCALE_STEP = 1.05;
/**
 * Tap tool: a press that moves this far (screen px) before it is released is a box being dragged
 * around the lesion, not a tap; a finger's wobble stays well under it.
 */
const BOX_DRAG_PX = 12;
/** The smallest box sent (pane px on each side): a box is drawn around a lesion, not along a line. */
const MIN_BOX_PX = 8;
const COLOUR = { tracking: '#ffd23f', uncertain: '#ffb347', lost: '#ff5c5c', proposal: '#ff4fd8' };
/** Ring colours, inner to outer; the perfusion legend uses the same order (.sw.c1...). */
const RING_COLOURS = ['#39c0ff', '#5b8cff', '#a070ff', '#6fe0d0'];
const LESION_COLOUR = '#ffd23f';
/** The perfusion reference region: its disc on the panes and its curve (.sw.ref). */
const REFERENCE_COLOUR = '#a0e060';
/** Radius of a reference disc placed on the page (mm). */
const REFERENCE_RADIUS_MM = 4;

/** Everything the page knows. Exposed as window.__sonomics for the browser tests. */
const S = {
  connected: false, viewer: null, layout: null, ringsMm: [], models: [], notice: '',
  /** The server's OverlayState (null before hello). */
  state: null,
  framesDrawn: 0, lastSeq: -1, lastHeader: null, bitmap: null,
  // Decode only the newest frame: while one decodes, later ones replace each other here.
  decoding: false, nextFrame: null,
  scores: null, status: null, events: [], errors: [], replies: [],
  // The last perfusion message (null before the first, and after New injection until the next).
  perfusion: null,
  // Perfusion messages not shown: an analysis of a curve restarted meanwhile (onPerfusion).
  perfusionStale: 0,
  // What the perfusion chart drew last (axes, series, fits, phases), and the reference disc as
  // drawn on each pane (canvas pixels): what the browser tests check.
  chart: null, referenceDrawn: [],
  // The reference tool is on: the next click or tap on a pane places the reference region.
  referenceTool: false,
  // The last reference placed here: { pane, x, y (B-mode pane coordinates), seq, center (lesion centre of that frame) }.
  referencePlaced: null,
  // Perfusion exports done: { format, status, name?, bytes? }.
  exports: [],
  // Tracking state of the newest frame; scores for frames up to notLiveSeq are not shown as live.
  trackingState: 'idle', trackingReason: null, notLiveSeq: -1,
  // Drawing: the selected tool, the stroke in progress, the proposed outline (pane coordinates).
  // A tapped outline is proposal { shape: 'tap', points (the server's contour), area, confidence, grownPx, seq, at }.
  tool: null, stroke: null, proposal: null, locks: [],
  // Tap to outline: a `segment` in flight (pending), taps and boxes sent, where the last one was
  // ({ pane, x, y (B-mode pane coordinates; a box's centre), seq, box? { x0, y0, x1, y1 } }), the box
  // being dragged ({ pane, x0, y0, x1, y1 }, corners as dragged, or null), and the last reply to a
  // segment or proposal message.
  segment: { pending: false, sent: 0, at: null, box: null, last: null },
};
window.__sonomics = S;

// ---- Small helpers ------------------------------------------------------------------------

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
const round2 = (v) => Math.round(v * 100) / 100;
const pct = (v) => `${(100 * v).toFixed(0)}%`;
const fixed = (v, d = 2) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : 'n/a');
const isController = () => !!(S.connected && S.viewer && S.state && S.state.controller === S.viewer.id);

let msgTimer = null;
/** The message line under the video: replies from the server, hints while drawing. */
function say(text, kind = '', ms = 6000) {
  const m = $('msg');
  m.textContent = text;
  m.className = `msg ${kind}`;
  clearTimeout(msgTimer);
  msgTimer = ms ? setTimeout(() => { m.textContent = ''; m.className = 'msg'; }, ms) : null;
}

// ---- Connection and access token ----------------------------------------------------------

/** The token from the URL fragment (#token=...) goes to sessionStorage and leaves the address bar. */
function takeTokenFromUrl() {
  const m = /(?:^#|[#&])token=([^&]*)/.exec(location.hash);
  if (!m) return;
  let value = m[1];
  try { value = decodeURIComponent(value); } catch { /* a stray %: keep it as typed */ }
  sessionStorage.setItem(TOKEN_KEY, value);
  history.replaceState(null, '', location.pathname + location.search);
}
const token = () => sessionStorage.getItem(TOKEN_KEY) || '';

let ws = null;
let nextId = 1;
/** Messages sent and not answered yet: id -> { type, done(reply) }. */
const pending = new Map();

function connect() {
  const protocols = [SUBPROTOCOL];
  if (token()) protocols.push(`bearer.${token()}`);
  let sock;
  try {
    sock = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`, protocols);
  } catch (e) {
    // A token with characters a subprotocol cannot carry.
    showTokenForm(`That token cannot be used (${e.message}).`);
    return;
  }
  ws = sock;
  sock.binaryType = 'arraybuffer';
  let opened = false;
  sock.onopen = () => { opened = true; setConn('live', 'ok'); };
  sock.onclose = () => {
    if (ws !== sock) return;
    ws = null;
    disconnected();
    // A socket that never opened may have been refused for its token: ask the status endpoint
    // (it answers 401 the same way) instead of retrying blindly forever.
    if (!opened) checkAccess(); else retry();
  };
  sock.onmessage = (ev) => {
    if (typeof ev.data !== 'string') { onFrame(ev.data); return; }
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    onMessage(msg);
  };
}

function retry() {
  setConn('reconnecting…', 'bad');
  setTimeout(connect, 1000);
}

async function checkAccess() {
  let status = 0;
  try {
    const t = token();
    status = (await fetch('/api/status', { headers: t ? { Authorization: `Bearer ${t}` } : {}, cache: 'no-store' })).status;
  } catch { /* the server is down: retry */ }
  if (status === 401) showTokenForm(token() ? 'The access token was refused.' : 'This overlay needs an access token.');
  else retry();
}

function showTokenForm(why) {
  setConn('access token needed', 'bad');
  $('token-msg').textContent = why;
  $('token-form').hidden = false;
  $('token-input').focus();
}

$('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const t = $('token-input').value.trim();
  if (!t) return;
  sessionStorage.setItem(TOKEN_KEY, t);
  $('token-input').value = '';
  $('token-form').hidden = true;
  setConn('connecting…', '');
  connect();
});

function setConn(text, kind) {
  $('conn').textContent = text;
  $('conn').className = `pill ${kind}`;
}

/** Nothing shown may pass for live while the page hears nothing. */
function disconnected() {
  S.connected = false;
  S.scores = null;
  S.trackingState = 'disconnected';
  for (const [, p] of pending) if (p.done) p.done({ type: 'error', re: p.type, error: 'connection lost before the reply' });
  pending.clear();
  cancelDrawing();
  S.referenceTool = false;
  renderScores();
  renderPerfusion();
  applyState();
}

/** Sends a page message with a fresh id; `done(reply)` gets its ack or error. False when not connected. */
function send(msg, done) {
  if (!ws || ws.readyState !== WebSocket.OPEN) { say('Not connected: nothing was sent.', 'error'); return false; }
  const id = `p${nextId++}`;
  pending.set(id, { type: msg.type, done });
  ws.send(JSON.stringify({ ...msg, id }));
  return true;
}

// The browser tests send protocol messages through the page's own socket.
S.send = send;

function onMessage(msg) {
  switch (msg.type) {
    case 'hello': onHello(msg); break;
    case 'state': onState(msg.state); break;
    case 'scores': onScores(msg); break;
    case 'perfusion': onPerfusion(msg); break;
    case 'status': onStatus(msg.stats); break;
    case 'event': onEvent(msg.event); break;
    case 'ack': case 'error': onReply(msg); break;
    default: break;
  }
}

/** Routes an ack or error to whoever sent the message; unclaimed errors go to the message line. */
function onReply(msg) {
  S.replies.push(msg);
  if (S.replies.length > 50) S.replies.shift();
  if (msg.type === 'error') S.errors.push(msg.error);
  const p = msg.id !== undefined ? pending.get(msg.id) : undefined;
  if (p) pending.delete(msg.id);
  if (p && p.done) p.done(msg);
  else if (msg.type === 'error') say(msg.error, 'error', 10000);
}

function onHello(msg) {
  S.connected = true;
  S.viewer = msg.viewer;
  S.layout = msg.layout;
  S.ringsMm = msg.ringsMm;
  S.models = msg.models;
  // The server's one-tap segmenter ({ id, version }), or null: then the Tap tool is off.
  S.segmenter = msg.segmenter ?? null;
  S.notice = msg.notice;
  $('notice').textContent = msg.notice;
  $('scores-notice').textContent = msg.notice;
  $('perfusion-notice').textContent = msg.notice;
  canvas.width = msg.layout.width;
  canvas.height = msg.layout.height;
  // The narrow (portrait tablet) layout sizes the video to the frame's shape (style.css).
  document.documentElement.style.setProperty('--frame-aspect', `${msg.layout.width} / ${msg.layout.height}`);
  // A new connection may be a restarted server: its frame numbers and clock start again.
  S.lastSeq = -1;
  S.notLiveSeq = -1;
  S.scores = null;
  S.perfusion = null;
  S.state = null;
  $('model-versions').textContent = msg.models.map((m) => `${m.id} v${m.version}`).join(' · ');
  buildModelToggles();
  onState(msg.state);
  renderScores();
  renderPerfusion();
}

// ---- Frames: decode the newest, draw picture + its own overlay ----------------------------

function onFrame(buf) {
  const n = new DataView(buf).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, n)));
  const jpeg = new Blob([new Uint8Array(buf, 4 + n)], { type: 'image/jpeg' });
  if (S.decoding) { S.nextFrame = { header, jpeg }; return; }
  decodeAndDraw(header, jpeg);
}

async function decodeAndDraw(header, jpeg) {
  S.decoding = true;
  try {
    const bmp = await createImageBitmap(jpeg);
    // Keep the picture: the overlay, a stroke or a proposal is redrawn on it between frames.
    if (S.bitmap) S.bitmap.close();
    S.bitmap = bmp;
    S.lastHeader = header;
    if (canvas.width !== header.width || canvas.height !== header.height) { canvas.width = header.width; canvas.height = header.height; }
    redraw();
    S.framesDrawn++;
    S.lastSeq = header.seq;
    showTracking(header.tracking);
    setTrackingState(header.tracking.state, header.seq, header.tracking.reason);
  } catch (e) {
    // A frame that cannot be decoded is skipped; the next one replaces it.
    S.errors.push(`frame ${header.seq}: ${e.message}`);
  } finally {
    S.decoding = false;
    const next = S.nextFrame;
    S.nextFrame = null;
    if (next) decodeAndDraw(next.header, next.jpeg);
  }
}

let redrawQueued = false;
/** Redraw on the next animation frame (pointer moves come faster than the screen refreshes). */
function queueRedraw() {
  if (redrawQueued) return;
  redrawQueued = true;
  requestAnimationFrame(() => { redrawQueued = false; redraw(); });
}

function redraw() {
  lineScale = 1 / Math.min(1, viewScale());
  if (S.bitmap) ctx.drawImage(S.bitmap, 0, 0);
  else { ctx.fillStyle = '#000'; ctx.fillRect(0, 0, canvas.width, canvas.height); }
  S.referenceDrawn = [];
  if (S.lastHeader) { drawOverlay(S.lastHeader); drawReference(S.lastHeader); }
  drawStroke();
  drawProposal();
}

/** Displayed size / canvas size. */
function viewScale() {
  const r = canvas.getBoundingClientRect();
  return Math.min(r.width / canvas.width, r.height / canvas.height) || 1;
}
// Line widths are given in screen pixels, so that lines stay visible on a scaled-down picture
// (set once per redraw: reading the canvas's size costs a layout).
let lineScale = 1;
const screenPx = (px) => px * lineScale;

function tracePath(points, ox, oy, closed = true) {
  ctx.beginPath();
  for (let i = 0; i < points.length; i += 2) {
    const x = ox + points[i] + 0.5, y = oy + points[i + 1] + 0.5;
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  }
  if (closed) ctx.closePath();
}

function drawOverlay(h) {
  const layers = S.state ? S.state.layers : { contour: true, rings: true };
  if (!S.layout || !h.lesion) return;
  for (const pane of Object.values(S.layout.panes)) {
    const { x, y } = pane.rect;
    if (layers.rings) {
      ctx.setLineDash([screenPx(7), screenPx(5)]);
      ctx.lineWidth = screenPx(1.5);
      // A ring picked on the touch panel (state.ring, in mm) stands out; the others fade.
      const pick = S.state && S.state.ring != null ? S.state.ring : null;
      h.rings.forEach((r, k) => {
        ctx.strokeStyle = RING_COLOURS[k % RING_COLOURS.length];
        ctx.lineWidth = screenPx(pick === r.mm ? 3 : 1.5);
        ctx.globalAlpha = pick === null || pick === r.mm ? 1 : 0.35;
        tracePath(r.contour, x, y);
        ctx.stroke();
      });
      ctx.globalAlpha = 1;
      ctx.setLineDash([]);
    }
    if (layers.contour) {
      ctx.strokeStyle = COLOUR[h.tracking.state] || LESION_COLOUR;
      ctx.lineWidth = screenPx(2);
      tracePath(h.lesion, x, y);
      ctx.stroke();
    }
  }
}

/**
 * The perfusion reference disc of this frame (header.reference: B-mode pane coordinates, radius in
 * mm) on both panes, dashed, sized with each pane's spacing and clipped to the pane. Shown with the
 * `tic` layer (the perfusion layer).
 */
function drawReference(h) {
  const ref = h.reference;
  if (!ref || !S.layout || (S.state && !S.state.layers.tic)) return;
  for (const [name, pane] of Object.entries(S.layout.panes)) {
    const r = pane.rect;
    const cx = r.x + ref.x + 0.5, cy = r.y + ref.y + 0.5;
    const rx = ref.radiusMm / pane.spacingX, ry = ref.radiusMm / pane.spacingY;
    ctx.save();
    ctx.beginPath();
    ctx.rect(r.x, r.y, r.width, r.height);
    ctx.clip();
    ctx.strokeStyle = REFERENCE_COLOUR;
    ctx.fillStyle = REFERENCE_COLOUR;
    ctx.lineWidth = screenPx(2.5);
    ctx.setLineDash([screenPx(8), screenPx(4)]);
    ctx.beginPath();
    ctx.ellipse(cx, cy, rx, ry, 0, 0, 2 * Math.PI);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.font = `600 ${screenPx(12)}px system-ui, sans-serif`;
    ctx.fillText('ref', cx + 0.75 * rx + screenPx(3), cy - 0.75 * ry - screenPx(3));
    ctx.restore();
    S.referenceDrawn.push({ pane: name, cx, cy, rx, ry });
  }
}

// ---- Screen <-> pane coordinates ----------------------------------------------------------

// Screen (client) position -> B-mode pane pixel coordinates. The canvas is scaled by CSS with
// object-fit: contain (centred, letterboxed); pane pixel k spans canvas [rect.x + k, rect.x + k + 1),
// and pane coordinate k names its centre, as in the contours the server sends.
function toPane(clientX, clientY) {
  const { cx, cy } = toCanvas(clientX, clientY);
  const b = S.layout.panes.bmode.rect;
  return { x: cx - b.x - 0.5, y: cy - b.y - 0.5, inside: cx >= b.x && cx < b.x + b.width && cy >= b.y && cy < b.y + b.height };
}

/** Screen (client) position -> canvas pixel coordinates (through the letterboxed scaling). */
function toCanvas(clientX, clientY) {
  const r = canvas.getBoundingClientRect();
  const s = Math.min(r.width / canvas.width, r.height / canvas.height);
  return { cx: (clientX - r.left - (r.width - canvas.width * s) / 2) / s, cy: (clientY - r.top - (r.height - canvas.height * s) / 2) / s };
}

/**
 * The pane under a screen position and the position in that pane's coordinates, or null off the
 * panes. Both panes share one geometry, so a point on the contrast pane names the same tissue as
 * the same pane coordinates on the B-mode pane.
 */
function paneAt(clientX, clientY) {
  const { cx, cy } = toCanvas(clientX, clientY);
  for (const [name, pane] of Object.entries(S.layout.panes)) {
    const r = pane.rect;
    if (cx >= r.x && cx < r.x + r.width && cy >= r.y && cy < r.y + r.height) return { pane: name, x: cx - r.x - 0.5, y: cy - r.y - 0.5 };
  }
  return null;
}

/** Screen position -> the named pane's coordinates, on the pane or off it (a box dragged past its edge). */
function toPaneOf(name, clientX, clientY) {
  const { cx, cy } = toCanvas(clientX, clientY);
  const r = S.layout.panes[name].rect;
  return { x: cx - r.x - 0.5, y: cy - r.y - 0.5 };
}

/** Keeps a point on the B-mode pane (a stroke may run past its edge). */
function clampToPane(p) {
  const b = S.layout.panes.bmode.rect;
  return { x: Math.min(b.width - 1, Math.max(0, p.x)), y: Math.min(b.height - 1, Math.max(0, p.y)) };
}

// ---- Drawing the lesion: tools, stroke, proposal ------------------------------------------

const TOOL_HINT = {
  freehand: 'Outline: press on the B-mode pane, trace around the lesion, release.',
  ellipse: 'Ellipse: press on the lesion centre and drag outwards, release.',
  tap: 'Tap: click or tap inside the lesion, or drag a box around it, on either pane; its outline is proposed (nothing is locked until Accept).',
};

/**
 * Selects a drawing tool (or none). Drawing is done on a frozen frame: the page asks for the freeze.
 * The Tap tool does the same: the server outlines the frame shown last (the held one while frozen),
 * so the proposal stays over the picture it was made on, and unfreezing discards it as it does a
 * drawn outline. (A tap still works on a live frame, e.g. when the freeze was refused.)
 */
function selectTool(tool) {
  if (tool && !isController()) return;
  if (tool === 'tap' && !S.segmenter) { say(NO_SEGMENTER, 'error'); return; }
  S.tool = tool;
  S.stroke = null;
  if (tool) S.referenceTool = false;
  if (tool && S.state && !S.state.frozen) send({ type: 'freeze', frozen: true }, (r) => { if (r.type === 'error') say(r.error, 'error'); });
  if (tool) say(TOOL_HINT[tool], 'hint', 0);
  else if (!S.proposal) say('');
  drawingUi();
  queueRedraw();
}

function cancelDrawing() {
  const had = S.tool || S.stroke || S.proposal || S.segment.pending || S.segment.box;
  // A box being dragged goes too: the rest of that drag draws nothing.
  if (drag && drag.kind === 'press') drag = null;
  S.segment.box = null;
  forgetProposal();
  S.tool = null;
  S.stroke = null;
  drawingUi();
  if (had) queueRedraw();
  return had;
}

function drawingUi() {
  const ctl = isController();
  for (const b of document.querySelectorAll('[data-tool]')) b.setAttribute('aria-pressed', String(S.tool === b.dataset.tool));
  $('tool-reference').setAttribute('aria-pressed', String(S.referenceTool));
  $('proposal-tools').hidden = !S.proposal;
  // A tapped outline is the server's: Grow / Shrink move it by 0.5 mm there, Discard drops it there.
  // Its buttons wait while a tap is being outlined (the reply replaces the proposal).
  const tapped = !!S.proposal && S.proposal.shape === 'tap';
  for (const id of ['accept', 'grow', 'shrink']) $(id).disabled = !ctl || (tapped && S.segment.pending);
  $('cancel').textContent = tapped ? 'Discard' : 'Cancel';
  $('cancel').title = tapped ? 'Discard the proposed outline (Esc)' : 'Discard the outline (Esc)';
  $('grow').title = tapped ? 'Grow by 0.5 mm (+)' : 'Grow by 5 % (+)';
  $('shrink').title = tapped ? 'Shrink by 0.5 mm (−)' : 'Shrink by 5 % (−)';
  canvas.classList.toggle('drawing', !!(S.tool || S.proposal || S.referenceTool) && ctl);
  const badge = $('badge-tool');
  badge.hidden = !(S.tool || S.proposal || S.referenceTool || S.segment.pending);
  badge.textContent = S.referenceTool ? 'Reference: click or tap normal tissue (either pane)'
    : S.segment.box ? 'Box: release when it holds the whole lesion'
      : S.segment.pending ? 'Outlining…'
        : tapped ? `Proposed outline (${S.proposal.at && S.proposal.at.box ? 'box' : 'tap'}): Grow or Shrink, then Accept`
          : S.proposal ? 'Proposed outline: drag to move, then Accept'
            : S.tool === 'tap' ? 'Tap: tap inside the lesion, or drag a box around it (either pane)'
              : S.tool ? `Drawing: ${S.tool === 'freehand' ? 'outline' : 'ellipse'}` : '';
}

// { pointerId, kind: 'stroke' | 'move' | 'press', last }; a Tap tool press: { kind: 'press', pane,
// from (its pane coordinates), client (its screen position) }.
let drag = null;

function onPointerDown(ev) {
  if (!S.layout || !isController() || drag) return;
  if (ev.pointerType === 'mouse' && ev.button !== 0) return;
  if (S.referenceTool) { placeReference(ev.clientX, ev.clientY); ev.preventDefault(); return; }
  // Tap: each press on a pane asks for an outline there at once (a new tap replaces the proposal);
  // dragged on, the press becomes a box around the lesion (onPointerMove), sent on release.
  if (S.tool === 'tap') {
    const at = tapAt(ev.clientX, ev.clientY);
    canvas.focus({ preventScroll: true });
    ev.preventDefault();
    if (!at) return;
    drag = { pointerId: ev.pointerId, kind: 'press', pane: at.pane, from: { x: at.x, y: at.y }, client: { x: ev.clientX, y: ev.clientY } };
    canvas.setPointerCapture(ev.pointerId);
    return;
  }
  const p = toPane(ev.clientX, ev.clientY);
  // A tapped outline is the server's mask: it is adjusted there (Grow / Shrink), never moved here.
  if (S.proposal && S.proposal.shape !== 'tap' && hitsProposal(p)) {
    drag = { pointerId: ev.pointerId, kind: 'move', last: p };
    canvas.classList.add('moving');
  } else if (S.tool && p.inside) {
    forgetProposal();
    S.stroke = S.tool === 'freehand' ? { shape: 'polygon', points: [round2(p.x), round2(p.y)] } : { shape: 'ellipse', cx: round2(p.x), cy: round2(p.y), rx: 0, ry: 0 };
    drag = { pointerId: ev.pointerId, kind: 'stroke' };
    drawingUi();
  } else {
    return;
  }
  // Capture: the stroke continues even when the finger runs off the canvas. Focus: Enter and
  // Esc then go to the drawing, not to the tool button last pressed.
  canvas.setPointerCapture(ev.pointerId);
  canvas.focus({ preventScroll: true });
  ev.preventDefault();
}

function onPointerMove(ev) {
  if (!drag || ev.pointerId !== drag.pointerId) return;
  if (drag.kind === 'press') { dragBox(ev); return; }
  // Coalesced events: every sample of a fast stroke, not just one per animation frame.
  const samples = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
  for (const e of samples.length ? samples : [ev]) {
    const p = toPane(e.clientX, e.clientY);
    if (drag.kind === 'move') { moveProposal(p.x - drag.last.x, p.y - drag.last.y); drag.last = p; }
    else extendStroke(clampToPane(p));
  }
  queueRedraw();
}

function onPointerUp(ev) {
  if (!drag || ev.pointerId !== drag.pointerId) return;
  const kind = drag.kind;
  drag = null;
  canvas.classList.remove('moving');
  if (kind === 'press') {
    // A tap was sent on the press; a box dragged from it is sent now (or dropped when cancelled).
    const box = S.segment.box;
    S.segment.box = null;
    if (box && ev.type === 'pointercancel') say('Box dropped: drag it again, or tap the lesion.', '', 4000);
    else if (box) boxAt(box);
  } else if (kind === 'stroke') {
    if (ev.type === 'pointercancel') S.stroke = null;
    else finishStroke();
  }
  drawingUi();
  queueRedraw();
}

function extendStroke(p) {
  const s = S.stroke;
  if (!s) return;
  if (s.shape === 'ellipse') { s.rx = round2(Math.abs(p.x - s.cx)); s.ry = round2(Math.abs(p.y - s.cy)); return; }
  const n = s.points.length;
  // Skip samples closer than half a pane pixel: they add points, not shape.
  if (Math.hypot(p.x - s.points[n - 2], p.y - s.points[n - 1]) < 0.5) return;
  s.points.push(round2(p.x), round2(p.y));
}

/** The stroke becomes the proposed outline, if it outlines something. */
function finishStroke() {
  const s = S.stroke;
  S.stroke = null;
  if (!s) return;
  if (s.shape === 'ellipse') {
    if (s.rx < 2 || s.ry < 2) { say('Ellipse too small: press on the lesion centre and drag outwards.', 'error'); return; }
    S.proposal = s;
  } else {
    const points = decimate(s.points, MAX_OUTLINE_POINTS);
    if (points.length < 6 || Math.abs(polygonArea(points)) < 16) { say('Outline too small: trace around the lesion.', 'error'); return; }
    S.proposal = { shape: 'polygon', points };
  }
  say('Proposed outline: drag inside it to move it, Grow or Shrink it, then Accept (or Cancel).', 'hint', 0);
}

/** At most `max` points, evenly spread along the stroke's samples. */
function decimate(points, max) {
  const n = points.length / 2;
  if (n <= max) return points.slice();
  const out = [];
  for (let k = 0; k < max; k++) {
    const i = Math.floor((k * n) / max);
    out.push(points[2 * i], points[2 * i + 1]);
  }
  return out;
}

function polygonArea(p) {
  let a = 0;
  for (let i = 0, j = p.length - 2; i < p.length; j = i, i += 2) a += p[j] * p[i + 1] - p[i] * p[j + 1];
  return a / 2;
}

/** Area centroid of a polygon (the vertex mean when it has no area). */
function centroid(pr) {
  if (pr.shape === 'ellipse') return { x: pr.cx, y: pr.cy };
  const p = pr.points;
  const a = polygonArea(p);
  let cx = 0, cy = 0;
  if (Math.abs(a) < 1e-9) {
    for (let i = 0; i < p.length; i += 2) { cx += p[i]; cy += p[i + 1]; }
    return { x: cx / (p.length / 2), y: cy / (p.length / 2) };
  }
  for (let i = 0, j = p.length - 2; i < p.length; j = i, i += 2) {
    const f = p[j] * p[i + 1] - p[i] * p[j + 1];
    cx += (p[j] + p[i]) * f;
    cy += (p[j + 1] + p[i + 1]) * f;
  }
  return { x: cx / (6 * a), y: cy / (6 * a) };
}

function hitsProposal(q) {
  const pr = S.proposal;
  // A finger is not a mouse pointer: near the centre counts, however small the outline.
  const c = centroid(pr);
  if (Math.hypot(q.x - c.x, q.y - c.y) < 22 / viewScale()) return true;
  if (pr.shape === 'ellipse') return ((q.x - pr.cx) / pr.rx) ** 2 + ((q.y - pr.cy) / pr.ry) ** 2 <= 1;
  let inside = false;
  const p = pr.points;
  for (let i = 0, j = p.length - 2; i < p.length; j = i, i += 2) {
    if ((p[i + 1] > q.y) !== (p[j + 1] > q.y) && q.x < ((p[j] - p[i]) * (q.y - p[i + 1])) / (p[j + 1] - p[i + 1]) + p[i]) inside = !inside;
  }
  return inside;
}

function moveProposal(dx, dy) {
  const pr = S.proposal;
  if (pr.shape === 'ellipse') { pr.cx = round2(pr.cx + dx); pr.cy = round2(pr.cy + dy); return; }
  pr.points = pr.points.map((v, i) => round2(v + (i % 2 ? dy : dx)));
}

function scaleProposal(f) {
  const pr = S.proposal;
  if (!pr || !isController()) return;
  if (pr.shape === 'tap') { adjustTap(f > 1 ? 'grow' : 'shrink'); return; }
  if (pr.shape === 'ellipse') { pr.rx = round2(pr.rx * f); pr.ry = round2(pr.ry * f); }
  else {
    const c = centroid(pr);
    pr.points = pr.points.map((v, i) => round2(i % 2 ? c.y + (v - c.y) * f : c.x + (v - c.x) * f));
  }
  queueRedraw();
}

function acceptProposal() {
  const pr = S.proposal;
  if (!pr || !isController()) return;
  if (pr.shape === 'tap') { acceptTap(); return; }
  const msg = pr.shape === 'ellipse'
    ? { type: 'lock', ellipse: { cx: pr.cx, cy: pr.cy, rx: pr.rx, ry: pr.ry } }
    : { type: 'lock', polygon: pr.points };
  const sent = send(msg, (r) => {
    if (r.type === 'ack') {
      const what = r.result.shape === 'polygon' ? `outline of ${r.result.points} points` : 'ellipse';
      say(`Locked: ${what}, ${r.result.area} px on frame ${r.result.seq}. Tracking restarts from it.`, 'ok', 8000);
    } else {
      say(`Not locked: ${r.error}`, 'error', 12000);
    }
  });
  if (!sent) return;
  S.locks.push(msg);
  // The outline is sent; the next frame from the server shows it as the tracked contour.
  S.proposal = null;
  S.tool = null;
  say('Locking…', 'hint', 0);
  drawingUi();
  queueRedraw();
}

// ---- Tap to outline: the server's segmenter proposes the outline, the page shows it ----------

const NO_SEGMENTER = 'Tap is off: the server has no segmenter loaded. Outline the lesion or draw an ellipse.';
const TAP_TITLE = $('tool-tap').title;

/** The Tap tool works only when the server has a segmenter (hello.segmenter). */
function tapToolUi() {
  const b = $('tool-tap');
  b.disabled = !isController() || !S.segmenter;
  b.title = S.segmenter ? `${TAP_TITLE} [${S.segmenter.id} ${S.segmenter.version}]` : NO_SEGMENTER;
}

// Bumped by every tap sent and every proposal dropped: a reply to an older tap is out of date.
let tapGen = 0;
// The generation of the last tap sent (the one whose outline the server holds, if any).
let tapSent = 0;

/**
 * Sends a tap at a screen position (B-mode pane coordinates; a contrast-pane point maps to the
 * same). Returns where it was tapped ({ pane, x, y, seq }), or null off the panes.
 */
function tapAt(clientX, clientY) {
  const p = paneAt(clientX, clientY);
  if (!p) { say('Tap inside one of the panes, on the lesion.', 'error'); return null; }
  const r = S.layout.panes.bmode.rect;
  const x = round2(Math.min(r.width - 1, Math.max(0, p.x))), y = round2(Math.min(r.height - 1, Math.max(0, p.y)));
  const h = S.lastHeader;
  const at = { pane: p.pane, x, y, seq: h ? h.seq : null };
  return sendSegment({ type: 'segment', x, y }, at) ? at : null;
}

/**
 * A Tap tool press dragged past BOX_DRAG_PX becomes a box from the press to the pointer, on the
 * pane pressed (kept on it): the tap sent on the press is dropped, its outline no longer wanted.
 */
function dragBox(ev) {
  // The tool was put down meanwhile (T, another tool): the rest of the drag draws nothing.
  if (S.tool !== 'tap') { drag = null; S.segment.box = null; return; }
  if (!S.segment.box) {
    if (Math.hypot(ev.clientX - drag.client.x, ev.clientY - drag.client.y) < BOX_DRAG_PX) return;
    forgetProposal();
    say('Box: drag to the lesion\'s opposite corner, then release.', 'hint', 0);
  }
  const p = clampToPane(toPaneOf(drag.pane, ev.clientX, ev.clientY));
  S.segment.box = { pane: drag.pane, x0: drag.from.x, y0: drag.from.y, x1: round2(p.x), y1: round2(p.y) };
  drawingUi();
  queueRedraw();
}

/** Sends a dragged box (corners in either order), or says why not when it is too small to hold a lesion. */
function boxAt(b) {
  const box = { x0: Math.min(b.x0, b.x1), y0: Math.min(b.y0, b.y1), x1: Math.max(b.x0, b.x1), y1: Math.max(b.y0, b.y1) };
  if (box.x1 - box.x0 < MIN_BOX_PX || box.y1 - box.y0 < MIN_BOX_PX) {
    say('Box too small: drag from one corner of the lesion to the opposite one, or tap inside it.', 'error', 8000);
    drawingUi();
    queueRedraw();
    return;
  }
  const h = S.lastHeader;
  const at = { pane: b.pane, x: round2((box.x0 + box.x1) / 2), y: round2((box.y0 + box.y1) / 2), seq: h ? h.seq : null, box };
  sendSegment({ type: 'segment', box }, at);
}

/** Sends a `segment` (a tap or a box); its reply replaces the proposal unless something newer came first. */
function sendSegment(msg, at) {
  const gen = tapGen + 1;
  const sent = send(msg, (reply) => onSegmentReply(reply, gen, at));
  if (!sent) return false;
  tapGen = tapSent = gen;
  S.segment.pending = true;
  S.segment.sent++;
  S.segment.at = at;
  say('Outlining…', 'hint', 0);
  drawingUi();
  queueRedraw();
  return true;
}

/** Sentence case for a reason the server gives in lower case. */
const sentence = (text) => (text ? text[0].toUpperCase() + text.slice(1) : text);

function onSegmentReply(reply, gen, at) {
  if (gen !== tapGen) {
    // Dropped meanwhile (Esc, Discard, unfreeze): the server holds this outline unless a newer tap replaced it.
    if (gen === tapSent && reply.type === 'ack' && reply.result.found) discardOnServer();
    return;
  }
  S.segment.pending = false;
  S.segment.last = reply;
  if (reply.type === 'error') {
    // Refused (no segmenter, a tap off the pane...): the server changed nothing, nor does the page.
    say(`Not outlined: ${reply.error}`, 'error', 12000);
  } else if (!reply.result.found) {
    // Nothing found at the tap: the server dropped its proposal, so does the page.
    if (S.proposal && S.proposal.shape === 'tap') S.proposal = null;
    say(`${sentence(reply.result.reason)} (confidence ${fixed(reply.result.confidence)}).`, 'error', 12000);
  } else {
    const r = reply.result;
    S.proposal = { shape: 'tap', points: r.contour, area: r.area, confidence: r.confidence, grownPx: r.grownPx, seq: r.seq, at };
    say(`Proposed outline${at.box ? ' from the box' : ''}: ${r.area} px, confidence ${fixed(r.confidence)} (${r.ms} ms). Grow or Shrink it, then Accept (or Discard).`, 'hint', 0);
  }
  drawingUi();
  queueRedraw();
}

/** How far the tapped outline was moved, in mm (the server counts pane pixels). */
function grownMm(px) {
  const b = S.layout.panes.bmode;
  const mm = px * (b.spacingX + b.spacingY) / 2;
  return `${mm >= 0 ? '+' : '−'}${Math.abs(mm).toFixed(1)} mm`;
}

/** A refused proposal message: the reason, and the proposal dropped when the server has none. */
function proposalRefused(what, reply, pr) {
  const { error, code } = reply;
  say(`${what}: ${error}`, 'error', 12000);
  // The server holds no proposal (none, or dropped with its held frame): the page drops it too.
  if (code === 'no-proposal' && S.proposal === pr) { S.proposal = null; drawingUi(); queueRedraw(); }
}

/** Grow / Shrink: the server moves the outline out / in by 0.5 mm; the page draws what it returns. */
function adjustTap(action) {
  const pr = S.proposal;
  if (!pr || pr.shape !== 'tap' || !isController() || S.segment.pending) return;
  send({ type: 'proposal', action }, (reply) => {
    S.segment.last = reply;
    if (S.proposal !== pr) return; // accepted, discarded or replaced meanwhile
    if (reply.type === 'error') { proposalRefused(action === 'grow' ? 'Not grown' : 'Not shrunk', reply, pr); return; }
    const r = reply.result;
    Object.assign(pr, { points: r.contour, area: r.area, confidence: r.confidence, grownPx: r.grownPx });
    say(`${action === 'grow' ? 'Grown' : 'Shrunk'}: ${r.area} px (${grownMm(r.grownPx)} from the tap's outline). Accept when it fits.`, 'hint', 0);
    queueRedraw();
  });
}

/** Accept: the server locks tracking on its proposal (as a drawn outline's lock); the next frame shows it tracked. */
function acceptTap() {
  const pr = S.proposal;
  if (S.segment.pending) return;
  const gen = tapGen;
  const sent = send({ type: 'proposal', action: 'accept' }, (r) => {
    S.segment.last = r;
    if (r.type === 'ack') {
      say(`Locked: tapped outline, ${r.result.area} px on frame ${r.result.seq}. Tracking restarts from it.`, 'ok', 8000);
      return;
    }
    say(`Not locked: ${r.error}`, 'error', 12000);
    // A refused lock leaves the server's proposal as it was: show it again, to adjust or discard
    // (unless the server has none, or the page has moved on meanwhile).
    if (r.code !== 'no-proposal' && tapGen === gen && !S.proposal && isController()) {
      S.proposal = pr;
      drawingUi();
      queueRedraw();
    }
  });
  if (!sent) return;
  S.locks.push({ type: 'proposal', action: 'accept' });
  S.proposal = null;
  S.tool = null;
  say('Locking…', 'hint', 0);
  drawingUi();
  queueRedraw();
}

/** Tells the server to drop its proposal (when it can hear it); the reply needs no showing. */
function discardOnServer() {
  if (!ws || ws.readyState !== WebSocket.OPEN || !isController()) return;
  send({ type: 'proposal', action: 'discard' }, (r) => { S.segment.last = r; });
}

/** Drops the proposal (and a tap being outlined), on the server too when it was tapped. */
function forgetProposal() {
  const pr = S.proposal;
  if (pr && pr.shape === 'tap') discardOnServer();
  S.proposal = null;
  if (S.segment.pending || (pr && pr.shape === 'tap')) tapGen++;
  S.segment.pending = false;
}

/** Discard (a tapped outline): the proposal goes, the Tap tool stays for the next tap. */
function discardTap() {
  forgetProposal();
  say(S.tool === 'tap' ? 'Outline discarded: tap the lesion again.' : 'Outline discarded.', '', 4000);
  drawingUi();
  queueRedraw();
}

/** Where the lesion was tapped (a cross) or boxed (a dashed box), on both panes. */
function drawTapMark(at) {
  if (at.box) { drawBox(at.box); return; }
  ctx.save();
  ctx.strokeStyle = COLOUR.proposal;
  ctx.lineWidth = screenPx(2);
  const r = screenPx(6);
  for (const pane of Object.values(S.layout.panes)) {
    const x = pane.rect.x + at.x + 0.5, y = pane.rect.y + at.y + 0.5;
    ctx.beginPath();
    ctx.moveTo(x - r, y); ctx.lineTo(x + r, y);
    ctx.moveTo(x, y - r); ctx.lineTo(x, y + r);
    ctx.stroke();
  }
  ctx.restore();
}

/** A box in pane coordinates (corners in either order), dashed, on both panes. */
function drawBox(b) {
  ctx.save();
  ctx.strokeStyle = COLOUR.proposal;
  ctx.lineWidth = screenPx(2);
  ctx.setLineDash([screenPx(6), screenPx(4)]);
  const x = Math.min(b.x0, b.x1) + 0.5, y = Math.min(b.y0, b.y1) + 0.5;
  for (const pane of Object.values(S.layout.panes)) ctx.strokeRect(pane.rect.x + x, pane.rect.y + y, Math.abs(b.x1 - b.x0), Math.abs(b.y1 - b.y0));
  ctx.restore();
}

function ellipsePath(e, ox, oy) {
  ctx.beginPath();
  ctx.ellipse(ox + e.cx + 0.5, oy + e.cy + 0.5, Math.max(0.5, e.rx), Math.max(0.5, e.ry), 0, 0, 2 * Math.PI);
}

function shapePath(shape, ox, oy, closed) {
  if (shape.shape === 'ellipse') ellipsePath(shape, ox, oy);
  else tracePath(shape.points, ox, oy, closed);
}

function drawStroke() {
  const s = S.stroke;
  if (!s || !S.layout) return;
  const { x, y } = S.layout.panes.bmode.rect;
  ctx.save();
  ctx.strokeStyle = COLOUR.proposal;
  ctx.lineWidth = screenPx(2);
  shapePath(s, x, y, false);
  ctx.stroke();
  ctx.restore();
}

/**
 * The proposal on both panes (the same pane geometry): filled lightly on the B-mode pane, where it
 * is edited. A tapped outline is marked with a cross where it was tapped (it cannot be moved), and
 * so is a tap being outlined.
 */
function drawProposal() {
  const pr = S.proposal;
  if (S.segment.box && S.layout) drawBox(S.segment.box);
  else if (S.segment.pending && S.segment.at && S.layout) drawTapMark(S.segment.at);
  if (!pr || !S.layout) return;
  ctx.save();
  ctx.strokeStyle = COLOUR.proposal;
  ctx.lineWidth = screenPx(2.5);
  for (const [name, pane] of Object.entries(S.layout.panes)) {
    shapePath(pr, pane.rect.x, pane.rect.y, true);
    if (name === 'bmode') { ctx.fillStyle = 'rgba(255,79,216,0.12)'; ctx.fill(); }
    ctx.stroke();
  }
  ctx.restore();
  if (pr.shape === 'tap') { if (!S.segment.pending && pr.at) drawTapMark(pr.at); return; }
  ctx.save();
  const c = centroid(pr);
  const b = S.layout.panes.bmode.rect;
  const r = screenPx(6);
  ctx.fillStyle = COLOUR.proposal;
  ctx.fillRect(b.x + c.x + 0.5 - r / 2, b.y + c.y + 0.5 - r / 2, r, r);
  ctx.restore();
}

canvas.addEventListener('pointerdown', onPointerDown);
canvas.addEventListener('pointermove', onPointerMove);
canvas.addEventListener('pointerup', onPointerUp);
canvas.addEventListener('pointercancel', onPointerUp);
// A long press on a tablet must not open a context menu over the picture.
canvas.addEventListener('contextmenu', (ev) => { if (S.tool || S.proposal || S.referenceTool) ev.preventDefault(); });
for (const b of document.querySelectorAll('[data-tool]')) b.addEventListener('click', () => selectTool(S.tool === b.dataset.tool ? null : b.dataset.tool));
$('accept').addEventListener('click', acceptProposal);
$('grow').addEventListener('click', () => scaleProposal(SCALE_STEP));
$('shrink').addEventListener('click', () => scaleProposal(1 / SCALE_STEP));
$('cancel').addEventListener('click', () => {
  if (S.proposal && S.proposal.shape === 'tap') { discardTap(); return; }
  cancelDrawing();
  say('Outline discarded.', '', 3000);
});

// ---- Shared state: controls follow the server's state, never a local guess ----------------

function onState(st) {
  const prev = S.state;
  S.state = st;
  // Unfrozen (by anyone) or control lost: an outline drawn on the held picture is out of date.
  if (prev && prev.frozen && !st.frozen && cancelDrawing()) say('Unfrozen: the outline was discarded.', '', 4000);
  if (!isController() && cancelDrawing()) say('Control passed to another viewer: the outline was discarded.', '', 5000);
  if (!isController()) S.referenceTool = false;
  applyState();
  if (!prev || prev.layers.contour !== st.layers.contour || prev.layers.rings !== st.layers.rings || prev.layers.tic !== st.layers.tic || prev.ring !== st.ring) queueRedraw();
  if (!prev || prev.models.join() !== st.models.join()) buildClinicalForm();
  else syncClinicalValues();
}

function applyState() {
  const st = S.state;
  const ctl = isController();
  // Read-only for viewers: every control is disabled, except Take control.
  for (const c of document.querySelectorAll('.ctl')) c.disabled = !ctl;
  tapToolUi();
  if (!st) { roleUi(); return; }
  for (const b of document.querySelectorAll('[data-layer]')) b.setAttribute('aria-pressed', String(!!st.layers[b.dataset.layer]));
  $('risk-card').hidden = !st.layers.scores;
  const wasHidden = $('perfusion-card').hidden;
  $('perfusion-card').hidden = !st.layers.tic;
  // A hidden canvas is not drawn: draw it when it is shown.
  if (st.layers.tic && wasHidden) drawPerfusionChart();
  const fz = $('freeze');
  fz.setAttribute('aria-pressed', String(st.frozen));
  fz.textContent = st.frozen ? 'Unfreeze' : 'Freeze';
  $('badge-frozen').hidden = !st.frozen;
  $('badge-frozen').textContent = st.frozen ? `FROZEN · frame ${st.frozenSeq}` : '';
  for (const b of $('model-toggles').querySelectorAll('[data-model]')) b.setAttribute('aria-pressed', String(st.models.includes(b.dataset.model)));
  recordUi();
  roleUi();
  drawingUi();
}

/** Who has control, at a glance; a viewer gets the Take control button. */
function roleUi() {
  const role = $('role');
  const take = $('take-control');
  if (!S.connected || !S.state) { role.textContent = 'not connected'; role.className = 'pill'; take.hidden = true; return; }
  const c = S.state.controller;
  if (isController()) { role.textContent = `In control (${S.viewer.id})`; role.className = 'pill me'; take.hidden = true; }
  else {
    role.textContent = `Viewing · ${c ? `${c} has control` : 'nobody has control'}`;
    role.className = 'pill viewer';
    take.hidden = false;
  }
}

$('take-control').addEventListener('click', () => {
  // force: the sonographer at this screen takes over; the other screen sees it at once.
  send({ type: 'control', action: 'take', force: true }, (r) => {
    if (r.type === 'ack') say('You have control.', 'ok', 4000); else say(r.error, 'error');
  });
});

for (const b of document.querySelectorAll('[data-layer]')) {
  b.addEventListener('click', () => {
    if (!S.state) return;
    const name = b.dataset.layer;
    send({ type: 'layers', layers: { [name]: !S.state.layers[name] } }, replyToLine);
  });
}

/** Default reply handler: errors on the message line, acks silently. */
function replyToLine(r) {
  if (r.type === 'error') say(r.error, 'error', 10000);
}

$('freeze').addEventListener('click', toggleFreeze);
function toggleFreeze() {
  if (!S.state || !isController()) return;
  send({ type: 'freeze', frozen: !S.state.frozen }, replyToLine);
}

function buildModelToggles() {
  const box = $('model-toggles');
  box.replaceChildren();
  for (const m of S.models) {
    const b = el('button', 'btn toggle ctl', `${m.id} v${m.version}`);
    b.type = 'button';
    b.dataset.model = m.id;
    b.title = m.task;
    b.addEventListener('click', () => {
      if (!S.state) return;
      const on = new Set(S.state.models);
      if (on.has(m.id)) on.delete(m.id); else on.add(m.id);
      send({ type: 'models', enabled: S.models.map((x) => x.id).filter((id) => on.has(id)) }, replyToLine);
    });
    box.append(b);
  }
  if (!S.models.length) box.append(el('div', 'small', 'No model loaded: no scores.'));
}

// ---- Clinical inputs ----------------------------------------------------------------------

/** The variables of the enabled models that are entered here (source "overlay"), one per name. */
function clinicalVariables() {
  const seen = new Map();
  for (const m of S.models) {
    if (!S.state || !S.state.models.includes(m.id)) continue;
    for (const v of m.clinical || []) {
      // The card names one source; accept a list too.
      const sources = [].concat(v.source);
      if (sources.includes('overlay') && !seen.has(v.name)) seen.set(v.name, v);
    }
  }
  return [...seen.values()];
}

function buildClinicalForm() {
  const vars = clinicalVariables();
  const box = $('clinical-fields');
  box.replaceChildren();
  for (const v of vars) box.append(clinicalField(v));
  $('clinical-none').hidden = vars.length > 0;
  $('clinical-actions').hidden = vars.length === 0;
  const readsAny = S.models.some((m) => S.state && S.state.models.includes(m.id) && (m.clinical || []).length);
  $('clinical-none').textContent = readsAny ? 'The enabled models read no clinical inputs entered here (they come from the panel or the API).' : 'The loaded models read no clinical inputs.';
  for (const c of box.querySelectorAll('.ctl')) c.disabled = !isController();
  syncClinicalValues(true);
}

function clinicalField(v) {
  const row = el('div', 'field');
  const id = `clin-${v.name}`;
  const label = el('label', '', v.unit ? `${v.name} (${v.unit})` : v.name);
  label.htmlFor = id;
  let input;
  if (v.type === 'boolean' || v.type === 'category') {
    input = el('select', 'ctl');
    input.append(new Option('not set', ''));
    const options = v.type === 'boolean' ? [['yes', 'true'], ['no', 'false']] : (v.levels || []).map((l) => [l, l]);
    for (const [text, value] of options) input.append(new Option(text, value));
  } else {
    input = el('input', 'ctl');
    input.type = 'number';
    input.step = v.type === 'integer' ? '1' : 'any';
    input.inputMode = v.type === 'integer' ? 'numeric' : 'decimal';
    if (v.range) { input.min = String(v.range[0]); input.max = String(v.range[1]); input.placeholder = `${v.range[0]}–${v.range[1]}`; }
  }
  input.id = id;
  input.dataset.name = v.name;
  input.dataset.type = v.type;
  // Edited fields keep what was typed until Set, whatever state arrives meanwhile.
  input.addEventListener('input', () => row.classList.add('dirty'));
  row.append(label, input);
  return row;
}

/** Shows the server's values (state.clinical) in the fields not being edited. */
function syncClinicalValues(all = false) {
  if (!S.state) return;
  for (const input of $('clinical-fields').querySelectorAll('[data-name]')) {
    if (!all && input.parentElement.classList.contains('dirty')) continue;
    const v = S.state.clinical[input.dataset.name];
    input.value = v === undefined ? '' : String(v);
    input.parentElement.classList.remove('dirty');
  }
}

/** The value of one field as the protocol wants it: null clears, numbers are numbers. */
function fieldValue(input) {
  if (input.value === '') {
    if (input.validity && input.validity.badInput) throw new Error(`${input.dataset.name}: not a number`);
    return null;
  }
  if (input.dataset.type === 'boolean') return input.value === 'true';
  if (input.dataset.type === 'category') return input.value;
  return Number(input.value);
}

$('clinical').addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (!isController() || !S.state) return;
  const msgEl = $('clinical-msg');
  const values = {};
  try {
    for (const input of $('clinical-fields').querySelectorAll('[data-name]')) {
      const v = fieldValue(input);
      const was = S.state.clinical[input.dataset.name];
      // Only what changed: setting an input restarts the live window of the models that read it.
      if (v !== (was === undefined ? null : was)) values[input.dataset.name] = v;
    }
  } catch (e) {
    msgEl.textContent = e.message;
    msgEl.className = 'small error';
    return;
  }
  if (!Object.keys(values).length) { msgEl.textContent = 'No change.'; msgEl.className = 'small'; return; }
  send({ type: 'clinical', values }, (r) => {
    msgEl.textContent = r.type === 'ack' ? 'Set.' : r.error;
    msgEl.className = `small ${r.type === 'ack' ? 'ok' : 'error'}`;
    if (r.type === 'ack') syncClinicalValues(true);
  });
});

// ---- Recording and events -----------------------------------------------------------------

function recordUi() {
  const r = S.state && S.state.recording;
  const b = $('record');
  const info = $('record-info');
  if (!r) return;
  b.disabled = !isController() || !r.available;
  b.setAttribute('aria-pressed', String(r.active));
  b.textContent = r.active ? 'Stop recording' : 'Record';
  info.className = r.active ? 'small rec-on' : 'small';
  if (!r.available) info.textContent = 'recording not available here';
  else if (r.active) info.textContent = `● ${r.name} · ${elapsed(r.since)}`;
  else info.textContent = 'not recording';
}

/** Time since an ISO instant as m:ss (the server's clock; never negative). */
function elapsed(since) {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(since)) / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
setInterval(() => { if (S.state && S.state.recording.active) recordUi(); }, 1000);

$('record').addEventListener('click', () => {
  if (!S.state) return;
  const action = S.state.recording.active ? 'stop' : 'start';
  say(action === 'start' ? 'Starting the recording…' : 'Stopping the recording…', 'hint', 0);
  send({ type: 'record', action }, (r) => {
    if (r.type === 'error') { say(r.error, 'error', 10000); return; }
    say(action === 'start' ? `Recording ${r.result.name}` : `Recording ${r.result.name} saved: ${r.result.frames} frames${r.result.dropped ? `, ${r.result.dropped} dropped` : ''}.`, 'ok');
  });
});

$('mark').addEventListener('click', markEvent);
$('mark-label').addEventListener('keydown', (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); markEvent(); } });
function markEvent() {
  const label = $('mark-label').value.trim();
  send(label ? { type: 'mark', label } : { type: 'mark' }, (r) => {
    if (r.type === 'error') say(r.error, 'error');
    else $('mark-label').value = '';
  });
}

function onEvent(e) {
  S.events.push(e);
  if (S.events.length > 50) S.events.shift();
  const ul = $('events');
  const t = new Date(e.at);
  const time = Number.isNaN(t.getTime()) ? e.at : t.toLocaleTimeString();
  const li = el('li', '', `${time} · ${e.label || 'event'} · frame ${e.seq ?? '–'} · by ${e.by}`);
  ul.prepend(li);
  while (ul.children.length > 5) ul.lastChild.remove();
}

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
  if (s !== 'tracking' && seq > S.notLiveSeq) S.notLiveSeq = seq;
  // A held (frozen) frame is re-sent after a new lock: this frame is now tracked, so its scores may be live.
  if (s === 'tracking' && seq === S.notLiveSeq) S.notLiveSeq = seq - 1;
  if (reason !== undefined && (reason || null) !== S.trackingReason) {
    S.trackingReason = reason || null;
    if (s === S.trackingState) renderScores();
  }
  if (s === S.trackingState) return;
  S.trackingState = s;
  renderScores();
}

function showTracking(t) {
  const e = $('tracking');
  e.textContent = t.state;
  e.className = `state ${t.state}`;
  $('confidence').textContent = t.state === 'idle' ? '–' : t.confidence.toFixed(2);
}

function onScores(msg) {
  S.scores = msg;
  // Without frames (none drawn yet, or the page is behind), the score's own state is the newest.
  if (msg.seq >= S.lastSeq) setTrackingState(msg.trackingState, msg.seq);
  renderScores();
}

function renderScores() {
  const s = S.trackingState;
  const msg = S.scores;
  const line = $('score-state');
  line.className = `score-state ${s}`;
  line.replaceChildren();
  const box = $('scores');
  box.replaceChildren();
  const live = s === 'tracking' && msg && msg.live && msg.seq > S.notLiveSeq;
  if (s !== 'tracking') line.append(el('div', '', NOT_LIVE[s] || `Tracking ${s}. No live score.`));
  else if (!live) line.append(el('div', '', 'Tracking: waiting for a live score…'));
  // The newest frame's own reason (why it is not tracking) wins over an older score's.
  if (s !== 'tracking' && S.trackingReason) line.append(el('div', 'small', `reason: ${S.trackingReason}`));
  else if (msg && !msg.live && msg.reason && msg.trackingState === s) line.append(el('div', 'small', `reason: ${msg.reason}`));
  if (live && S.state && S.state.frozen) line.append(el('div', 'small', `Frozen: score of the held frame ${msg.seq}.`));
  if (!live) return;
  if (!msg.scores.length) line.append(el('div', 'small', 'No model enabled.'));
  for (const sc of msg.scores) box.append(scoreCard(sc));
  // The notice the scores carry (the same text as hello's), right under them.
  if (msg.scores.length) $('scores-notice').textContent = msg.scores[0].notice;
}

function scoreCard(s) {
  const model = S.models.find((m) => m.id === s.modelId);
  const card = el('div', 'model' + (s.status === 'ok' ? '' : ' stale'));
  card.dataset.scoreModel = s.modelId;
  card.append(el('div', 'name', model ? model.task : s.modelId));
  card.append(el('div', 'small', `${s.modelId} v${s.version}`));
  if (s.researchUseOnly || (model && model.researchUseOnly)) card.append(el('div', 'ruo', 'Research use only'));
  if (s.status === 'invalid') { card.append(el('div', 'category hi', `invalid: ${s.problem}`)); return card; }
  if (s.status === 'incomplete') {
    card.append(el('div', 'category hi', `incomplete: enter ${(s.missing || []).join(', ')} (never guessed)`));
    return card;
  }
  if (s.link === 'cox') {
    const v = el('div');
    v.append(el('span', 'value-text', fixed(s.value)), el('span', 'category', s.category));
    card.append(v);
    card.append(el('div', 'small', `risk group (linear predictor), band ${fixed(s.band[0])} to ${fixed(s.band[1])} over ${s.frames} frames`));
  } else {
    card.append(valueLine(s), gauge(s), gaugeScale(s));
    card.append(el('div', 'small', `band ${bandText(s)} over ${s.frames} frames${s.status === 'warming-up' ? ' (warming up)' : ''}; ` +
      `${model && model.radScore ? 'Rad-score' : 'linear predictor'} ${fixed(s.linearPredictor)}`));
    // What the band is made of: the frame-to-frame spread and the mask's sensitivity (shrunk / grown).
    if (s.maskBand && s.frameBand && s.frameBand[0] !== null && s.maskBand.shrunk !== null && s.maskBand.grown !== null)
      card.append(el('div', 'small band-parts', `frames ${pct(s.frameBand[0])}–${pct(s.frameBand[1])}; outline ±${s.maskBand.radiusPx} px ` +
        `${pct(s.maskBand.shrunk)} (shrunk) / ${pct(s.maskBand.grown)} (grown)`));
  }
  card.append(drivers(s.drivers));
  return card;
}

function bandText(s) {
  return s.band[0] === null || s.band[1] === null ? 'n/a' : `${pct(s.band[0])}–${pct(s.band[1])}`;
}

/** The category's colour: above the first cutoff is the higher-risk side. */
function valueLine(s) {
  const line = el('div');
  const hi = s.value !== null && s.cutoff !== null && s.value >= s.cutoff;
  line.append(el('span', 'value-text', s.value === null ? 'n/a' : pct(s.value)), el('span', `category ${hi ? 'hi' : 'lo'}`, s.category));
  return line;
}

const clamp01 = (v) => Math.min(1, Math.max(0, v));

function gauge(s) {
  const g = el('div', 'gauge');
  g.setAttribute('role', 'meter');
  g.setAttribute('aria-valuemin', '0');
  g.setAttribute('aria-valuemax', '100');
  if (s.band[0] !== null && s.band[1] !== null) {
    const band = el('div', 'band');
    band.style.left = pct(clamp01(s.band[0]));
    band.style.width = pct(Math.max(0.005, clamp01(s.band[1]) - clamp01(s.band[0])));
    g.append(band);
  }
  for (const c of s.cutoffs || []) {
    const cut = el('div', 'cutoff');
    cut.style.left = pct(clamp01(c));
    g.append(cut);
  }
  if (s.value !== null) {
    const val = el('div', 'value');
    val.style.left = `calc(${pct(clamp01(s.value))} - 2px)`;
    g.append(val);
    g.setAttribute('aria-valuenow', (100 * s.value).toFixed(0));
  }
  return g;
}

function gaugeScale(s) {
  const sc = el('div', 'gauge-scale');
  const at = (v, text, align) => {
    const t = el('span', '', text);
    t.style.left = pct(clamp01(v));
    if (align === 'end') t.style.transform = 'translateX(-100%)';
    else if (align === 'mid') t.style.transform = 'translateX(-50%)';
    sc.append(t);
  };
  at(0, '0%');
  if (s.cutoff !== null && s.cutoff > 0.08 && s.cutoff < 0.92) at(s.cutoff, `cutoff ${pct(s.cutoff)}`, 'mid');
  at(1, '100%', 'end');
  return sc;
}

/** 'bmode.ring50px.shape2D_Elongation' -> 'ring 50 px Elongation' (the full name in the tooltip). */
function shortFeature(f) {
  const parts = f.split('.');
  if (parts.length !== 3) return f;
  const [pane, region, feature] = parts;
  const name = feature.includes('_') ? feature.slice(feature.indexOf('_') + 1) : feature;
  const where = region.replace(/^ring(\d+(?:\.\d+)?)(mm|px)$/, 'ring $1 $2');
  return `${pane === 'contrast' ? 'CEUS ' : ''}${where} ${name}`;
}

function drivers(list) {
  const ul = el('ul', 'drivers');
  for (const d of list) {
    const li = el('li');
    const f = el('span', 'feat', shortFeature(d.feature));
    f.title = d.feature;
    li.append(f, el('span', d.contribution >= 0 ? 'up' : 'down', `${d.contribution >= 0 ? '+' : '−'}${Math.abs(d.contribution).toFixed(2)}`));
    ul.append(li);
  }
  if (list.length) { const wrap = el('div'); wrap.append(el('div', 'small', 'top drivers'), ul); return wrap; }
  return ul;
}

// ---- Perfusion: the card, the reference tool, New injection, exports --------------------

const PARAMETERS = [
  ['AT', 's', 'arrival time'], ['PE', 'a.u.', 'peak enhancement'], ['TTP', 's', 'time to peak (from AT)'], ['RT', 's', 'rise time'],
  ['WiR', 'a.u./s', 'wash-in rate'], ['WiAUC', 'a.u.·s', 'wash-in area under the curve'], ['MTT', 's', 'mean transit time'],
  ['FT', 's', 'fall time'], ['WoR', 'a.u./s', 'wash-out rate'], ['AUC', 'a.u.·s', 'area under the curve'],
];
const PHASES = [
  ['pre', 'rgba(133,147,163,0.13)'], ['early', 'rgba(61,220,132,0.13)'], ['peak', 'rgba(255,210,63,0.15)'], ['late', 'rgba(57,192,255,0.13)'],
];
const MODEL_NAME = { lognormal: 'lognormal', gammaVariate: 'gamma variate' };

/**
 * A parameter as shown: three significant digits (a thousand and more as whole numbers), '–' when
 * there is none. The browser tests format the message's values the same way.
 */
function fmtParam(v) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
  return Math.abs(v) >= 1000 ? v.toFixed(0) : v.toPrecision(3);
}
S.fmtParam = fmtParam;

/** 'ring3mm' -> the ring's mm (3), else null. */
const ringMm = (name) => { const m = /^ring(\d+(?:\.\d+)?)mm$/.exec(name); return m ? Number(m[1]) : null; };

function regionLabel(name) {
  const mm = ringMm(name);
  return mm !== null ? `ring ${mm} mm` : name;
}

/** Region colour: lesion yellow, rings as on the picture, reference lime. */
function regionColour(name) {
  if (name === 'lesion') return LESION_COLOUR;
  if (name === 'reference') return REFERENCE_COLOUR;
  const k = S.ringsMm.indexOf(ringMm(name));
  return RING_COLOURS[(k < 0 ? 0 : k) % RING_COLOURS.length];
}
/** The legend's swatch class of a region. */
function swatchClass(name) {
  if (name === 'lesion') return 'c0';
  if (name === 'reference') return 'ref';
  const k = S.ringsMm.indexOf(ringMm(name));
  return `c${1 + ((k < 0 ? 0 : k) % RING_COLOURS.length)}`;
}

/**
 * Regions the card shows: the lesion, the rings drawn on the picture (hello's ringsMm) and the
 * reference. The analysis may hold more (rings a model card reads, e.g. ring50px): those are in
 * the exports, not on the card.
 */
const shownRegion = (n) => n === 'lesion' || n === 'reference' || S.ringsMm.includes(ringMm(n));

/** The region names to show, lesion first, rings inner to outer, then the reference (from the message, else from hello). */
function regionNames() {
  const m = S.perfusion;
  const names = (m ? Object.keys(m.curve.series) : []).filter(shownRegion);
  if (!names.length) return ['lesion', ...S.ringsMm.map((mm) => `ring${mm}mm`), 'reference'];
  const order = (n) => (n === 'lesion' ? -1 : n === 'reference' ? Infinity : ringMm(n));
  return names.slice().sort((a, b) => order(a) - order(b));
}

function onPerfusion(msg) {
  // An analysis that was running when the curve was restarted (New injection) may still arrive,
  // carrying the old curve's results with the new curve's samples: its analysis spans more time
  // than the curve it came with (normally the curve spans at least as much: it is read later).
  // Never shown: parameters of a curve that is gone must not pass for the new one's.
  const t = msg.curve.t;
  const span = t.length ? t[t.length - 1] - t[0] : 0;
  if (msg.durationS > span + Math.max(1, 0.01 * msg.durationS)) { S.perfusionStale++; return; }
  S.perfusion = msg;
  renderPerfusion();
}

/** The perfusion card from S.perfusion: state line, chart, legend, counts, parameters, phases, notice. */
function renderPerfusion() {
  const m = S.perfusion;
  const line = $('perfusion-state');
  if (!m) {
    line.textContent = S.connected ? 'No perfusion analysis yet: it starts once the lesion is tracked.' : 'Not connected: no perfusion analysis.';
    line.className = 'pf-state none';
    delete line.dataset.state;
  } else if (!S.connected) {
    // Nothing shown may pass for current while the page hears nothing.
    line.textContent = `Disconnected: the last analysis said "${m.message}".`;
    line.className = 'pf-state disconnected';
    line.dataset.state = 'disconnected';
  } else {
    // The lesion's state, in the server's words ("no wash-in detected", "lognormal fit, R² 0.998").
    line.textContent = m.message;
    line.className = `pf-state ${m.state}`;
    line.dataset.state = m.state;
    $('perfusion-notice').textContent = m.notice;
  }
  $('perfusion-axes').textContent = m ? `${m.units} against time (s since the session's first frame)` : '';
  $('perfusion-counts').textContent = m
    ? `${m.counts.samples} samples over ${m.durationS.toFixed(1)} s; left out: ${m.counts.uncertain} uncertain, ${m.counts.lost} lost` +
      `${m.counts.skippedAnalyses ? `; ${m.counts.skippedAnalyses} analyses skipped` : ''}`
    : '';
  buildPerfusionLegend();
  renderParameters();
  renderPhasesText();
  drawPerfusionChart();
}

function buildPerfusionLegend() {
  const box = $('perfusion-legend');
  box.replaceChildren();
  const m = S.perfusion;
  for (const name of regionNames()) {
    const s = el('span');
    s.dataset.region = name;
    s.append(el('span', `sw ${swatchClass(name)}`), document.createTextNode(regionLabel(name)));
    box.append(s);
  }
  if (m && m.fit && Object.keys(m.fit.series).length) {
    const s = el('span');
    s.append(el('span', 'sw dashed'), document.createTextNode(`${MODEL_NAME[m.model] || m.model} fit`));
    box.append(s);
  }
}

const regionOf = (name) => (S.perfusion ? S.perfusion.regions.find((r) => r.name === name) : undefined);
/** Parameters only for a region whose fit stands. */
const fittedParameters = (r) => (r && r.state === 'fitted' && r.parameters ? r.parameters : null);

/**
 * The parameter table: lesion, reference and the lesion relative to the reference (rPE, ...); the
 * rings in their own table (folded). A region that is not 'fitted' shows no numbers, and its
 * message says why.
 */
function renderParameters() {
  const m = S.perfusion;
  const table = $('perfusion-params');
  const rings = $('perfusion-rings');
  const notes = $('perfusion-regions');
  notes.replaceChildren();
  if (!m) { table.hidden = true; rings.hidden = true; table.replaceChildren(); return; }
  const lesion = regionOf('lesion');
  const reference = regionOf('reference');
  const columns = [
    { region: 'lesion', head: 'Lesion', values: fittedParameters(lesion), key: (p) => p },
    { region: 'reference', head: 'Ref.', values: fittedParameters(reference), key: (p) => p },
  ];
  // Relative values (lesion / reference) when the server sends them.
  if (lesion && fittedParameters(lesion) && lesion.relative) columns.push({ region: 'lesion', head: 'Rel.', title: 'lesion / reference (rAT, rPE, ...)', values: lesion.relative, key: (p) => `r${p}`, relative: true });
  table.replaceChildren(parameterTable(columns, m.model));
  table.hidden = false;
  const ringNames = regionNames().filter((n) => ringMm(n) !== null);
  const ringColumns = ringNames.map((n) => ({ region: n, head: regionLabel(n), values: fittedParameters(regionOf(n)), key: (p) => p }));
  $('perfusion-ring-params').replaceChildren(...(ringColumns.length ? [parameterTable(ringColumns, m.model)] : []));
  rings.hidden = ringColumns.length === 0;
  // Why a region has no parameters, in the server's words.
  for (const r of m.regions) {
    if (fittedParameters(r) || !shownRegion(r.name)) continue;
    const d = el('div', 'pf-note', `${regionLabel(r.name)}: ${r.message}`);
    d.dataset.region = r.name;
    d.dataset.state = r.state;
    notes.append(d);
  }
}

function parameterTable(columns, model) {
  const frag = document.createDocumentFragment();
  const head = el('tr');
  head.append(el('th', '', ''));
  for (const c of columns) {
    const th = el('th', '', c.head);
    th.scope = 'col';
    if (!c.relative) th.append(el('span', `sw ${swatchClass(c.region)}`));
    const r = regionOf(c.region);
    if (r && !c.relative) { th.title = `${regionLabel(r.name)}: ${r.message}`; th.dataset.state = r.state; }
    if (c.title) th.title = c.title;
    head.append(th);
  }
  const thead = el('thead');
  thead.append(head);
  const tbody = el('tbody');
  for (const [p, unit, meaning] of PARAMETERS) {
    const tr = el('tr');
    const th = el('th', '', p);
    th.scope = 'row';
    th.title = meaning;
    th.append(el('span', 'unit', unit));
    tr.append(th);
    for (const c of columns) {
      const key = c.key(p);
      const v = c.values ? c.values[key] : undefined;
      const td = el('td', c.relative ? 'rel' : '', c.values ? fmtParam(v) : '–');
      td.dataset.region = c.region;
      td.dataset.param = key;
      tr.append(td);
    }
    tbody.append(tr);
  }
  // Fit quality of the chosen model, where there is a fit.
  const tr = el('tr', 'r2');
  const th = el('th', '', 'R²');
  th.scope = 'row';
  th.append(el('span', 'unit', MODEL_NAME[model] || model));
  tr.append(th);
  for (const c of columns) {
    const r = regionOf(c.region);
    const v = !c.relative && r && r.rSquared ? r.rSquared[model] : null;
    const td = el('td', '', !c.relative && fittedParameters(r) && typeof v === 'number' ? v.toFixed(3) : '');
    td.dataset.region = c.region;
    td.dataset.param = c.relative ? 'rR2' : 'R2';
    tr.append(td);
  }
  tbody.append(tr);
  frag.append(thead, tbody);
  return frag;
}

const phaseEdge = (v, open) => (v === null ? open : `${v.toFixed(1)} s`);

function renderPhasesText() {
  const m = S.perfusion;
  const box = $('perfusion-phases');
  if (!m || !m.phases) { box.textContent = ''; return; }
  box.textContent = 'phases: ' + PHASES.map(([k]) => {
    const [a, b] = m.phases[k];
    return `${k} ${phaseEdge(a, 'start')}–${phaseEdge(b, 'open')}`;
  }).join(' · ');
}

/** A round step giving about n intervals over span. */
function niceStep(span, n) {
  const raw = span / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}
const tickText = (v, step) => v.toFixed(Math.max(0, -Math.floor(Math.log10(step) + 1e-9)));

/**
 * The chart: phases as shaded bands with their names, the measured curves (solid), the fitted
 * curves (dashed, the same colours); x in seconds, y zoomed to the data (units under the chart).
 */
function drawPerfusionChart() {
  const c = $('perfusion-chart');
  if (!c.clientWidth) return; // hidden
  const dpr = devicePixelRatio;
  const w = Math.max(1, Math.round(c.clientWidth * dpr)), h = Math.max(1, Math.round(c.clientHeight * dpr));
  if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
  const g = c.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  const W = w / dpr, H = h / dpr;
  g.clearRect(0, 0, W, H);
  g.font = '10px system-ui, sans-serif';
  g.fillStyle = '#8593a3';
  const m = S.perfusion;
  const t = m ? m.curve.t : [];
  if (t.length < 2) {
    g.fillText(m ? 'collecting…' : 'no time-intensity curve yet (needs tracking)', 8, 20);
    S.chart = { drawn: false, points: t.length };
    return;
  }
  const names = regionNames();
  const order = names.filter((n) => n !== 'lesion').concat(names.includes('lesion') ? ['lesion'] : []); // lesion on top
  const fit = m.fit && m.fit.t.length > 1 ? m.fit : null;
  // Axes: x over the curve (and the fit), at least 10 s; y over every value drawn.
  let x0 = t[0], x1 = t[t.length - 1];
  if (fit) { x0 = Math.min(x0, fit.t[0]); x1 = Math.max(x1, fit.t[fit.t.length - 1]); }
  x0 = Math.max(0, Math.floor(x0));
  x1 = Math.max(x1, x0 + 10);
  let lo = Infinity, hi = -Infinity;
  const see = (v) => { if (typeof v === 'number' && Number.isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; } };
  for (const n of order) for (const v of m.curve.series[n] || []) see(v);
  if (fit) for (const n of Object.keys(fit.series)) for (const v of fit.series[n]) see(v);
  if (!(hi >= lo)) { lo = 0; hi = 1; }
  if (hi - lo < 1e-9 * Math.max(1, Math.abs(hi))) { const d = Math.max(1e-6, Math.abs(hi) * 0.05); lo -= d; hi += d; }
  // Zoomed to the data (5 % margins), with gridlines on round values inside.
  const pad = 0.05 * (hi - lo);
  const yMin = lo - pad, yMax = hi + pad;
  const ystep = niceStep(yMax - yMin, 5);
  const yTicks = [];
  for (let v = Math.ceil(yMin / ystep) * ystep; v <= yMax; v += ystep) yTicks.push(Math.abs(v) < ystep * 1e-9 ? 0 : v);
  const L = 6 + Math.max(12, ...yTicks.map((v) => g.measureText(tickText(v, ystep)).width)), R = 8, T = 15, B = 16;
  const X = (s) => L + ((s - x0) / (x1 - x0)) * (W - L - R);
  const Y = (v) => H - B - ((v - yMin) / (yMax - yMin)) * (H - B - T);

  // Phase bands (a null end is open: the band runs to the chart's edge).
  const phasesDrawn = [];
  if (m.phases) {
    for (const [k, fill] of PHASES) {
      const w2 = m.phases[k];
      if (!w2) continue;
      const a = Math.max(x0, w2[0] === null ? -Infinity : w2[0]), b = Math.min(x1, w2[1] === null ? Infinity : w2[1]);
      if (!(b > a)) continue;
      g.fillStyle = fill;
      g.fillRect(X(a), T, X(b) - X(a), H - B - T);
      g.fillStyle = '#aab6c3';
      const tw = g.measureText(k).width;
      if (X(b) - X(a) >= tw + 2) g.fillText(k, (X(a) + X(b)) / 2 - tw / 2, T - 4);
      phasesDrawn.push({ phase: k, from: a, to: b });
    }
  }
  // Grid and labels.
  g.strokeStyle = '#243140';
  g.fillStyle = '#8593a3';
  g.lineWidth = 1;
  for (const v of yTicks) {
    g.beginPath(); g.moveTo(L, Y(v)); g.lineTo(W - R, Y(v)); g.stroke();
    const text = tickText(v, ystep);
    g.fillText(text, L - 4 - g.measureText(text).width, Y(v) + 3);
  }
  const span = x1 - x0;
  const xstep = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200].find((s) => span / s <= 6) || 1800;
  for (let s = Math.ceil(x0 / xstep) * xstep; s <= x1 + 1e-9; s += xstep) {
    const text = `${s}s`;
    const tw = g.measureText(text).width;
    g.fillText(text, Math.min(W - R - tw, Math.max(L, X(s) - tw / 2)), H - 4);
  }
  // Clip the curves to the plot.
  g.save();
  g.beginPath();
  g.rect(L, T, W - L - R, H - B - T);
  g.clip();
  const line = (ts, values, colour, width, dash) => {
    g.strokeStyle = colour;
    g.lineWidth = width;
    g.setLineDash(dash);
    g.beginPath();
    let pen = false, n = 0;
    for (let i = 0; i < ts.length; i++) {
      const v = values[i];
      if (typeof v !== 'number' || !Number.isFinite(v)) { pen = false; continue; }
      if (pen) g.lineTo(X(ts[i]), Y(v)); else g.moveTo(X(ts[i]), Y(v));
      pen = true;
      n++;
    }
    g.stroke();
    return n;
  };
  const seriesDrawn = [];
  // Measured curves faint (they are noisy), the fitted ones over them, dashed.
  g.globalAlpha = 0.55;
  for (const n of order) if (m.curve.series[n] && line(t, m.curve.series[n], regionColour(n), 1.25, []) > 0) seriesDrawn.push(n);
  g.globalAlpha = 1;
  const fitsDrawn = [];
  if (fit) for (const n of order) if (fit.series[n] && line(fit.t, fit.series[n], regionColour(n), 2, [6, 3]) > 0) fitsDrawn.push(n);
  g.restore();
  S.chart = { drawn: true, points: t.length, x: [x0, x1], y: [yMin, yMax], series: seriesDrawn, fits: fitsDrawn, phases: phasesDrawn, width: W, height: H };
}

// Reference placement: the tool makes the next click or tap on either pane place the disc.
function selectReferenceTool(on) {
  if (on && !isController()) return;
  S.referenceTool = on;
  if (on) {
    S.tool = null;
    S.stroke = null;
    say(`Reference: click or tap normal tissue on either pane; a ${REFERENCE_RADIUS_MM} mm disc is placed there and follows the lesion.`, 'hint', 0);
  } else if (!S.proposal) say('');
  drawingUi();
  queueRedraw();
}

/** Sends the reference at a screen position (B-mode pane coordinates; a contrast-pane point maps to the same). */
function placeReference(clientX, clientY) {
  const p = paneAt(clientX, clientY);
  if (!p) { say('Click or tap inside one of the panes to place the reference.', 'error'); return; }
  const r = S.layout.panes.bmode.rect;
  const x = round2(Math.min(r.width - 1, Math.max(0, p.x))), y = round2(Math.min(r.height - 1, Math.max(0, p.y)));
  S.referenceTool = false;
  drawingUi();
  // Where it was placed, on which frame: the server anchors it to that frame's lesion (or, when
  // it no longer holds that frame, to the lesion of the frame it showed last).
  const h = S.lastHeader;
  S.referencePlaced = { pane: p.pane, x, y, seq: h ? h.seq : null, center: h && h.tracking.center ? { ...h.tracking.center } : null };
  send({ type: 'reference', x, y, radiusMm: REFERENCE_RADIUS_MM, ...(h && { seq: h.seq }) }, (reply) => {
    if (reply.type === 'ack') say(`Reference placed: a ${REFERENCE_RADIUS_MM} mm disc at (${x.toFixed(0)}, ${y.toFixed(0)}); it follows the lesion.`, 'ok');
    else say(`Reference not placed: ${reply.error}`, 'error', 10000);
  });
}

$('tool-reference').addEventListener('click', () => selectReferenceTool(!S.referenceTool));
$('reference-clear').addEventListener('click', () => {
  send({ type: 'reference', clear: true }, (r) => {
    if (r.type === 'ack') say('Reference removed.', 'ok', 4000); else say(r.error, 'error', 10000);
  });
});
$('perfusion-reset').addEventListener('click', () => {
  send({ type: 'perfusion', action: 'reset' }, (r) => {
    if (r.type === 'error') { say(r.error, 'error', 10000); return; }
    // The old curve is gone on the server: show none until the new one arrives.
    S.perfusion = null;
    renderPerfusion();
    say('New injection: the time-intensity curve starts again.', 'ok');
  });
});

/** Downloads /api/perfusion.csv or .json (with the page's token, when it has one). */
async function exportPerfusion(format) {
  const t = token();
  let res;
  try {
    res = await fetch(`/api/perfusion.${format}`, { headers: t ? { Authorization: `Bearer ${t}` } : {}, cache: 'no-store' });
  } catch (e) {
    S.exports.push({ format, status: 0 });
    say(`Export failed: ${e.message}`, 'error', 10000);
    return;
  }
  if (!res.ok) {
    const why = (await res.text()).trim();
    S.exports.push({ format, status: res.status });
    say(`Export failed (HTTP ${res.status}): ${why}`, 'error', 10000);
    return;
  }
  const blob = await res.blob();
  const m = /filename="([^"]+)"/.exec(res.headers.get('Content-Disposition') || '');
  const name = m ? m[1] : `sonomics-perfusion.${format}`;
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  S.exports.push({ format, status: res.status, name, bytes: blob.size });
  say(`Exported ${name} (${blob.size} bytes).`, 'ok');
}
$('export-csv').addEventListener('click', () => exportPerfusion('csv'));
$('export-json').addEventListener('click', () => exportPerfusion('json'));
window.addEventListener('resize', () => { drawPerfusionChart(); queueRedraw(); });

// ---- Status -------------------------------------------------------------------------------

function onStatus(stats) {
  S.status = stats;
  const dl = $('status');
  dl.replaceChildren();
  const p = stats.pipeline, o = stats.overlay;
  const row = (k, v, bad = false) => dl.append(el('dt', '', k), el('dd', bad ? 'bad' : '', v));
  const ms = (s) => (s && s.count ? `${s.p50.toFixed(0)} / ${s.p99.toFixed(0)} ms` : '–');
  const src = stats.source;
  if (src) {
    row('source', `${src.id} · ${Math.round(src.fps * 100) / 100} fps`);
    if (src.signal) row('signal', src.signal === 'live' ? 'live' : `NO SIGNAL${src.reason ? ` (${src.reason})` : ''}`, src.signal !== 'live');
    if (src.delivered !== undefined) row('capture', `${src.unique ?? src.delivered} new, ${src.duplicates ?? 0} repeated, ${src.dropped ?? 0} lost`);
  }
  row('latency display', `${ms(p.endToEnd.display)} (p50 / p99)`);
  row('latency scores', `${ms(p.endToEnd.scores)} (p50 / p99)`);
  if (o.captureToSend) row('capture → sent', `${ms(o.captureToSend)} (p50 / p99)`);
  row('frames', `${p.displayed} shown, ${p.scored} scored${p.frozen ? `, ${p.frozen} held back (frozen)` : ''}`);
  row('dropped', `${p.dropped.display} display, ${p.dropped.features} features, ${p.dropped.risk} risk, ${o.encodeDropped ?? 0} encode, ${o.skipped ?? 0} to slow viewers`);
  row('viewers', String(o.viewers));
  // Per screen: frames sent and skipped (a slow tablet skips frames; it never slows the others).
  for (const c of o.clients || []) {
    const me = S.viewer && c.id === S.viewer.id ? ', this screen' : '';
    row(`· ${c.id}`, `${c.role}${me}: ${c.sent} sent, ${c.skipped} skipped`);
  }
  row('controller', o.controller ? `${o.controller}${S.viewer && o.controller === S.viewer.id ? ' (this screen)' : ''}` : 'nobody');
  const rec = stats.recording;
  if (rec) row('recording', !rec.available ? 'not available' : rec.active ? `${rec.name}` : 'off');
  row('panel', configured(stats.panel));
  row('telemetry', configured(stats.telemetry));
  for (const m of S.models) row('model', `${m.id} v${m.version} (${m.sha256.slice(0, 12)}…)`);
  const d = p.endToEnd.display;
  $('latency').textContent = d && d.count ? `${d.p50.toFixed(0)} ms` : '– ms';
}

function configured(x) {
  if (!x || x.configured === false) return 'not configured';
  return x.state || x.status || 'configured';
}

// ---- Keyboard shortcuts (not while typing in a field) -------------------------------------

document.addEventListener('keydown', (ev) => {
  const t = ev.target;
  if (t && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA')) return;
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const onButton = t && t.tagName === 'BUTTON';
  switch (ev.key) {
    case 'f': case 'F': toggleFreeze(); break;
    case 'o': case 'O': selectTool(S.tool === 'freehand' ? null : 'freehand'); break;
    case 'e': case 'E': selectTool(S.tool === 'ellipse' ? null : 'ellipse'); break;
    case 't': case 'T': selectTool(S.tool === 'tap' ? null : 'tap'); break;
    case '+': case '=': scaleProposal(SCALE_STEP); break;
    case '-': case '_': scaleProposal(1 / SCALE_STEP); break;
    case 'Enter': if (onButton || !S.proposal) return; acceptProposal(); break;
    case 'r': case 'R': selectReferenceTool(!S.referenceTool); break;
    case 'Escape':
      if (S.referenceTool) { selectReferenceTool(false); break; }
      if (cancelDrawing()) say('Outline discarded.', '', 3000);
      break;
    default: return;
  }
  ev.preventDefault();
});

// ---- Start --------------------------------------------------------------------------------

takeTokenFromUrl();
applyState();
renderScores();
renderPerfusion();
connect();
