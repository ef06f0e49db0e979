// The overlay WebSocket protocol, version 3 (docs/overlay-protocol.md). Every message both ways
// has a JSON schema here: the server checks what a page sends against PAGE_MESSAGE_SCHEMA (an
// error reply names the field and the problem) and what it sends itself against
// SERVER_MESSAGE_SCHEMA (a message that fails is a bug: it is not sent, and counted).
//
// Server -> page
//   text   hello   {v, notice, viewer, layout, ringsMm, models, state}
//   binary frame   [uint32 LE header length][header JSON = OverlayHeader][JPEG]: picture and
//                  overlay travel in one message, so a contour is always drawn on its own frame
//   text   scores  {v, seq, live, reason, trackingState, scores}
//   text   perfusion {v, notice, state, message, ..., curve, fit, regions, phases}   after each analysis (~1 s)
//   text   state   {v, state}      after every change, to every viewer
//   text   event   {v, event}      a marked event, to every viewer
//   text   status  {v, stats}      every second
//   text   ack     {v, re, id?, ...result}   the reply to a page message that was carried out
//   text   error   {v, re, id?, error}       the reply to one that was not; nothing changed
// Page -> server (text JSON; each gets exactly one reply, and the connection stays open):
//   ping, control, layers, models, freeze, lock, clinical, record, mark, reference, perfusion, segment, proposal
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { DisplayFrame, ScoreUpdate } from '../core/pipeline.js';
import type { PerfusionAnalyzer, PerfusionUpdate } from '../core/perfusion/analyzer.js';
import { PARAMETER_NAMES } from '../core/perfusion/parameters.js';
import type { Layout } from '../core/layout.js';
import { DECISION_SUPPORT_NOTICE } from '../core/modelcard.js';
import type { RiskModel } from '../core/risk.js';

export const PROTOCOL_VERSION = 3;
/** The WebSocket subprotocol a page asks for; a token may ride along as a second one ("bearer.<token>"). */
export const SUBPROTOCOL = 'sonomics.v3';

export const LAYERS = ['contour', 'rings', 'scores', 'tic'] as const;
export type LayerName = (typeof LAYERS)[number];
export type Layers = Record<LayerName, boolean>;

export interface RecordingState {
  /** False when the command serving the overlay cannot record (no recorder configured). */
  available: boolean;
  active: boolean;
  /** The recording's folder name while active. */
  name: string | null;
  /** ISO time the recording started. */
  since: string | null;
}

/** What every viewer sees the same way; sent in hello and after every change. */
export interface OverlayState {
  frozen: boolean;
  /** The frame held on screen while frozen. */
  frozenSeq: number | null;
  layers: Layers;
  /** Ids of the models scored and shown, in card order. */
  models: string[];
  /** The viewer that may change state, or null. */
  controller: string | null;
  /** Clinical inputs as entered, by card variable name. */
  clinical: Record<string, number | boolean | string>;
  recording: RecordingState;
  /** The ring (mm, one of ringsMm) the touch panel highlights; null: all drawn alike. */
  ring: number | null;
}

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
  /** True for the frame held on screen while frozen (re-sent when a lock changes its outline). */
  frozen: boolean;
  /** The perfusion reference disc on this frame (pane coordinates, radius mm), when placed. */
  reference: { x: number; y: number; radiusMm: number } | null;
}

// ---- Page -> server -------------------------------------------------------------------------

export type PageMessage =
  | { type: 'ping'; id?: string }
  | { type: 'control'; id?: string; action: 'take' | 'release'; force?: boolean }
  | { type: 'layers'; id?: string; layers: Partial<Layers> }
  | { type: 'models'; id?: string; enabled: string[] }
  | { type: 'freeze'; id?: string; frozen: boolean }
  | { type: 'lock'; id?: string; polygon?: number[]; ellipse?: { cx: number; cy: number; rx: number; ry: number } }
  | { type: 'segment'; id?: string; x?: number; y?: number; box?: { x0: number; y0: number; x1: number; y1: number } }
  | { type: 'proposal'; id?: string; action: 'grow' | 'shrink' | 'accept' | 'discard' }
  | { type: 'clinical'; id?: string; values: Record<string, number | boolean | string | null> }
  | { type: 'record'; id?: string; action: 'start' | 'stop' }
  | { type: 'mark'; id?: string; label?: string }
  | { type: 'reference'; id?: string; x?: number; y?: number; radiusMm?: number; seq?: number; clear?: true }
  | { type: 'perfusion'; id?: string; action: 'reset' };

