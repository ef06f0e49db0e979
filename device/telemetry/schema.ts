// The MQTT telemetry payloads, version 1 (docs/telemetry.md): one JSON schema per kind (status,
// telemetry) and per event, and the rule that no patient data leaves the box. The publisher
// checks every payload against both before it is sent or spooled; a payload that fails is
// refused (not sent) and counted. Every schema closes its objects (additionalProperties: false),
// so nothing but the documented fields can travel.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

export const TELEMETRY_FORMAT = 'sonomics.telemetry/v1';

/** A random (version 4) UUID, as crypto.randomUUID() makes: session and boot ids. */
export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** A device id: one MQTT topic level, no wildcards. */
export const DEVICE_ID_PATTERN = '^[A-Za-z0-9._-]{1,64}$';
/** A topic prefix: one or more topic levels, no wildcards, no empty level. */
export const PREFIX_PATTERN = '^[A-Za-z0-9._-]{1,64}(/[A-Za-z0-9._-]{1,64}){0,7}$';

export const EVENT_NAMES = ['session.start', 'session.stop', 'model.loaded', 'tracking.lost', 'tracking.regained', 'score.freeze', 'source.signal'] as const;
export type EventName = (typeof EVENT_NAMES)[number];

export const TRACKING_STATES = ['idle', 'tracking', 'uncertain', 'lost', 'unknown'] as const;
export const SOURCE_KINDS = ['phantom', 'ffmpeg', 'dicom', 'images', 'replay', 'other', 'none'] as const;

/** The kind of a source from its id ("dicom:/path/..." -> "dicom"): never the id itself, which can carry a patient's name. */
export function sourceKind(id: string | undefined): (typeof SOURCE_KINDS)[number] {
  if (!id) return 'none';
  const k = id.split(':')[0];
  return (SOURCE_KINDS as readonly string[]).includes(k) && k !== 'none' ? (k as (typeof SOURCE_KINDS)[number]) : 'other';
}
export const SOURCE_STATES = ['live', 'no signal', 'stopped', 'unknown'] as const;

export interface LatencyFigure { p50: number | null; p99: number | null; max: number | null }
export interface ModelRef { id: string; version: string; sha256: string }

interface Envelope {
  format: typeof TELEMETRY_FORMAT;
  deviceId: string;
  /** Random id of this process run: a consumer sees a restart when it changes. */
  boot: string;
  /** ISO time (UTC) the payload was made. */
  at: string;
}

export interface StatusPayload extends Envelope {
  kind: 'status';
  state: 'online' | 'offline';
  /** birth (connected), shutdown (stopped cleanly), connection lost (the broker's last will). */
  reason: 'birth' | 'shutdown' | 'connection lost';
  software: { product: 'sonomics'; version: string };
  intervalMs: number;
}

export interface TelemetryPayload extends Envelope {
  kind: 'telemetry';
  /** Spool sequence number: increases by one per telemetry or event message, across restarts. */
  seq: number;
  intervalMs: number;
  session: string | null;
  frames: {
    received: number; displayed: number; scored: number; duplicates: number; frozen: number; errors: number;
    dropped: { display: number; features: number; risk: number };
  };
  /** Rates over the last interval (frames per second). */
  fps: { received: number; displayed: number; scored: number };
  latencyMs: {
    display: LatencyFigure; scores: LatencyFigure;
    stages: Record<'layout' | 'track' | 'regions' | 'features' | 'risk' | 'publish', LatencyFigure>;
  };
  /** CPU of this process over the last interval, % of one core (process.cpuUsage). */
  cpu: { percent: number; userPercent: number; systemPercent: number; cores: number; loadavg1: number };
  memory: { rssBytes: number; heapUsedBytes: number; heapTotalBytes: number; externalBytes: number; freeSystemBytes: number };
  source: {
    kind: (typeof SOURCE_KINDS)[number]; state: (typeof SOURCE_STATES)[number]; fps: number | null;
    delivered: number; duplicates: number; gaps: number; dropped: number; restarts: number;
  };
  tracking: { state: (typeof TRACKING_STATES)[number] };
  /** The publisher's own counters (docs/telemetry.md#counters). */
  telemetry: { published: number; spooled: number; spoolBytes: number; dropped: number; refused: number; reconnects: number };
}

export interface ScoreSummary {
  modelId: string; version: string; sha256: string;
  value: number | null; band: [number | null, number | null]; category: string;
  status: 'ok' | 'invalid' | 'incomplete' | 'warming-up'; frames: number;
}

