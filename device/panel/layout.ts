// The panel layout (firmware-config/panel-layout.json): buttons and their actions, LEDs, the
// slider, the protocol constants. Checked by firmware-config/panel-layout.schema.json (Ajv) and
// then by the rules a schema cannot say (ids in order, unique names, ranges); every problem names
// its key. The layout hash ties a panel's firmware to the layout it was generated from.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import canonicalize from 'canonicalize';
import { packageRoot } from '../../core/paths.js';
import { MAX_LEDS, MAX_PAYLOAD, MSG, NAK, PROTOCOL_VERSION, type LedMode } from './codec.js';

export const ACTIONS = ['overlay-toggle', 'freeze', 'lock-lesion', 'next-model', 'ring-distance', 'record', 'mark-event'] as const;
export type PanelAction = (typeof ACTIONS)[number];
export const LED_SOURCES = ['tracking', 'frozen', 'recording', 'overlay', 'link'] as const;
export type LedSource = (typeof LED_SOURCES)[number];

export interface PanelButton { id: number; name: string; label?: string; action: PanelAction }
export interface PanelLed { id: number; name: string; label?: string; shows: LedSource }
export interface PanelSlider {
  name?: string;
  label?: string;
  raw: { min: number; max: number };
  controls: 'lock-size-mm' | 'ring-mm';
  min: number;
  max: number;
  step?: number;
  default: number;
}

export interface PanelLayout {
  $schema?: string;
  name: string;
  version: string;
  description?: string;
  usb?: { vendorId: string; productId: string };
  protocol: {
    version: number; baudRate: number; maxPayload: number; heartbeatMs: number; heartbeatTimeoutMs: number;
    messages: Record<string, number>; nakReasons: Record<string, number>;
  };
  buttons: PanelButton[];
  leds: PanelLed[];
  slider: PanelSlider;
  lockLesion?: { aspect?: number };
}

export class PanelLayoutError extends Error {
  constructor(readonly problems: string[], readonly source: string) {
    super(`panel layout ${source}: ${problems.join('; ')}`);
    this.name = 'PanelLayoutError';
  }
}

export const DEFAULT_LAYOUT_PATH = () => join(packageRoot(), 'firmware-config', 'panel-layout.json');
export const LAYOUT_SCHEMA_PATH = () => join(packageRoot(), 'firmware-config', 'panel-layout.schema.json');

let validator: ReturnType<Ajv['compile']> | undefined;
function validate(): ReturnType<Ajv['compile']> {
  if (!validator) {
    const schema = JSON.parse(readFileSync(LAYOUT_SCHEMA_PATH(), 'utf8')) as Record<string, unknown>;
    const ajv = new Ajv({ allErrors: true, strict: true });
    validator = ajv.compile(schema);
  }
  return validator;
}

/** "/buttons/2/action" -> "buttons[2].action". */
function keyOf(path: string): string {
  const k = path.split('/').slice(1).map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`)).join('').replace(/^\./, '');
  return k || '(top level)';
}

function describe(e: ErrorObject): string {
  const key = keyOf(e.instancePath);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': return `${keyOf(`${e.instancePath}/${String(p.additionalProperty)}`)}: unknown key`;
    case 'required': return `${keyOf(`${e.instancePath}/${String(p.missingProperty)}`)}: required`;
    case 'const': return `${key}: must be ${JSON.stringify(p.allowedValue)} (fixed by protocol version ${PROTOCOL_VERSION})`;
    case 'enum': return `${key}: must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    default: return `${key}: ${e.message ?? e.keyword}`;
  }
}

