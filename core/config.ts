// The one config file (JSON or YAML), validated by a schema with defaults so the demo needs
// none. Errors name the key and the reason.
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { PROFILE_NAME_PATTERN, profileProblems, type LayoutProfile } from './profile.js';
import { TRACKER_DEFAULTS, type TrackerOptions } from './tracking.js';

export interface SonomicsConfig {
  source: {
    type: 'phantom' | 'capture' | 'dicom' | 'replay';
    /** Layout profile (a key of `layouts`) for sources that do not know their screen layout. */
    layout?: string;
    phantom: { seed: number; width: number; height: number; fps: number; depthMm: number };
    capture: {
      input: string; format?: string; pixelFormat?: string; width?: number; height?: number; fps?: number; inputOptions: string[];
      colour: boolean; ffmpegPath: string; restartInitialMs: number; restartMaxMs: number; stallMs?: number;
    };
    dicom: { path?: string; loop: boolean };
    replay: { path?: string; speed: number };
    duplicates: { enabled: boolean; threshold: number; blockSize: number };
  };
  pipeline: {
    ringsMm: number[];
    binWidth: number;
    featureThreads: number;
    /** Tracker settings; what is left out takes the defaults of core/tracking.ts (docs/tracking.md). */
    tracker: TrackerOptions;
    scoreWindow: number;
  };
  /** Model card files: a path that exists (absolute or from the current folder), else a card in the package's models/ folder. */
  models: string[];
  /** The one-tap segmenter (docs/segmentation.md): tap to outline on the overlay, the panel's lock. */
  segmenter: { enabled: boolean; dir?: string };
  overlay: {
    host: string; port: number; jpegQuality: number; maxBufferedBytes: number;
    /** A file holding the access token (the token itself never goes in the config). */
    tokenFile?: string;
    /** TLS certificate chain and private key files (PEM): the overlay is then served over https/wss. */
    tls?: { cert: string; key: string };
    /** More origins (scheme://host:port) whose pages may open the socket, besides the server's own. */
    allowedOrigins: string[];
    /** Messages from each page: a token bucket of `burst` refilled at `perSecond`. */
    controlRate: { perSecond: number; burst: number };
  };
  /** The append-only audit log of every state change. */
  audit: { path: string };
  /** Recordings started from the overlay go here, one NAME.sonrec folder each. */
  recording: { dir: string };
  /** MQTT telemetry to the hospital's broker (docs/telemetry.md); off without a url (`--mqtt URL` sets it). */
  telemetry: {
    url?: string;
    /** Default: the host name (device/telemetry defaultDeviceId). */
    deviceId?: string;
    prefix: string;
    intervalMs: number;
    /** PEM files: the broker's CA, the box's client certificate and key. */
    tls?: { ca?: string; cert?: string; key?: string };
    username?: string;
    /** A file (mode 600) holding the broker password (SONOMICS_MQTT_PASSWORD wins); the password never goes in the config. */
    passwordFile?: string;
    spool: { dir: string; maxBytes: number; maxAgeMs: number; fsync: boolean };
    reconnectMs: number;
    keepaliveS: number;
  };
  /** The bedside panel (docs/panel.md): its serial port by path or USB ids; no panel when neither is given. */
  panel: {
    path?: string;
    usb?: { vendorId: string; productId: string };
    /** Default: the layout's protocol.baudRate. */
    baudRate?: number;
    /** The layout file the panel's firmware was generated from (default: firmware-config/panel-layout.json). */
    layout?: string;
    reconnect: { initialMs: number; maxMs: number };
    /** Default: the layout's protocol.heartbeatTimeoutMs. */
    heartbeatTimeoutMs?: number;
  };
  /** CEUS perfusion analysis of the contrast pane (docs/perfusion.md). */
  perfusion: {
    enabled: boolean;
    /**
     * Undo the display's log compression: the scanner's contrast dynamic range (dB) and, optionally,
     * the level of gray 0 (dB). Absent: the phantom's own when the source is the phantom, else off
     * (the displayed gray levels are averaged as they are).
     */
    linearisation?: { dynamicRangeDb: number; offsetDb?: number } | false;
    model: 'lognormal' | 'gammaVariate';
    refitIntervalS: number;
    saturationLimit: number;
    /** A reference disc placed when tracking starts: B-mode pane pixels on the locked frame, radius mm. */
    reference?: { x: number; y: number; radiusMm: number };
  };
  /** Screen layout profiles by name (scanner model/mode): panes, scan sector, calibration. See docs/layout-profiles.md. */
  layouts: Record<string, LayoutProfile>;
}