export const PAGE_MESSAGE_TYPES = ['ping', 'control', 'layers', 'models', 'freeze', 'lock', 'clinical', 'record', 'mark', 'reference', 'perfusion', 'segment', 'proposal'] as const;

const requestId = { type: 'string', maxLength: 64, description: 'echoed in the reply' };
const page = (type: string, properties: Record<string, unknown>, required: string[] = [], extra: Record<string, unknown> = {}) => ({
  type: 'object', required: ['type', ...required], additionalProperties: false,
  properties: { type: { const: type }, id: requestId, ...properties }, ...extra,
});
const finiteNumber = { type: 'number' };

export const PAGE_MESSAGE_SCHEMA = {
  $id: 'sonomics-overlay-page-message-v3',
  type: 'object', required: ['type'], discriminator: { propertyName: 'type' },
  oneOf: [
    page('ping', {}),
    page('control', { action: { enum: ['take', 'release'] }, force: { type: 'boolean' } }, ['action']),
    page('layers', {
      layers: { type: 'object', minProperties: 1, additionalProperties: false, properties: Object.fromEntries(LAYERS.map((l) => [l, { type: 'boolean' }])) },
    }, ['layers']),
    page('models', { enabled: { type: 'array', maxItems: 64, uniqueItems: true, items: { type: 'string', maxLength: 128 } } }, ['enabled']),
    page('freeze', { frozen: { type: 'boolean' } }, ['frozen']),
    page('lock', {
      // Counts, finiteness and geometry are checked by the mask builders (core/mask.ts).
      polygon: { type: 'array', items: finiteNumber },
      ellipse: {
        type: 'object', required: ['cx', 'cy', 'rx', 'ry'], additionalProperties: false,
        properties: { cx: finiteNumber, cy: finiteNumber, rx: finiteNumber, ry: finiteNumber },
      },
    }, [], { oneOf: [{ required: ['polygon'] }, { required: ['ellipse'] }], description: 'one of "polygon" or "ellipse"' }),
    page('clinical', {
      values: {
        type: 'object', minProperties: 1, maxProperties: 64, propertyNames: { maxLength: 64 },
        additionalProperties: {
          anyOf: [{ type: 'number' }, { type: 'boolean' }, { type: 'string', maxLength: 64 }, { type: 'null' }],
          description: 'a number, true/false, a level name (up to 64 characters), or null to clear',
        },
      },
    }, ['values']),
    page('record', { action: { enum: ['start', 'stop'] } }, ['action']),
    page('mark', { label: { type: 'string', maxLength: 120 } }),
    page('reference', {
      // Pane coordinates (pixels) of the frame shown (seq: that frame's, so the disc is anchored to
      // its lesion); the pipeline checks they lie on the pane.
      x: finiteNumber, y: finiteNumber, radiusMm: { type: 'number', minimum: 0.5, maximum: 20 }, seq: { type: 'integer', minimum: 0 }, clear: { const: true },
    }, [], { oneOf: [{ required: ['x', 'y', 'radiusMm'] }, { required: ['clear'] }], description: 'either "x", "y" and "radiusMm", or "clear": true' }),
    page('perfusion', { action: { enum: ['reset'] } }, ['action']),
    page('segment', {
      // B-mode pane coordinates (pixels) of the frame shown: a tap inside the lesion, or a rough box.
      x: finiteNumber, y: finiteNumber,
      box: { type: 'object', required: ['x0', 'y0', 'x1', 'y1'], additionalProperties: false, properties: { x0: finiteNumber, y0: finiteNumber, x1: finiteNumber, y1: finiteNumber } },
    }, [], { oneOf: [{ required: ['x', 'y'] }, { required: ['box'] }], description: 'either "x" and "y" (a tap), or "box"' }),
    page('proposal', { action: { enum: ['grow', 'shrink', 'accept', 'discard'] } }, ['action']),
  ],
} as const;

// ---- Server -> page -------------------------------------------------------------------------