/** Every problem of a parsed layout (empty when it is good). */
export function layoutProblems(input: unknown): string[] {
  const v = validate();
  if (!v(input)) return (v.errors ?? []).map(describe);
  const l = input as PanelLayout;
  const problems: string[] = [];
  const inOrder = (what: 'buttons' | 'leds') => l[what].forEach((x, i) => {
    if (x.id !== i) problems.push(`${what}[${i}].id: must be ${i} (ids run 0, 1, 2, ... in the order listed; the firmware indexes by them)`);
  });
  inOrder('buttons');
  inOrder('leds');
  const unique = (what: string, values: string[]) => values.forEach((v, i) => {
    const j = values.indexOf(v);
    if (j !== i) problems.push(`${what}[${i}]: "${v}" repeats ${what}[${j}]`);
  });
  unique('buttons.name', l.buttons.map((b) => b.name));
  unique('leds.name', l.leds.map((b) => b.name));
  unique('leds.shows', l.leds.map((b) => b.shows));
  if (l.leds.length > MAX_LEDS) problems.push(`leds: at most ${MAX_LEDS}`);
  const s = l.slider;
  if (s.raw.max <= s.raw.min) problems.push(`slider.raw.max: must be greater than slider.raw.min (${s.raw.min})`);
  if (s.max <= s.min) problems.push(`slider.max: must be greater than slider.min (${s.min})`);
  if (s.default < s.min || s.default > s.max) problems.push(`slider.default: must be in [${s.min}, ${s.max}] (got ${s.default})`);
  if (s.step !== undefined && s.step > s.max - s.min) problems.push(`slider.step: must be at most max - min (${s.max - s.min})`);
  if (s.controls === 'lock-size-mm' && s.min <= 0) problems.push('slider.min: a lock size must be > 0 mm');
  const p = l.protocol;
  if (p.heartbeatTimeoutMs < 2 * p.heartbeatMs) problems.push(`protocol.heartbeatTimeoutMs: must be at least twice heartbeatMs (${2 * p.heartbeatMs}), or one late heartbeat drops the panel`);
  return problems;
}

/** A checked layout from a parsed object; throws a PanelLayoutError listing every problem. */
export function parsePanelLayout(input: unknown, source = 'layout'): PanelLayout {
  const problems = layoutProblems(input);
  if (problems.length) throw new PanelLayoutError(problems, source);
  return input as PanelLayout;
}

/** Reads and checks a layout file (default: the package's firmware-config/panel-layout.json). */
export function loadPanelLayout(path = DEFAULT_LAYOUT_PATH()): PanelLayout {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new PanelLayoutError([`cannot read it: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`], path);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new PanelLayoutError([`not valid JSON: ${(e as Error).message}`], path);
  }
  return parsePanelLayout(parsed, path);
}

/**
 * The layout's 32-bit hash: the first 4 bytes (big-endian) of the sha256 of its canonical JSON
 * (RFC 8785) without "$schema". The firmware carries it (PANEL_LAYOUT_HASH) and sends it in
 * HELLO, so a panel built from another layout is recognised.
 */
export function layoutHash(l: PanelLayout): number {
  const { $schema: _schema, ...rest } = l;
  return createHash('sha256').update(canonicalize(rest) ?? '').digest().readUInt32BE(0);
}

export const hex32 = (h: number) => h.toString(16).padStart(8, '0');

/** The protocol constants the layout names, as this sonomics speaks them (the schema pins them; this is what the generator writes). */
export const PROTOCOL_CONSTANTS = { version: PROTOCOL_VERSION, maxPayload: MAX_PAYLOAD, messages: { ...MSG }, nakReasons: { ...NAK } };

/** The slider's value (in its unit) for a raw reading, clamped and rounded to its step. */
export function sliderValue(s: PanelSlider, raw: number): number {
  const f = Math.min(1, Math.max(0, (raw - s.raw.min) / (s.raw.max - s.raw.min)));
  let v = s.min + f * (s.max - s.min);
  if (s.step) v = s.min + Math.round((v - s.min) / s.step) * s.step;
  return Math.min(s.max, Math.max(s.min, Number(v.toFixed(6))));
}

/** The raw reading that gives this value (the inverse of sliderValue, rounded). */
export function sliderRaw(s: PanelSlider, value: number): number {
  const f = Math.min(1, Math.max(0, (value - s.min) / (s.max - s.min)));
  return Math.round(s.raw.min + f * (s.raw.max - s.raw.min));
}

export type LedState = Record<string, LedMode>;