export const configSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    source: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        type: { enum: ['phantom', 'capture', 'dicom', 'replay'], default: 'phantom' },
        layout: { type: 'string', pattern: PROFILE_NAME_PATTERN },
        phantom: {
          type: 'object', additionalProperties: false, default: {},
          properties: {
            seed: { type: 'integer', minimum: 0, default: 42 },
            width: { type: 'integer', minimum: 320, maximum: 4096, default: 1280 },
            height: { type: 'integer', minimum: 240, maximum: 2160, default: 720 },
            fps: { type: 'number', exclusiveMinimum: 0, maximum: 240, default: 30 },
            depthMm: { type: 'number', minimum: 10, maximum: 200, default: 40 },
          },
        },
        capture: {
          type: 'object', additionalProperties: false, default: {},
          properties: {
            input: { type: 'string', minLength: 1, default: '/dev/video0' },
            format: { type: 'string', minLength: 1 },
            pixelFormat: { type: 'string', minLength: 1 },
            width: { type: 'integer', minimum: 16, maximum: 8192 },
            height: { type: 'integer', minimum: 16, maximum: 8192 },
            fps: { type: 'number', exclusiveMinimum: 0, maximum: 1000 },
            inputOptions: { type: 'array', items: { type: 'string' }, default: [] },
            colour: { type: 'boolean', default: false },
            ffmpegPath: { type: 'string', minLength: 1, default: 'ffmpeg' },
            restartInitialMs: { type: 'integer', minimum: 10, maximum: 60000, default: 250 },
            restartMaxMs: { type: 'integer', minimum: 10, maximum: 600000, default: 8000 },
            stallMs: { type: 'integer', minimum: 100, maximum: 600000 },
          },
        },
        dicom: {
          type: 'object', additionalProperties: false, default: {},
          properties: { path: { type: 'string', minLength: 1 }, loop: { type: 'boolean', default: true } },
        },
        replay: {
          type: 'object', additionalProperties: false, default: {},
          properties: { path: { type: 'string', minLength: 1 }, speed: { type: 'number', exclusiveMinimum: 0, maximum: 100, default: 1 } },
        },
        duplicates: {
          type: 'object', additionalProperties: false, default: {},
          properties: {
            enabled: { type: 'boolean', default: true },
            threshold: { type: 'number', minimum: 0, maximum: 254, default: 8 }, // DEFAULT_DUPLICATE_THRESHOLD (core/arrival.ts)
            blockSize: { type: 'integer', minimum: 2, maximum: 256, default: 16 },
          },
        },
      },
    },
    pipeline: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        ringsMm: { type: 'array', items: { type: 'number', exclusiveMinimum: 0, maximum: 50 }, maxItems: 16, default: [3, 5, 8] },
        binWidth: { type: 'number', exclusiveMinimum: 0, default: 25 },
        featureThreads: { type: 'integer', minimum: 1, maximum: 2, default: 1 },
        tracker: {
          type: 'object', additionalProperties: false, default: {},
          properties: {
            searchRadiusPx: { type: 'number', minimum: 1, maximum: 1024 },
            uncertainBelow: { type: 'number', minimum: 0, maximum: 1 },
            lostBelow: { type: 'number', minimum: 0, maximum: 1 },
            resumeMargin: { type: 'number', minimum: 0, maximum: 1 },
            followBelow: { type: 'number', minimum: 0, maximum: 1 },
            lostAfterFrames: { type: 'integer', minimum: 1, maximum: 1000 },
            resumeFrames: { type: 'integer', minimum: 1, maximum: 1000 },
            minInView: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
            lostSearchRadiusPx: { type: 'number', minimum: 4, maximum: 4096 },
            maxTemplateSide: { type: 'integer', minimum: 16, maximum: 512 },
            marginFraction: { type: 'number', minimum: 0, maximum: 2 },
            refindAfterMs: { type: 'number', minimum: 50, maximum: 60000 },
          },
        },
        scoreWindow: { type: 'integer', minimum: 1, maximum: 600, default: 15 },
      },
    },
    models: { type: 'array', items: { type: 'string', minLength: 1 }, default: ['busi-malignancy'] },
    segmenter: {
      type: 'object', additionalProperties: false, default: {},
      properties: { enabled: { type: 'boolean', default: true }, dir: { type: 'string', minLength: 1 } },
    },
    overlay: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        host: { type: 'string', minLength: 1, default: '127.0.0.1' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 8080 },
        jpegQuality: { type: 'integer', minimum: 10, maximum: 100, default: 70 },
        maxBufferedBytes: { type: 'integer', minimum: 65536, default: 4194304 },
        tokenFile: { type: 'string', minLength: 1 },
        tls: {
          type: 'object', additionalProperties: false, required: ['cert', 'key'],
          properties: { cert: { type: 'string', minLength: 1 }, key: { type: 'string', minLength: 1 } },
        },
        allowedOrigins: { type: 'array', items: { type: 'string', pattern: '^https?://[^/]+$' }, default: [] },
        controlRate: {
          type: 'object', additionalProperties: false, default: {},
          properties: {
            perSecond: { type: 'number', exclusiveMinimum: 0, maximum: 1000, default: 10 },
            burst: { type: 'integer', minimum: 1, maximum: 1000, default: 20 },
          },
        },
      },
    },
    audit: {
      type: 'object', additionalProperties: false, default: {},
      properties: { path: { type: 'string', minLength: 1, default: 'sonomics-audit.jsonl' } },
    },
    recording: {
      type: 'object', additionalProperties: false, default: {},
      properties: { dir: { type: 'string', minLength: 1, default: 'recordings' } },
    },
    telemetry: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        url: { type: 'string', minLength: 1 },
        deviceId: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' }, // DEVICE_ID_PATTERN (device/telemetry/schema.ts)
        prefix: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}(/[A-Za-z0-9._-]{1,64}){0,7}$', default: 'sonomics' }, // PREFIX_PATTERN
        intervalMs: { type: 'integer', minimum: 100, maximum: 3600000, default: 1000 },
        tls: {
          type: 'object', additionalProperties: false,
          properties: { ca: { type: 'string', minLength: 1 }, cert: { type: 'string', minLength: 1 }, key: { type: 'string', minLength: 1 } },
        },
        username: { type: 'string', minLength: 1, maxLength: 256 },
        passwordFile: { type: 'string', minLength: 1 },
        spool: {
          type: 'object', additionalProperties: false, default: {},
          properties: {
            dir: { type: 'string', minLength: 1, default: 'telemetry-spool' },
            maxBytes: { type: 'integer', minimum: 65536, maximum: 1073741824, default: 16777216 },
            maxAgeMs: { type: 'integer', minimum: 1000, maximum: 2592000000, default: 86400000 },
            fsync: { type: 'boolean', default: false },
          },
        },
        reconnectMs: { type: 'integer', minimum: 100, maximum: 600000, default: 2000 },
        keepaliveS: { type: 'integer', minimum: 5, maximum: 3600, default: 30 },
      },
    },
    perfusion: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        enabled: { type: 'boolean', default: true },
        linearisation: {
          anyOf: [
            { const: false },
            {
              type: 'object', additionalProperties: false, required: ['dynamicRangeDb'],
              properties: { dynamicRangeDb: { type: 'number', exclusiveMinimum: 0, maximum: 120 }, offsetDb: { type: 'number', minimum: -200, maximum: 200 } },
            },
          ],
        },
        model: { enum: ['lognormal', 'gammaVariate'], default: 'lognormal' },
        refitIntervalS: { type: 'number', minimum: 0.2, maximum: 60, default: 1 },
        saturationLimit: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.05 },
        reference: {
          type: 'object', additionalProperties: false, required: ['x', 'y', 'radiusMm'],
          properties: { x: { type: 'number', minimum: 0 }, y: { type: 'number', minimum: 0 }, radiusMm: { type: 'number', minimum: 0.5, maximum: 20 } },
        },
      },
    },
    panel: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        path: { type: 'string', minLength: 1 },
        usb: {
          type: 'object', additionalProperties: false, required: ['vendorId', 'productId'],
          properties: { vendorId: { type: 'string', pattern: '^[0-9a-fA-F]{4}$' }, productId: { type: 'string', pattern: '^[0-9a-fA-F]{4}$' } },
        },
        baudRate: { enum: [9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600] },
        layout: { type: 'string', minLength: 1 },
        reconnect: {
          type: 'object', additionalProperties: false, default: {},
          properties: {
            initialMs: { type: 'integer', minimum: 10, maximum: 60000, default: 250 },
            maxMs: { type: 'integer', minimum: 10, maximum: 600000, default: 8000 },
          },
        },
        heartbeatTimeoutMs: { type: 'integer', minimum: 200, maximum: 60000 },
      },
    },
    // Each profile is checked by profileProblems (core/profile.ts): its messages name the key plainly,
    // where a schema of alternatives (fan, rect or polygon; ruler, mmPerPixel or dicom) reports every branch.
    layouts: { default: {} },
  },
} as const;

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true });
const validate = ajv.compile(configSchema);