const nullable = (s: Record<string, unknown>) => ({ anyOf: [s, { type: 'null' }] });
const num = { type: 'number' };
const str = { type: 'string' };
const int = { type: 'integer' };
const bool = { type: 'boolean' };
const contour = { type: 'array', items: num };
const closed = (properties: Record<string, unknown>, required = Object.keys(properties)) => ({ type: 'object', required, additionalProperties: false, properties });
const server = (type: string, properties: Record<string, unknown>, required = Object.keys(properties)) =>
  closed({ type: { const: type }, v: { const: PROTOCOL_VERSION }, ...properties }, ['type', 'v', ...required]);

const rect = closed({ x: int, y: int, width: int, height: int });
const pane = { type: 'object', required: ['name', 'rect', 'spacingX', 'spacingY'], properties: { name: str, rect, spacingX: num, spacingY: num } };
const layersSchema = closed(Object.fromEntries(LAYERS.map((l) => [l, bool])));
const stateSchema = closed({
  frozen: bool, frozenSeq: nullable(int), layers: layersSchema, models: { type: 'array', items: str }, controller: nullable(str),
  clinical: { type: 'object', additionalProperties: { anyOf: [num, bool, str] } },
  recording: closed({ available: bool, active: bool, name: nullable(str), since: nullable(str) }),
  ring: nullable(num),
});
const scoreSchema = {
  type: 'object', additionalProperties: false,
  required: ['modelId', 'version', 'cardSha256', 'task', 'link', 'value', 'band', 'linearPredictor', 'category', 'cutoffs', 'cutoff', 'drivers', 'status', 'frames', 'seq', 'researchUseOnly', 'notice'],
  properties: {
    modelId: str, version: str, cardSha256: { type: 'string', pattern: '^[0-9a-f]{64}$' }, task: str, link: { enum: ['logistic', 'cox'] },
    value: nullable(num), band: { type: 'array', minItems: 2, maxItems: 2, items: nullable(num) }, linearPredictor: nullable(num),
    frameBand: { type: 'array', minItems: 2, maxItems: 2, items: nullable(num) },
    maskBand: closed({ radiusPx: num, shrunk: nullable(num), grown: nullable(num) }),
    category: str, cutoffs: { type: 'array', items: num }, cutoff: nullable(num),
    drivers: { type: 'array', items: closed({ feature: str, contribution: num }) },
    status: { enum: ['ok', 'warming-up', 'incomplete', 'invalid'] }, problem: str, missing: { type: 'array', items: str },
    frames: int, seq: int, researchUseOnly: bool, notice: { const: DECISION_SUPPORT_NOTICE },
  },
};
const nums = { type: 'array', items: num };
const nullableNums = { type: 'array', items: nullable(num) };
const perfusionState = { enum: ['too-few-frames', 'no-wash-in', 'rising', 'saturated', 'poor-fit', 'fitted'] };
const perfusionRegionSchema = closed({
  name: str, state: perfusionState, message: str, n: int, arrivalS: nullable(num),
  rSquared: closed({ lognormal: nullable(num), gammaVariate: nullable(num) }),
  parameters: nullable(closed(Object.fromEntries(PARAMETER_NAMES.map((p) => [p, num])))),
  relative: nullable({ type: 'object', additionalProperties: nullable(num) }),
});
const windowSchema = { type: 'array', minItems: 2, maxItems: 2, items: nullable(num), description: '[start, end] s; end null = open' };
const modelSchema = closed({
  id: str, version: str, sha256: str, task: str, intendedUse: str, researchUseOnly: bool, link: { enum: ['logistic', 'cox'] },
  categories: { type: 'object' }, performance: nullable({ type: 'object' }), radScore: bool,
  clinical: {
    type: 'array',
    items: closed({
      name: str, type: { enum: ['number', 'integer', 'boolean', 'category'] }, unit: nullable(str),
      range: nullable({ type: 'array', items: num }), levels: nullable({ type: 'array', items: str }), source: { enum: ['overlay', 'panel', 'api'] },
    }),
  },
});
/**
 * Machine-readable kinds of refusal, for the page to act on (the `error` text is for people):
 * `no-proposal`: the server holds no proposal for this page (none made, or dropped with the
 * frame it was made on).
 */
export const REFUSAL_CODES = ['no-proposal'] as const;
export type RefusalCode = (typeof REFUSAL_CODES)[number];

const replyBase = { re: nullable({ enum: [...PAGE_MESSAGE_TYPES] }), id: str };

