// The overlay WebSocket protocol, version 1 (docs/overlay-protocol.md).
// Server -> page:
//   text  {type:'hello', v, notice, layout, ringsMm, models}
//   binary video frame: [uint32 LE header length][header JSON = OverlayHeader][JPEG bytes]
//          (picture and overlay travel in one message, so the contour is always drawn on its frame)
//   text  {type:'scores', v, seq, live, reason?, trackingState, scores}
//   text  {type:'status', v, stats}
//   text  {type:'error', v, error}
// Page -> server (text JSON; each gets one reply to the sender, and the connection stays open):
//   {type:'ping'}                          -> {type:'pong', v}
//   {type:'lock', polygon:[x0,y0,x1,y1,...]} -> {type:'locked', v, shape:'polygon', points:N, area}
//          outline in B-mode pane pixel coordinates (an integer names a pixel centre), 3..1024
//          points, closed implicitly; filled by core/mask.ts polygonMask, then pipeline.lockLesion:
//          tracking (re)starts from it on the next frame processed
//   {type:'lock', ellipse:{cx,cy,rx,ry}}     -> {type:'locked', v, shape:'ellipse', area}
//          axis-aligned ellipse, pixels, same coordinates (core/mask.ts ellipseMask)
//   bad input (a lock with a wrong field, unknown type, non-JSON, binary)
//                                          -> {type:'error', v, error} naming the field and the
//          problem; nothing changes (server.ts checkLockMessage and the mask builders)
import type { DisplayFrame, ScoreUpdate } from '../core/pipeline.js';
import type { Layout } from '../core/layout.js';
import { DECISION_SUPPORT_NOTICE } from '../core/modelcard.js';
import type { RiskModel } from '../core/risk.js';

export const PROTOCOL_VERSION = 1;

export interface OverlayHeader {
  type: 'frame';
  v: number;
  seq: number;
  width: number;
  height: number;
  captureMs: number;
  /** reason: why the state is not 'tracking' (null when tracking or idle). */
  tracking: { state: string; reason: string | null; confidence: number; center: { x: number; y: number } | null; scale: number };
  /** Contours in pane coordinates: [x0, y0, x1, y1, ...]. Drawn on both panes. */
  lesion: number[] | null;
  rings: Array<{ mm: number; contour: number[] }>;
}

export function helloMessage(layout: Layout, ringsMm: readonly number[], models: readonly RiskModel[]) {
  return {
    type: 'hello', v: PROTOCOL_VERSION, notice: DECISION_SUPPORT_NOTICE,
    layout: { width: layout.width, height: layout.height, panes: { bmode: layout.panes.bmode, contrast: layout.panes.contrast } },
    ringsMm,
    models: models.map(({ card: c }) => ({
      id: c.id, version: c.version, sha256: c.sha256, task: c.task, intendedUse: c.intendedUse, researchUseOnly: c.researchUseOnly ?? false,
      link: c.link, categories: c.categories, performance: c.performance ?? null,
      /** Only radiomics terms: the linear predictor is the Rad-score. */
      radScore: !c.inputs.clinical?.length && !c.inputs.deep,
      clinical: (c.inputs.clinical ?? []).map((v) => ({ name: v.name, type: v.type, unit: v.unit ?? null, range: v.range ?? null, levels: v.levels ?? null, source: v.source })),
    })),
  };
}

export function overlayHeader(d: DisplayFrame): OverlayHeader {
  const t = d.track;
  const ok = t.state !== 'idle';
  return {
    type: 'frame', v: PROTOCOL_VERSION, seq: d.frame.seq, width: d.frame.width, height: d.frame.height, captureMs: d.frame.timestampMs,
    tracking: { state: t.state, reason: t.reason ?? null, confidence: round(t.confidence, 4), center: ok ? { x: round(t.center.x, 2), y: round(t.center.y, 2) } : null, scale: round(t.scale, 4) },
    lesion: d.contours ? Array.from(d.contours.lesion) : null,
    rings: d.contours ? d.contours.ringsMm.map((mm, k) => ({ mm, contour: Array.from(d.contours!.rings[k]) })) : [],
  };
}

export function scoresMessage(u: ScoreUpdate) {
  return {
    type: 'scores', v: PROTOCOL_VERSION, seq: u.seq, live: u.live, reason: u.reason ?? null, trackingState: u.trackingState,
    scores: u.scores.map((s) => ({ ...s, value: finite(s.value), linearPredictor: finite(s.linearPredictor), cutoff: finite(s.cutoff), band: s.band.map(finite), drivers: s.drivers.map((d) => ({ feature: d.feature, contribution: round(d.contribution, 4) })) })),
  };
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Number.isFinite(v) ? Math.round(v * f) / f : 0;
}
function finite(v: number): number | null { return Number.isFinite(v) ? v : null; }

/** Encodes a binary video message. */
export function encodeFrameMessage(header: OverlayHeader, jpeg: Uint8Array): Buffer {
  const h = Buffer.from(JSON.stringify(header), 'utf8');
  const out = Buffer.allocUnsafe(4 + h.length + jpeg.length);
  out.writeUInt32LE(h.length, 0);
  h.copy(out, 4);
  out.set(jpeg, 4 + h.length);
  return out;
}

export function decodeFrameMessage(buf: Uint8Array): { header: OverlayHeader; jpeg: Uint8Array } {
  if (buf.length < 4) throw new Error('frame message shorter than its length prefix');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = view.getUint32(0, true);
  if (4 + n > buf.length) throw new Error('frame message header runs past the end');
  const header = JSON.parse(new TextDecoder().decode(buf.subarray(4, 4 + n))) as OverlayHeader;
  return { header, jpeg: buf.subarray(4 + n) };
}