export class ConfigError extends Error {
  constructor(readonly problems: string[], source: string) {
    super(`invalid config (${source}): ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

function keyOf(path: string): string {
  return path.replace(/^\//, '').replace(/\//g, '.') || '(top level)';
}

/** Every problem of the `layouts` key and its profiles. */
function layoutsProblems(layouts: unknown): string[] {
  if (layouts === undefined) return [];
  if (typeof layouts !== 'object' || layouts === null || Array.isArray(layouts)) return ['layouts: must be an object mapping profile names to layout profiles'];
  return Object.entries(layouts).flatMap(([name, p]) => profileProblems(name, p));
}

/** Validates a parsed config object (defaults filled in) and returns it. */
export function resolveConfig(input: unknown = {}, source = 'config'): SonomicsConfig {
  const cfg = input === undefined || input === null ? {} : structuredClone(input);
  if (!validate(cfg)) {
    const layouts = layoutsProblems((cfg as { layouts?: unknown }).layouts);
    const problems = (validate.errors ?? []).map((e) => {
      if (e.keyword === 'additionalProperties') {
        const k = String((e.params as { additionalProperty: string }).additionalProperty);
        if (e.instancePath === '/overlay' && /^(token|secret|password)$/i.test(k))
          return `overlay.${k}: a secret never goes in the config file: set SONOMICS_TOKEN, or put the token in a file (mode 600) named by overlay.tokenFile or --token-file`;
        if (e.instancePath === '/telemetry' && /^(token|secret|password)$/i.test(k))
          return `telemetry.${k}: a secret never goes in the config file: set SONOMICS_MQTT_PASSWORD, or put the password in a file (mode 600) named by telemetry.passwordFile`;
        return `${keyOf(`${e.instancePath}/${k}`)}: unknown key`;
      }
      return `${keyOf(e.instancePath)}: ${e.message}`;
    });
    throw new ConfigError([...problems, ...layouts], source);
  }
  const c = cfg as SonomicsConfig;
  const problems: string[] = [];
  const r = c.pipeline.ringsMm;
  for (let i = 1; i < r.length; i++) if (r[i] <= r[i - 1]) problems.push('pipeline.ringsMm: distances must increase');
  const tr = { ...TRACKER_DEFAULTS, ...c.pipeline.tracker };
  if (tr.lostBelow > tr.uncertainBelow) problems.push(`pipeline.tracker.lostBelow: must be <= uncertainBelow (${tr.uncertainBelow})`);
  problems.push(...layoutsProblems(c.layouts));
  const profiles = typeof c.layouts === 'object' && c.layouts !== null ? c.layouts : {};
  if (c.source.layout !== undefined && !Object.hasOwn(profiles, c.source.layout))
    problems.push(`source.layout: no layout profile "${c.source.layout}" in layouts (${Object.keys(profiles).join(', ') || 'none defined'})`);
  if ((c.source.type === 'dicom' || c.source.type === 'replay') && !c.source[c.source.type].path) problems.push(`source.${c.source.type}.path: required when source.type is "${c.source.type}"`);
  if (c.source.capture.restartMaxMs < c.source.capture.restartInitialMs) problems.push('source.capture.restartMaxMs: must be >= restartInitialMs');
  if (c.panel.reconnect.maxMs < c.panel.reconnect.initialMs) problems.push('panel.reconnect.maxMs: must be >= initialMs');
  if ((c.source.capture.width === undefined) !== (c.source.capture.height === undefined)) problems.push('source.capture: give width and height together');
  problems.push(...telemetryProblems(c.telemetry));
  if (problems.length) throw new ConfigError(problems, source);
  return c;
}
/** Cross-key rules of the telemetry section: the broker URL (scheme, no credentials), TLS files. */
function telemetryProblems(t: SonomicsConfig['telemetry']): string[] {
  const problems: string[] = [];
  if (t.url !== undefined) {
    let u: URL | undefined;
    try { u = new URL(t.url); } catch { problems.push(`telemetry.url: "${t.url}" is not a URL (e.g. mqtts://broker.example:8883)`); }
    if (u && !['mqtt:', 'mqtts:', 'ws:', 'wss:'].includes(u.protocol)) problems.push(`telemetry.url: the scheme must be mqtt, mqtts, ws or wss (got ${u.protocol})`);
    if (u && (u.username || u.password))
      problems.push('telemetry.url: credentials never go in the URL: give telemetry.username, and the password in SONOMICS_MQTT_PASSWORD or a file (mode 600) named by telemetry.passwordFile');
    if (u && t.tls && !['mqtts:', 'wss:'].includes(u.protocol)) problems.push('telemetry.tls: needs an mqtts:// or wss:// url');
  }
  if (t.tls && (t.tls.cert === undefined) !== (t.tls.key === undefined)) problems.push('telemetry.tls: give cert and key together');
  return problems;
}


/** The layout profile `name` of a resolved config; a ConfigError naming `layouts.<name>` and the known names when missing. */
export function layoutProfile(config: SonomicsConfig, name: string, source = 'config'): LayoutProfile {
  const layouts = config.layouts ?? {};
  if (Object.hasOwn(layouts, name)) return layouts[name];
  const known = Object.keys(layouts);
  throw new ConfigError([`layouts.${name}: no such layout profile (${known.length ? `known: ${known.join(', ')}` : 'the config defines none'})`], source);
}

/** Reads a JSON (.json) or YAML (.yaml/.yml) config file. */
export function loadConfig(path?: string): SonomicsConfig {
  if (!path) return resolveConfig({}, 'defaults');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError([`cannot read ${path}: ${(e as Error).message}`], path);
  }
  let parsed: unknown;
  const ext = extname(path).toLowerCase();
  if (ext !== '.json' && ext !== '.yaml' && ext !== '.yml') throw new ConfigError([`unsupported extension "${ext}" (use .json, .yaml or .yml)`], path);
  try {
    parsed = ext === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ConfigError([`not valid ${ext === '.json' ? 'JSON' : 'YAML'}: ${(e as Error).message}`], path);
  }
  if (parsed !== null && (typeof parsed !== 'object' || Array.isArray(parsed))) throw new ConfigError(['(top level): must be an object'], path);
  return resolveConfig(parsed ?? {}, path);
}
