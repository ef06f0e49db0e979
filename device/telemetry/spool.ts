// The telemetry spool: a bounded, on-disk FIFO of MQTT messages that survives a broker outage
// and a process restart. Every telemetry and event message is appended here before it is sent,
// and removed only when the broker's PUBACK for it arrives (or when the bounds drop it).
//
// On disk (docs/telemetry.md#spool), in `dir` (mode 700):
//   seg-<first id, 16 digits>.jsonl   segments of JSON lines {"id","t","topic","retain","p": <payload>}
//   state.json                        {"format","head","gone","dropped"}: every id below head, and
//                                     those listed in gone, were acknowledged or dropped
//   lock                              the pid of the process that has the spool open
// A new segment is started when the current one reaches segmentBytes and at every open (so a
// torn last line of a killed process is never appended to). A segment is deleted once none of
// its messages are pending. state.json is replaced atomically (write + rename) at most every
// stateFlushMs and on close.
//
// Durability: lines are written with write(2) straight away, so a crash or SIGKILL of the process
// loses nothing. fsync is off by default: after a power cut the last few seconds of lines (the
// kernel's write-back window) can be missing, and messages acknowledged in the last stateFlushMs
// are sent again (QoS 1 is at least once anyway). `fsync: true` syncs every line and every state
// write, at the cost of a flash write per message.
//
// Bounds: at most maxBytes of pending lines and nothing older than maxAgeMs. Beyond them the
// oldest messages are dropped first and counted (by reason), except those `canDrop` keeps (the
// publisher keeps the few already handed to a connected MQTT client).
import { EventEmitter } from 'node:events';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const SPOOL_FORMAT = 'sonomics.spool/v1';

export interface SpoolOptions {
  dir: string;
  /** Pending bytes (JSON lines) kept at most; default 16 MiB. Also what the spool may hold in memory. */
  maxBytes?: number;
  /** Messages older than this are dropped; default 24 h. */
  maxAgeMs?: number;
  /** A new segment file is started beyond this size; default maxBytes / 8, within [4 KiB, 1 MiB]. */
  segmentBytes?: number;
  /** fsync every line and state write (default false: see the head of this file). */
  fsync?: boolean;
  /** Longest delay before state.json records acknowledgements; default 250 ms. */
  stateFlushMs?: number;
  /** The clock (epoch ms); for tests. */
  now?: () => number;
  /** May this entry be dropped to make room? Default: any. */
  canDrop?: (e: SpoolEntry) => boolean;
}

export interface SpoolEntry {
  readonly id: number;
  /** Epoch ms it was appended. */
  readonly t: number;
  readonly topic: string;
  /** The payload (JSON text). */
  readonly payload: string;
  readonly retain: boolean;
  /** Its line's size on disk. */
  readonly bytes: number;
  /** Acknowledged or dropped: no longer pending. */
  removed: boolean;
  /** Segment file holding it ('' when it could not be written). */
  readonly seg: string;
}

export type DropReason = 'size' | 'age';

export interface SpoolStats {
  /** Pending messages and their bytes. */
  messages: number;
  bytes: number;
  appended: number;
  acked: number;
  /** Dropped by the bounds (oldest first), since the spool was created (kept across restarts). */
  dropped: { size: number; age: number };
  /** Lines found unreadable when the spool was opened (a torn last line of a killed process). */
  corrupt: number;
  /** Lines that could not be written (disk full, ...): kept in memory only. */
  writeErrors: number;
  segments: number;
  nextId: number;
}

export class SpoolLockedError extends Error {
  constructor(dir: string, pid: number) {
    super(`telemetry spool ${dir} is in use by process ${pid}`);
    this.name = 'SpoolLockedError';
  }
}

const SEGMENT = /^seg-(\d{16})\.jsonl$/;
const segName = (id: number) => `seg-${String(id).padStart(16, '0')}.jsonl`;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Events: 'drop' (entry, reason) for each message the bounds drop; 'warning' (message) when a line
 * or the state cannot be written (the message is then kept in memory only).
 */