export interface EventData {
  'session.start': { models: ModelRef[]; source: (typeof SOURCE_KINDS)[number] };
  'session.stop': { durationS: number; frames: { received: number; displayed: number; scored: number } };
  'model.loaded': { model: ModelRef };
  'tracking.lost': { frameSeq: number; from: 'tracking' | 'uncertain' };
  'tracking.regained': { frameSeq: number; lostForS: number };
  'score.freeze': { frameSeq: number | null; live: boolean; scores: ScoreSummary[] };
  'source.signal': { state: 'live' | 'no signal' };
}

export interface EventPayload<E extends EventName = EventName> extends Envelope {
  kind: 'event';
  seq: number;
  event: E;
  /** The session the event belongs to (a random UUID), or null outside one. */
  session: string | null;
  data: EventData[E];
}

export type TelemetryMessage = StatusPayload | TelemetryPayload | EventPayload;

// ---- Schemas -----------------------------------------------------------------------------------

const count = { type: 'integer', minimum: 0 } as const;
const nonneg = { type: 'number', minimum: 0 } as const;
const nullableNum = { type: ['number', 'null'] } as const;
const uuid = { type: 'string', pattern: UUID_V4.source } as const;
const iso = { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,3})?Z$' } as const;
const latency = {
  type: 'object', additionalProperties: false, required: ['p50', 'p99', 'max'],
  properties: { p50: nullableNum, p99: nullableNum, max: nullableNum },
} as const;
const modelRef = {
  type: 'object', additionalProperties: false, required: ['id', 'version', 'sha256'],
  properties: {
    id: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' },
    version: { type: 'string', pattern: '^[A-Za-z0-9._+-]{1,32}$' },
    sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
  },
} as const;
const obj = (properties: Record<string, unknown>) => ({ type: 'object', additionalProperties: false, required: Object.keys(properties), properties });

function envelope(kind: string, extra: Record<string, unknown>) {
  return obj({
    format: { const: TELEMETRY_FORMAT },
    kind: { const: kind },
    deviceId: { type: 'string', pattern: DEVICE_ID_PATTERN },
    boot: uuid,
    at: iso,
    ...extra,
  });
}

export const STATUS_SCHEMA = envelope('status', {
  state: { enum: ['online', 'offline'] },
  reason: { enum: ['birth', 'shutdown', 'connection lost'] },
  software: obj({ product: { const: 'sonomics' }, version: { type: 'string', pattern: '^[A-Za-z0-9._+-]{1,32}$' } }),
  intervalMs: { type: 'integer', minimum: 1 },
});

export const TELEMETRY_SCHEMA = envelope('telemetry', {
  seq: count,
  intervalMs: { type: 'integer', minimum: 1 },
  session: { anyOf: [uuid, { type: 'null' }] },
  frames: obj({
    received: count, displayed: count, scored: count, duplicates: count, frozen: count, errors: count,
    dropped: obj({ display: count, features: count, risk: count }),
  }),
  fps: obj({ received: nonneg, displayed: nonneg, scored: nonneg }),
  latencyMs: obj({
    display: latency, scores: latency,
    stages: obj({ layout: latency, track: latency, regions: latency, features: latency, risk: latency, publish: latency }),
  }),
  cpu: obj({ percent: nonneg, userPercent: nonneg, systemPercent: nonneg, cores: { type: 'integer', minimum: 1 }, loadavg1: nonneg }),
  memory: obj({ rssBytes: count, heapUsedBytes: count, heapTotalBytes: count, externalBytes: count, freeSystemBytes: count }),
  source: obj({
    kind: { enum: SOURCE_KINDS }, state: { enum: SOURCE_STATES }, fps: { anyOf: [nonneg, { type: 'null' }] },
    delivered: count, duplicates: count, gaps: count, dropped: count, restarts: count,
  }),
  tracking: obj({ state: { enum: TRACKING_STATES } }),
  telemetry: obj({ published: count, spooled: count, spoolBytes: count, dropped: count, refused: count, reconnects: count }),
});

const scoreSummary = obj({
  modelId: modelRef.properties.id, version: modelRef.properties.version, sha256: modelRef.properties.sha256,
  value: nullableNum, band: { type: 'array', minItems: 2, maxItems: 2, items: nullableNum },
  category: { type: 'string', minLength: 1, maxLength: 64 },
  status: { enum: ['ok', 'invalid', 'incomplete', 'warming-up'] }, frames: count,
});