export const FRAME_HEADER_SCHEMA = closed({
  type: { const: 'frame' }, v: { const: PROTOCOL_VERSION }, seq: int, width: int, height: int, captureMs: num,
  tracking: closed({ state: { enum: ['idle', 'tracking', 'uncertain', 'lost'] }, reason: nullable(str), confidence: num, center: nullable(closed({ x: num, y: num })), scale: num }),
  lesion: nullable(contour), rings: { type: 'array', items: closed({ mm: num, contour }) }, frozen: bool,
  reference: nullable(closed({ x: num, y: num, radiusMm: num })),
});

export const SERVER_MESSAGE_SCHEMA = {
  $id: 'sonomics-overlay-server-message-v3',
  type: 'object', required: ['type'], discriminator: { propertyName: 'type' },
  oneOf: [
    server('hello', {
      notice: { const: DECISION_SUPPORT_NOTICE },
      viewer: closed({ id: str, role: { enum: ['controller', 'viewer'] } }),
      layout: closed({ width: int, height: int, panes: closed({ bmode: pane, contrast: pane }) }),
      ringsMm: { type: 'array', items: num }, models: { type: 'array', items: modelSchema }, state: stateSchema,
      segmenter: nullable(closed({ id: str, version: str })),
    }),
    server('scores', {
      seq: int, live: bool, reason: nullable(str), trackingState: { enum: ['idle', 'tracking', 'uncertain', 'lost'] },
      scores: { type: 'array', items: scoreSchema },
    }),
    server('perfusion', {
      notice: { const: DECISION_SUPPORT_NOTICE }, state: perfusionState, message: str, model: { enum: ['lognormal', 'gammaVariate'] },
      units: str, durationS: num,
      counts: closed({ samples: int, uncertain: int, lost: int, idle: int, skippedAnalyses: int, analyses: int, decimations: int }),
      curve: closed({ t: nums, series: { type: 'object', additionalProperties: nullableNums } }),
      fit: nullable(closed({ t: nums, series: { type: 'object', additionalProperties: nums } })),
      regions: { type: 'array', items: perfusionRegionSchema },
      phases: nullable(closed({ pre: windowSchema, early: windowSchema, peak: windowSchema, late: windowSchema })),
    }),
    server('state', { state: stateSchema }),
    server('event', { event: closed({ kind: { const: 'mark' }, label: str, seq: nullable(int), at: str, by: str }) }),
    server('status', { stats: { type: 'object', required: ['pipeline', 'overlay'] } }),
    server('ack', { ...replyBase, result: { type: 'object' } }, ['re', 'result']),
    server('error', { ...replyBase, error: str, code: { enum: [...REFUSAL_CODES] } }, ['re', 'error']),
  ],
};

// ---- Validation -----------------------------------------------------------------------------

const ajv = new Ajv({ allErrors: true, discriminator: true, strict: true, strictRequired: false, verbose: true });
const validatePage = ajv.compile<PageMessage>(PAGE_MESSAGE_SCHEMA);
const validateServer = ajv.compile(SERVER_MESSAGE_SCHEMA);
const validateHeader = ajv.compile<OverlayHeader>(FRAME_HEADER_SCHEMA);

function kindOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'number' && !Number.isFinite(v) ? String(v) : typeof v;
}

const ARTICLE: Record<string, string> = { array: 'an array', object: 'an object', integer: 'an integer' };

const MAX_PROBLEMS = 3;

