// The audit log: every state change (who, what, when, with which models) as one JSON line,
// appended and never rewritten. Each entry carries the sha256 of the line before it, so a line
// edited, removed or inserted later breaks the chain and verifyAuditLog says where.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export const AUDIT_FORMAT = 'sonomics.audit/v1';
/** The `prev` of the first entry. */
export const AUDIT_GENESIS = '0'.repeat(64);

export interface AuditActor {
  /** The connection's id on the overlay server (v1, v2, ...), or the component (panel, api, cli). */
  id: string;
  /** Remote address for a network viewer. */
  address?: string;
  role?: 'controller' | 'viewer';
}

export interface AuditModel { id: string; version: string; sha256: string }

export interface AuditEntry {
  format: typeof AUDIT_FORMAT;
  /** Entry number, from 0 in this file. */
  n: number;
  /** ISO 8601 time, UTC. */
  at: string;
  who: AuditActor;
  /** The change: control, layers, models, freeze, lock, clinical, record, mark, connect, disconnect, refused, ... */
  what: string;
  details: Record<string, unknown>;
  models: AuditModel[];
  /** sha256 (hex) of the previous line (without its newline); AUDIT_GENESIS for the first. */
  prev: string;
}

export class AuditError extends Error {
  constructor(readonly path: string, message: string) {
    super(`audit log ${path}: ${message}`);
    this.name = 'AuditError';
  }
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** The last line of a file (reads only its tail). */
function lastLine(fd: number): string | undefined {
  const size = fstatSync(fd).size;
  if (size === 0) return undefined;
  let want = Math.min(size, 4096);
  for (;;) {
    const buf = Buffer.alloc(want);
    readSync(fd, buf, 0, want, size - want);
    const text = buf.toString('utf8').replace(/\n$/, '');
    const nl = text.lastIndexOf('\n');
    if (nl >= 0 || want === size) return text.slice(nl + 1);
    want = Math.min(size, want * 4);
  }
}

/**
 * Appends entries to a JSON-lines file opened in append mode (O_APPEND: a write can only add to the
 * end). Writes are synchronous: an entry is on its way to disk before the change is acknowledged.
 * An existing file is continued: its last entry must be a valid audit entry.
 */
export class AuditLog {
  readonly path: string;
  private readonly fd: number;
  private n = 0;
  private prev = AUDIT_GENESIS;
  /** File size after our last write: if it grew otherwise, another process wrote to it too. */
  private size = 0;

  constructor(path: string, private readonly models: () => AuditModel[] = () => []) {
    this.path = path;
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'a+', 0o600);
    try {
      this.follow();
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
  }

  /** Continues the chain from the file's last entry. */
  private follow(): void {
    this.size = fstatSync(this.fd).size;
    const last = lastLine(this.fd);
    if (last === undefined) return;
    let e: Partial<AuditEntry>;
    try {
      e = JSON.parse(last) as Partial<AuditEntry>;
    } catch {
      throw new AuditError(this.path, 'the last line is not JSON: the file is damaged or not an audit log; move it aside');
    }
    if (e.format !== AUDIT_FORMAT || !Number.isInteger(e.n)) throw new AuditError(this.path, `the last line is not a ${AUDIT_FORMAT} entry; move the file aside`);
    this.n = (e.n as number) + 1;
    this.prev = sha256(last);
  }

  /** Appends one entry and returns it. */
  record(who: AuditActor, what: string, details: Record<string, unknown> = {}): AuditEntry {
    // Another sonomics on the same box may share the file: chain on to what it wrote.
    if (fstatSync(this.fd).size !== this.size) this.follow();
    const entry: AuditEntry = { format: AUDIT_FORMAT, n: this.n, at: new Date().toISOString(), who, what, details, models: this.models(), prev: this.prev };
    const line = JSON.stringify(entry);
    this.size += writeSync(this.fd, line + '\n');
    this.n++;
    this.prev = sha256(line);
    return entry;
  }

  close(): void {
    closeSync(this.fd);
  }
}

export interface AuditVerification { entries: number; ok: boolean; problems: string[] }

/** Checks an audit log's chain: every line parses, numbers run on, and each `prev` is the hash of the line before. */
export function verifyAuditLog(path: string): AuditVerification {
  if (!existsSync(path)) throw new AuditError(path, 'no such file');
  const lines = readFileSync(path, 'utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  const problems: string[] = [];
  let prev = AUDIT_GENESIS;
  lines.forEach((line, i) => {
    let e: Partial<AuditEntry> | undefined;
    try {
      e = JSON.parse(line) as Partial<AuditEntry>;
    } catch {
      problems.push(`line ${i + 1}: not JSON`);
    }
    if (e) {
      if (e.format !== AUDIT_FORMAT) problems.push(`line ${i + 1}: format is not ${AUDIT_FORMAT}`);
      if (e.n !== i) problems.push(`line ${i + 1}: entry number ${String(e.n)}, expected ${i}`);
      if (e.prev !== prev) problems.push(`line ${i + 1}: prev does not match the hash of line ${i} (a line was changed, removed or inserted)`);
    }
    prev = sha256(line);
  });
  return { entries: lines.length, ok: problems.length === 0, problems };
}