const EVENT_DATA_SCHEMAS: Record<EventName, object> = {
  'session.start': obj({ models: { type: 'array', maxItems: 16, items: modelRef }, source: { enum: SOURCE_KINDS } }),
  'session.stop': obj({ durationS: nonneg, frames: obj({ received: count, displayed: count, scored: count }) }),
  'model.loaded': obj({ model: modelRef }),
  'tracking.lost': obj({ frameSeq: count, from: { enum: ['tracking', 'uncertain'] } }),
  'tracking.regained': obj({ frameSeq: count, lostForS: nonneg }),
  'score.freeze': obj({ frameSeq: { anyOf: [count, { type: 'null' }] }, live: { type: 'boolean' }, scores: { type: 'array', maxItems: 16, items: scoreSummary } }),
  'source.signal': obj({ state: { enum: ['live', 'no signal'] } }),
};

export const EVENT_SCHEMAS = Object.fromEntries(EVENT_NAMES.map((e) => [e, envelope('event', {
  seq: count,
  event: { const: e },
  session: { anyOf: [uuid, { type: 'null' }] },
  data: EVENT_DATA_SCHEMAS[e],
})])) as Record<EventName, object>;

const ajv = new Ajv({ allErrors: true, strict: true });
const validators = {
  status: ajv.compile(STATUS_SCHEMA),
  telemetry: ajv.compile(TELEMETRY_SCHEMA),
  events: Object.fromEntries(EVENT_NAMES.map((e) => [e, ajv.compile(EVENT_SCHEMAS[e])])) as Record<EventName, ValidateFunction>,
};

function describe(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => {
    const where = e.instancePath || '(payload)';
    if (e.keyword === 'additionalProperties') return `${where}: unknown key "${(e.params as { additionalProperty: string }).additionalProperty}"`;
    return `${where}: ${e.message}`;
  });
}

/** Problems of a payload against its schema (by kind, and for events by event name); [] when it is valid. */
export function schemaProblems(payload: unknown): string[] {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return ['(payload): must be an object'];
  const p = payload as { kind?: unknown; event?: unknown };
  let v: ValidateFunction | undefined;
  if (p.kind === 'status') v = validators.status;
  else if (p.kind === 'telemetry') v = validators.telemetry;
  else if (p.kind === 'event') {
    v = validators.events[p.event as EventName];
    if (!v || !Object.hasOwn(validators.events, p.event as string)) return [`/event: must be one of ${EVENT_NAMES.join(', ')}`];
  } else return ['/kind: must be status, telemetry or event'];
  return v(payload) ? [] : describe(v.errors);
}

// ---- No patient data ---------------------------------------------------------------------------

/** Keys that name patient data (compared lower case, without _ - and spaces). */
const FORBIDDEN_KEYS = new Set([
  'name', 'patient', 'patientname', 'patientid', 'patientsname', 'otherpatientids', 'otherpatientnames', 'patientbirthdate',
  'birthdate', 'dateofbirth', 'dob', 'birthday', 'mrn', 'medicalrecordnumber', 'accession', 'accessionnumber', 'studyid',
  'studyinstanceuid', 'seriesinstanceuid', 'sopinstanceuid', 'patientaddress', 'address', 'phone', 'telephone', 'email',
  'ssn', 'nationalid', 'insurance', 'referringphysician', 'referringphysicianname', 'operator', 'operatorsname', 'institution',
  'clinical', 'age', 'sex', 'gender', 'image', 'images', 'imagedata', 'pixels', 'pixeldata', 'jpeg', 'png', 'thumbnail', 'mask',
  'lesionmask', 'contour', 'contours',
]);
/** Keys whose value must be a random UUID (or null). */
const SESSION_KEYS = new Set(['session', 'sessionid']);
/** A string of base64 / base64url / hex characters this long is a blob (an image, a mask), never a figure. */
const BLOB = /^[A-Za-z0-9+/=_-]{80,}$/;
/** The longest string a payload may hold. */
const MAX_STRING = 128;
/** The longest array (pixel or mask data would be far longer). */
const MAX_ARRAY = 64;
const MAX_DEPTH = 6;
/** The largest payload, serialized. */
export const MAX_PAYLOAD_BYTES = 16 * 1024;

const normalise = (k: string) => k.toLowerCase().replace(/[\s_-]/g, '');