/** One readable line per problem (the first few): the field as a path (lock.polygon[2], clinical.values.age) and what is wrong. */
export function describeErrors(type: string, errors: readonly ErrorObject[]): string[] {
  const path = (p: string) => type + p.replace(/\/(\d+)(?=\/|$)/g, '[$1]').replace(/\//g, '.');
  // Branch failures inside a oneOf/anyOf are summed up by the oneOf/anyOf error itself.
  const branches = errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf').map((e) => `${e.schemaPath}/`);
  const out: string[] = [];
  for (const e of errors) {
    if (branches.some((b) => e.schemaPath.startsWith(b))) continue;
    const at = path(e.instancePath);
    const p = e.params as Record<string, unknown>;
    switch (e.keyword) {
      case 'type': {
        const t = String(p.type);
        const nonFinite = t === 'number' && typeof e.data === 'number';
        out.push(`${at} must be ${nonFinite ? 'a finite number' : ARTICLE[t] ?? `a ${t}`} (got ${kindOf(e.data)})`);
        break;
      }
      case 'minProperties': out.push(`${at} must name at least ${String(p.limit)} field${p.limit === 1 ? '' : 's'}`); break;
      case 'maxProperties': out.push(`${at} may name at most ${String(p.limit)} fields`); break;
      case 'maxLength': out.push(`${at} must be at most ${String(p.limit)} characters (got ${String((e.data as string).length)})`); break;
      case 'maxItems': out.push(`${at} may have at most ${String(p.limit)} items`); break;
      case 'uniqueItems': out.push(`${at} must not repeat an item (items ${Math.min(Number(p.i), Number(p.j))} and ${Math.max(Number(p.i), Number(p.j))} are the same)`); break;
      case 'required': out.push(`${at}.${String(p.missingProperty)} is required`); break;
      case 'additionalProperties': out.push(`${at}: unknown field "${String(p.additionalProperty).slice(0, 40)}"`); break;
      case 'enum': out.push(`${at} must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')} (got ${JSON.stringify(e.data)?.slice(0, 40)})`); break;
      case 'oneOf':
      case 'anyOf': {
        const d = (e.parentSchema as { description?: string }).description ?? 'one of the allowed forms';
        const both = e.keyword === 'oneOf' && Array.isArray(p.passingSchemas);
        out.push(`${at} ${both ? 'takes' : e.keyword === 'oneOf' ? 'needs' : 'must be'} ${d}${both ? ', not both' : ''}`);
        break;
      }
      default: out.push(`${at}: ${e.message}`);
    }
  }
  return out.length > MAX_PROBLEMS ? [...out.slice(0, MAX_PROBLEMS), `(and ${out.length - MAX_PROBLEMS} more)`] : out;
}

export type PageParse = { ok: true; msg: PageMessage } | { ok: false; re: PageMessage['type'] | null; id?: string; error: string };

/** Parses and checks one text message from a page. */
export function parsePageMessage(text: string): PageParse {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return { ok: false, re: null, error: 'message is not valid JSON' };
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg) || typeof (msg as { type?: unknown }).type !== 'string')
    return { ok: false, re: null, error: 'message must be an object with a string "type"' };
  const o = msg as { type: string; id?: unknown };
  const id = typeof o.id === 'string' && o.id.length <= 64 ? o.id : undefined;
  if (!(PAGE_MESSAGE_TYPES as readonly string[]).includes(o.type))
    return { ok: false, re: null, id, error: `unknown message type "${o.type.slice(0, 40)}" (known: ${PAGE_MESSAGE_TYPES.join(', ')})` };
  const re = o.type as PageMessage['type'];
  if (!validatePage(msg)) return { ok: false, re, id, error: describeErrors(re, validatePage.errors ?? []).join('; ') };
  return { ok: true, msg: msg as PageMessage };
}

/** The schema problems of a message the server is about to send ([] when it is good). */
export function serverMessageProblems(msg: unknown): string[] {
  const type = String((msg as { type?: unknown }).type);
  const check: ValidateFunction = type === 'frame' ? validateHeader : validateServer;
  return check(msg) ? [] : describeErrors(type, check.errors ?? []);
}

// ---- Builders -------------------------------------------------------------------------------

export function helloMessage(layout: Layout, ringsMm: readonly number[], models: readonly RiskModel[], viewer: { id: string; role: 'controller' | 'viewer' }, state: OverlayState,
  segmenter: { id: string; version: string } | null) {
  return {
    type: 'hello', v: PROTOCOL_VERSION, notice: DECISION_SUPPORT_NOTICE, viewer,
    layout: { width: layout.width, height: layout.height, panes: { bmode: layout.panes.bmode, contrast: layout.panes.contrast } },
    ringsMm,
    models: models.map(({ card: c }) => ({
      id: c.id, version: c.version, sha256: c.sha256, task: c.task, intendedUse: c.intendedUse, researchUseOnly: c.researchUseOnly ?? false,
      link: c.link, categories: c.categories, performance: c.performance ?? null,
      /** Only radiomics terms: the linear predictor is the Rad-score. */
      radScore: !c.inputs.clinical?.length && !c.inputs.deep,
      clinical: (c.inputs.clinical ?? []).map((v) => ({ name: v.name, type: v.type, unit: v.unit ?? null, range: v.range ?? null, levels: v.levels ?? null, source: v.source })),
    })),
    state,
    segmenter,
  };
}