export class Spool extends EventEmitter {
  readonly dir: string;
  readonly maxBytes: number;
  readonly maxAgeMs: number;
  readonly segmentBytes: number;
  private readonly fsync: boolean;
  private readonly stateFlushMs: number;
  private readonly now: () => number;
  canDrop: (e: SpoolEntry) => boolean;
  /** In id order: pending entries and removed ones not yet trimmed from the front. */
  private entries: SpoolEntry[] = [];
  private pendingBytes = 0;
  private pendingCount = 0;
  private segCounts = new Map<string, number>();
  private fd: number | undefined;
  private current = '';
  private currentBytes = 0;
  private stateTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private warned = false;
  private counters = { appended: 0, acked: 0, corrupt: 0, writeErrors: 0 };
  private dropped = { size: 0, age: 0 };

  constructor(opts: SpoolOptions) {
    super();
    this.dir = opts.dir;
    this.maxBytes = opts.maxBytes ?? 16 * 1024 * 1024;
    this.maxAgeMs = opts.maxAgeMs ?? 24 * 3600 * 1000;
    if (!(this.maxBytes >= 1024)) throw new RangeError(`spool.maxBytes must be at least 1024 (got ${this.maxBytes})`);
    if (!(this.maxAgeMs > 0)) throw new RangeError(`spool.maxAgeMs must be positive (got ${this.maxAgeMs})`);
    this.segmentBytes = opts.segmentBytes ?? Math.min(1024 * 1024, Math.max(4096, Math.floor(this.maxBytes / 8)));
    this.fsync = opts.fsync ?? false;
    this.stateFlushMs = opts.stateFlushMs ?? 250;
    this.now = opts.now ?? Date.now;
    this.canDrop = opts.canDrop ?? (() => true);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.lock();
    try {
      this.load();
    } catch (e) {
      this.unlock();
      throw e;
    }
  }

  private nextIdValue = 0;

  /** The id the next appended message will get (the publisher puts it in the payload as `seq`). */
  get nextId(): number { return this.nextIdValue; }

  /** Pending bytes. */
  get bytes(): number { return this.pendingBytes; }

  /** Pending messages. */
  get size(): number { return this.pendingCount; }

  /** Pending entries with id >= `from`, oldest first (a snapshot). */
  pendingFrom(from = 0, limit = Infinity): SpoolEntry[] {
    const out: SpoolEntry[] = [];
    for (let i = this.indexOf(from, true); i < this.entries.length && out.length < limit; i++) if (!this.entries[i].removed) out.push(this.entries[i]);
    return out;
  }

  /** The pending entry with this id, if any. */
  get(id: number): SpoolEntry | undefined {
    const i = this.indexOf(id, false);
    return i >= 0 && !this.entries[i].removed ? this.entries[i] : undefined;
  }

  /**
   * Appends a message (oldest messages are dropped first to make room, and expired ones go).
   * Returns the entry, or undefined when the message alone exceeds maxBytes (counted as a size drop).
   */
  append(topic: string, payload: string, retain = false): SpoolEntry | undefined {
    if (this.closed) throw new Error('spool is closed');
    const id = this.nextIdValue++;
    const t = this.now();
    const line = `{"id":${id},"t":${t},"topic":${JSON.stringify(topic)},"retain":${retain},"p":${payload}}\n`;
    const bytes = Buffer.byteLength(line);
    this.expire();
    if (bytes > this.maxBytes) {
      this.dropped.size++;
      this.scheduleState();
      this.emit('drop', { id, t, topic, payload, retain, bytes, removed: true, seg: '' } satisfies SpoolEntry, 'size');
      return undefined;
    }
    while (this.pendingBytes + bytes > this.maxBytes && this.dropOldest('size')) { /* dropped one */ }
    const seg = this.write(id, line, bytes);
    const e: SpoolEntry = { id, t, topic, payload, retain, bytes, removed: false, seg };
    this.entries.push(e);
    this.pendingBytes += bytes;
    this.pendingCount++;
    this.counters.appended++;
    return e;
  }

  /** The broker acknowledged this message: it is removed. False when it was not pending. */
  ack(id: number): boolean {
    const i = this.indexOf(id, false);
    if (i < 0 || this.entries[i].removed) return false;
    this.remove(i);
    this.counters.acked++;
    return true;
  }

  /** Drops messages older than maxAgeMs (oldest first); returns how many. */
  expire(): number {
    const limit = this.now() - this.maxAgeMs;
    const gone: SpoolEntry[] = [];
    for (const e of this.entries) {
      if (e.t >= limit) break;
      if (e.removed || !this.canDrop(e)) continue;
      this.markRemoved(e);
      this.dropped.age++;
      gone.push(e);
    }
    if (gone.length) this.trim();
    for (const e of gone) this.emit('drop', e, 'age');
    return gone.length;
  }