/** Why a string looks like patient data, or undefined. */
function stringProblem(s: string): string | undefined {
  if (BLOB.test(s)) return 'a long base64/hex string (image or binary data)';
  if (s.length > MAX_STRING) return `a string of ${s.length} characters (at most ${MAX_STRING})`;
  if (/^data:/i.test(s)) return 'a data: URL';
  // DICOM person names (PN) separate their components with ^: DOE^JANE.
  if (s.includes('^')) return 'a DICOM person name (contains ^)';
  // DICOM dates (DA, e.g. a birth date) are eight digits.
  if (/^(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$/.test(s)) return 'a DICOM date (YYYYMMDD)';
  // Plain dates without a time (a birth date); our timestamps always carry the time.
  if (/^\d{4}-\d{2}-\d{2}$/.test(s) || /^\d{1,2}[./]\d{1,2}[./]\d{2,4}$/.test(s)) return 'a calendar date without a time (a birth date?)';
  // DICOM UIDs (study, series, instance): dotted numbers with at least five parts, often 1.2.840...
  if (/^\d+(\.\d+){4,}$/.test(s)) return 'a DICOM UID';
  // Tags of the patient module (0010,xxxx), as written by dumps: (0010,0010) or 00100010.
  if (/\(0010,[0-9a-f]{4}\)|\b0010[0-9a-f]{4}\b/i.test(s)) return 'a DICOM patient tag';
  if (/\b(patient|mrn|accession|geburtsdatum|date of birth|birth ?date)\b/i.test(s)) return 'a patient-data word';
  // A file path or a URL can carry a file name made from a patient's name.
  if (/[\\/]/.test(s) && !/^[A-Za-z0-9._-]+\/[A-Za-z0-9._-]+$/.test(s)) return 'a path or URL (file names can carry patient names)';
  if (/@/.test(s)) return 'an e-mail address';
  return undefined;
}

/**
 * Every reason `payload` could carry patient data ([] when it cannot): image or binary data
 * (typed arrays, buffers, long base64 or hex strings, long arrays), keys that name patient data
 * (name, patientId, birthDate, mrn, accession, ...), strings shaped like DICOM patient values
 * (PN with ^, DA dates, UIDs, patient tags), paths, and session ids that are not random UUIDs.
 * Applied by the publisher to every payload before it is spooled or sent, and by the tests to
 * every payload seen on the broker.
 */
export function checkNoPatientData(payload: unknown): string[] {
  const problems: string[] = [];
  const walk = (v: unknown, path: string, depth: number, key: string | undefined): void => {
    if (depth > MAX_DEPTH) { problems.push(`${path}: nested deeper than ${MAX_DEPTH}`); return; }
    if (key !== undefined && SESSION_KEYS.has(normalise(key)) && v !== null && !(typeof v === 'string' && UUID_V4.test(v)))
      problems.push(`${path}: a session id must be a random UUID (got ${typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : typeof v})`);
    if (v === null || typeof v === 'boolean' || typeof v === 'number' || v === undefined) return;
    if (typeof v === 'string') {
      const why = stringProblem(v);
      if (why) problems.push(`${path}: ${why}`);
      return;
    }
    if (typeof v === 'bigint' || typeof v === 'function' || typeof v === 'symbol') { problems.push(`${path}: a ${typeof v}`); return; }
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && v instanceof SharedArrayBuffer)) {
      problems.push(`${path}: binary data (${(v as object).constructor?.name ?? 'buffer'})`);
      return;
    }
    if (Array.isArray(v)) {
      if (v.length > MAX_ARRAY) { problems.push(`${path}: an array of ${v.length} items (at most ${MAX_ARRAY}: pixel or mask data?)`); return; }
      v.forEach((x, i) => walk(x, `${path}/${i}`, depth + 1, undefined));
      return;
    }
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) { problems.push(`${path}: a ${(v as object).constructor?.name ?? 'non-plain'} object`); return; }
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      const p = `${path}/${k}`;
      if (FORBIDDEN_KEYS.has(normalise(k))) problems.push(`${p}: the key "${k}" names patient data`);
      else if (/patient|birth|accession|mrn/i.test(k)) problems.push(`${p}: the key "${k}" names patient data`);
      const why = stringProblem(k);
      if (why && k.length > 0) problems.push(`${p}: key is ${why}`);
      walk(x, p, depth + 1, k);
    }
  };
  walk(payload, '', 0, undefined);
  if (problems.length === 0) {
    let size: number;
    try {
      size = Buffer.byteLength(JSON.stringify(payload) ?? '');
    } catch (e) {
      return [`(payload): cannot be serialized (${(e as Error).message})`];
    }
    if (size > MAX_PAYLOAD_BYTES) problems.push(`(payload): ${size} bytes (at most ${MAX_PAYLOAD_BYTES})`);
  }
  return problems.map((p) => (p.startsWith('/') || p.startsWith('(') ? p : `(payload)${p}`));
}

/** Schema and patient-data problems together ([] when the payload may be published). */
export function payloadProblems(payload: unknown): string[] {
  return [...schemaProblems(payload), ...checkNoPatientData(payload)];
}
