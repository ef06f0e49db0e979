// Access to the overlay: the token (from SONOMICS_TOKEN or a secret file, never the config file),
// bind-address rules, and the checks made on each request.
import { timingSafeEqual, createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/** Characters a token may use: they survive a URL fragment, an HTTP header and a WebSocket subprotocol. */
export const TOKEN_PATTERN = /^[A-Za-z0-9._~-]{16,256}$/;
export const TOKEN_ENV = 'SONOMICS_TOKEN';
/** Prefix of the WebSocket subprotocol that carries the token from a browser page. */
export const BEARER_PROTOCOL = 'bearer.';

export class AuthConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthConfigError';
  }
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1';
  return false;
}

function checkToken(token: string, from: string): string {
  if (!TOKEN_PATTERN.test(token))
    throw new AuthConfigError(`${from}: the token must be 16 to 256 characters of A-Z a-z 0-9 . _ ~ - (got ${token.length} characters${/\s/.test(token) ? ', with white space inside' : ''})`);
  return token;
}

/**
 * The overlay's access token: SONOMICS_TOKEN wins, else the secret file (one line; it must not be
 * readable by group or others). Undefined when neither is set.
 */
export function resolveToken(o: { env?: NodeJS.ProcessEnv; tokenFile?: string } = {}): string | undefined {
  const env = o.env ?? process.env;
  const fromEnv = env[TOKEN_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return checkToken(fromEnv, TOKEN_ENV);
  if (!o.tokenFile) return undefined;
  let mode: number;
  let text: string;
  try {
    mode = statSync(o.tokenFile).mode;
    text = readFileSync(o.tokenFile, 'utf8');
  } catch (e) {
    throw new AuthConfigError(`token file ${o.tokenFile}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (process.platform !== 'win32' && (mode & 0o077) !== 0)
    throw new AuthConfigError(`token file ${o.tokenFile}: readable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  return checkToken(text.trim(), `token file ${o.tokenFile}`);
}

/** Throws unless the bind address is loopback or a token protects it. */
export function checkBinding(host: string, token: string | undefined): void {
  if (!isLoopback(host) && token === undefined)
    throw new AuthConfigError(`overlay.host ${host} is not a loopback address: the overlay would be open to the network, so it needs an access token. ` +
      `Set ${TOKEN_ENV}, or put the token in a file (chmod 600) named by --token-file or overlay.tokenFile; the token never goes in the config file`);
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Constant-time token comparison (both sides hashed to the same length first). */
export function tokenMatches(given: string | undefined, token: string): boolean {
  return given !== undefined && timingSafeEqual(digest(given), digest(token));
}

/** The token a request presents: `Authorization: Bearer <token>`, or a `bearer.<token>` WebSocket subprotocol. */
export function presentedToken(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim();
  const protocols = req.headers['sec-websocket-protocol'];
  if (typeof protocols === 'string')
    for (const p of protocols.split(',')) if (p.trim().startsWith(BEARER_PROTOCOL)) return p.trim().slice(BEARER_PROTOCOL.length);
  return undefined;
}

/** True when a browser's Origin is the server's own host (or one configured) ; no Origin (not a browser) passes. */
export function originAllowed(origin: string | undefined, host: string | undefined, allowed: readonly string[]): boolean {
  if (!origin) return true;
  if (allowed.includes(origin)) return true;
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}

/** A token bucket: `burst` messages at once, refilled at `perSecond`. */
export class RateLimiter {
  private tokens: number;
  private last = performance.now();
  constructor(private readonly perSecond: number, private readonly burst: number) {
    this.tokens = burst;
  }

  take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