  stats(): SpoolStats {
    return {
      messages: this.pendingCount, bytes: this.pendingBytes, ...this.counters, dropped: { ...this.dropped },
      segments: this.segCounts.size, nextId: this.nextIdValue,
    };
  }

  /** Writes state.json now. */
  flushState(): void {
    if (this.stateTimer) { clearTimeout(this.stateTimer); this.stateTimer = undefined; }
    const head = this.entries.find((e) => !e.removed)?.id ?? this.nextIdValue;
    const gone = this.entries.filter((e) => e.removed && e.id > head).map((e) => e.id);
    const state = { format: SPOOL_FORMAT, head, next: this.nextIdValue, gone, dropped: this.dropped };
    const tmp = join(this.dir, 'state.json.tmp');
    try {
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, JSON.stringify(state));
        if (this.fsync) fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, join(this.dir, 'state.json'));
    } catch (e) {
      this.warn(`telemetry spool: cannot write ${join(this.dir, 'state.json')}: ${(e as Error).message}`);
    }
  }

  /** Records the state and closes the segment; pending messages stay on disk for the next open. */
  close(): void {
    if (this.closed) return;
    this.flushState();
    this.closed = true;
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    if (this.current && (this.segCounts.get(this.current) ?? 0) === 0) this.unlinkSegment(this.current);
    this.unlock();
  }

  // ---- internals -------------------------------------------------------------------------------

  /** Binary search by id: its index, or (ceil) the first index with a larger id / -1 when absent. */
  private indexOf(id: number, ceil: boolean): number {
    let lo = 0, hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid].id < id) lo = mid + 1;
      else hi = mid;
    }
    if (ceil) return lo;
    return lo < this.entries.length && this.entries[lo].id === id ? lo : -1;
  }

  /** Drops the oldest droppable pending entry; false when none may go. */
  private dropOldest(reason: DropReason): boolean {
    for (let i = 0; i < this.entries.length; i++) {
      const e = this.entries[i];
      if (e.removed || !this.canDrop(e)) continue;
      this.remove(i);
      this.dropped[reason]++;
      this.emit('drop', e, reason);
      return true;
    }
    return false;
  }

  private remove(i: number): void {
    this.markRemoved(this.entries[i]);
    this.trim();
  }

  private markRemoved(e: SpoolEntry): void {
    e.removed = true;
    this.pendingBytes -= e.bytes;
    this.pendingCount--;
    this.scheduleState();
  }

  /** Trims removed entries from the front; their segments go when nothing in them is pending. */
  private trim(): void {
    let k = 0;
    while (k < this.entries.length && this.entries[k].removed) {
      this.release(this.entries[k].seg);
      k++;
    }
    if (k > 0) this.entries.splice(0, k);
  }

  private release(seg: string): void {
    if (!seg) return;
    const n = (this.segCounts.get(seg) ?? 1) - 1;
    if (n > 0) { this.segCounts.set(seg, n); return; }
    this.segCounts.delete(seg);
    if (seg !== this.current) this.unlinkSegment(seg);
  }

  private unlinkSegment(seg: string): void {
    try {
      unlinkSync(join(this.dir, seg));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.warn(`telemetry spool: cannot remove ${seg}: ${(e as Error).message}`);
    }
  }

  private write(id: number, line: string, bytes: number): string {
    try {
      if (this.fd === undefined || this.currentBytes >= this.segmentBytes) {
        if (this.fd !== undefined) {
          closeSync(this.fd);
          this.fd = undefined;
          if ((this.segCounts.get(this.current) ?? 0) === 0) { this.segCounts.delete(this.current); this.unlinkSegment(this.current); }
        }
        this.current = segName(id);
        this.fd = openSync(join(this.dir, this.current), 'a', 0o600);
        this.currentBytes = 0;
      }
      writeSync(this.fd, line);
      if (this.fsync) fsyncSync(this.fd);
      this.currentBytes += bytes;
      this.segCounts.set(this.current, (this.segCounts.get(this.current) ?? 0) + 1);
      return this.current;
    } catch (e) {
      this.counters.writeErrors++;
      this.warn(`telemetry spool: cannot write to ${this.dir}: ${(e as Error).message}; messages are kept in memory only`);
      return '';
    }
  }

  private warn(message: string): void {
    if (this.warned) return;
    this.warned = true;
    this.emit('warning', message);
  }

  private scheduleState(): void {
    if (this.stateTimer || this.closed) return;
    this.stateTimer = setTimeout(() => { this.stateTimer = undefined; this.flushState(); }, this.stateFlushMs);
    this.stateTimer.unref();
  }

  private lock(): void {
    const path = join(this.dir, 'lock');
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fd = openSync(path, 'wx', 0o600);
        writeSync(fd, String(process.pid));
        closeSync(fd);
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      let pid = NaN;
      try { pid = Number(readFileSync(path, 'utf8').trim()); } catch { /* gone meanwhile */ }
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) throw new SpoolLockedError(this.dir, pid);
      // A stale lock (its process is gone): take it over.
      try { unlinkSync(path); } catch { /* raced */ }
    }
    throw new Error(`telemetry spool ${this.dir}: cannot take the lock`);
  }

  private unlock(): void {
    const path = join(this.dir, 'lock');
    try {
      if (Number(readFileSync(path, 'utf8').trim()) === process.pid) unlinkSync(path);
    } catch { /* already gone */ }
  }

  private load(): void {
    let head = 0, next = 0;
    let gone = new Set<number>();
    try {
      const s = JSON.parse(readFileSync(join(this.dir, 'state.json'), 'utf8')) as { format?: string; head?: number; next?: number; gone?: number[]; dropped?: { size?: number; age?: number } };
      if (s.format === SPOOL_FORMAT && Number.isInteger(s.head) && s.head! >= 0) {
        head = s.head!;
        next = Number.isInteger(s.next) ? s.next! : 0;
        gone = new Set((s.gone ?? []).filter(Number.isInteger));
        this.dropped = { size: Math.max(0, Number(s.dropped?.size) || 0), age: Math.max(0, Number(s.dropped?.age) || 0) };
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.counters.corrupt++;
    }
    let maxId = -1;
    const segments = readdirSync(this.dir).filter((f) => SEGMENT.test(f)).sort();
    for (const seg of segments) {
      let text: string;
      try {
        text = readFileSync(join(this.dir, seg), 'utf8');
      } catch (e) {
        this.warn(`telemetry spool: cannot read ${seg}: ${(e as Error).message}`);
        continue;
      }
      let kept = 0;
      for (const line of text.split('\n')) {
        if (!line) continue;
        let rec: { id?: unknown; t?: unknown; topic?: unknown; retain?: unknown; p?: unknown };
        try {
          rec = JSON.parse(line);
        } catch {
          this.counters.corrupt++;
          continue;
        }
        if (!Number.isInteger(rec.id) || typeof rec.t !== 'number' || typeof rec.topic !== 'string' || rec.p === undefined) {
          this.counters.corrupt++;
          continue;
        }
        const id = rec.id as number;
        maxId = Math.max(maxId, id);
        if (id < head || gone.has(id)) continue;
        if (this.entries.length && id <= this.entries[this.entries.length - 1].id) { this.counters.corrupt++; continue; }
        const bytes = Buffer.byteLength(line) + 1;
        this.entries.push({ id, t: rec.t, topic: rec.topic, payload: JSON.stringify(rec.p), retain: rec.retain === true, bytes, removed: false, seg });
        this.pendingBytes += bytes;
        this.pendingCount++;
        kept++;
      }
      if (kept) this.segCounts.set(seg, kept);
      else this.unlinkSegment(seg);
    }
    try { unlinkSync(join(this.dir, 'state.json.tmp')); } catch { /* none */ }
    this.nextIdValue = Math.max(head, next, maxId + 1);
    // The bounds apply to what was left behind too.
    this.expire();
    while (this.pendingBytes > this.maxBytes && this.dropOldest('size')) { /* dropped one */ }
    if (this.segCounts.size || gone.size) this.scheduleState();
  }

  /** Size of the spool's files on disk (segments and state), for tests and stats. */
  diskBytes(): number {
    let n = 0;
    for (const f of readdirSync(this.dir)) {
      if (!SEGMENT.test(f) && f !== 'state.json') continue;
      try { n += statSync(join(this.dir, f)).size; } catch { /* removed meanwhile */ }
    }
    return n;
  }
}