export function overlayHeader(d: DisplayFrame, frozen = false): OverlayHeader {
  const t = d.track;
  const ok = t.state !== 'idle';
  return {
    type: 'frame', v: PROTOCOL_VERSION, seq: d.frame.seq, width: d.frame.width, height: d.frame.height, captureMs: d.frame.timestampMs,
    tracking: { state: t.state, reason: t.reason ?? null, confidence: round(t.confidence, 4), center: ok ? { x: round(t.center.x, 2), y: round(t.center.y, 2) } : null, scale: round(t.scale, 4) },
    lesion: d.contours ? Array.from(d.contours.lesion) : null,
    rings: d.contours ? d.contours.ringsMm.map((mm, k) => ({ mm, contour: Array.from(d.contours!.rings[k]) })) : [],
    frozen,
    reference: d.reference ? { x: round(d.reference.x, 2), y: round(d.reference.y, 2), radiusMm: d.reference.radiusMm } : null,
  };
}

export function scoresMessage(u: ScoreUpdate) {
  return {
    type: 'scores', v: PROTOCOL_VERSION, seq: u.seq, live: u.live, reason: u.reason ?? null, trackingState: u.trackingState,
    scores: u.scores.map((s) => ({ ...s, value: finite(s.value), linearPredictor: finite(s.linearPredictor), cutoff: finite(s.cutoff), band: s.band.map(finite),
      ...(s.frameBand && { frameBand: s.frameBand.map(finite) }),
      ...(s.maskBand && { maskBand: { radiusPx: s.maskBand.radiusPx, shrunk: finite(s.maskBand.shrunk), grown: finite(s.maskBand.grown) } }), drivers: s.drivers.map((d) => ({ feature: d.feature, contribution: round(d.contribution, 4) })) })),
  };
}

/** Finite numbers as they are, anything else (NaN, ±Infinity) as null: JSON has no such numbers. */
const orNull = (v: number) => (Number.isFinite(v) ? v : null);
/** Five significant digits: the chart and table need no more, and the message is a third of the size. */
const sig = (v: number | null) => (v === null || !Number.isFinite(v) ? null : Number(v.toPrecision(5)));

/**
 * The perfusion message after an analysis: the session's curve (at most curvePoints samples), the
 * chosen model's fitted curves, per region its state, fit quality, parameters and relative
 * parameters, and the lesion's phases.
 */
export function perfusionMessage(u: PerfusionUpdate, analyzer: PerfusionAnalyzer, curvePoints = 600) {
  const a = u.analysis;
  const c = analyzer.curves(curvePoints);
  const { decimations, ...counts } = u.counts;
  return {
    type: 'perfusion', v: PROTOCOL_VERSION, notice: DECISION_SUPPORT_NOTICE, state: a.state, message: a.message, model: a.model,
    units: analyzer.linearisation ? 'linearised echo power (a.u.)' : 'display gray level', durationS: a.durationS,
    counts: { ...counts, decimations },
    curve: { t: c.t.map((x) => round(x, 3)), series: Object.fromEntries(Object.entries(c.series).map(([k, v]) => [k, v.map(sig)])) },
    fit: a.curves && { t: a.curves.t.map((x) => round(x, 3)), series: Object.fromEntries(Object.entries(a.curves.series).map(([k, v]) => [k, v.map((x) => sig(x) ?? 0)])) },
    regions: a.regions.map((r) => ({
      name: r.name, state: r.state, message: r.message, n: r.n, arrivalS: r.arrivalS === null ? null : orNull(r.arrivalS),
      rSquared: { lognormal: r.fits.lognormal ? orNull(r.fits.lognormal.rSquared) : null, gammaVariate: r.fits.gammaVariate ? orNull(r.fits.gammaVariate.rSquared) : null },
      parameters: r.parameters && Object.fromEntries(PARAMETER_NAMES.map((p) => [p, r.parameters![p]])),
      relative: r.relative,
    })),
    phases: a.phases && Object.fromEntries(Object.entries(a.phases).map(([k, w]) => [k, (w as number[]).map(orNull)])),
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
