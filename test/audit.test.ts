// The audit log: append-only JSON lines with a hash chain that shows any later edit.
import { appendFileSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { AUDIT_FORMAT, AUDIT_GENESIS, AuditLog, verifyAuditLog } from '../core/audit.js';
import { errorOf } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'sonomics-audit-'));
const models = () => [{ id: 'm', version: '1.0.0', sha256: 'a'.repeat(64) }];

t.test('entries carry who, what, when and the models, chained by hash; a reopened log carries on', async (t) => {
  const path = join(dir, 'sub', 'audit.jsonl');
  const log = new AuditLog(path, models);
  const e0 = log.record({ id: 'v1', address: '127.0.0.1', role: 'controller' }, 'freeze', { frozen: true, seq: 12 });
  log.record({ id: 'v1' }, 'lock', { shape: 'ellipse' });
  log.close();
  t.match(e0, { format: AUDIT_FORMAT, n: 0, who: { id: 'v1', address: '127.0.0.1', role: 'controller' }, what: 'freeze', details: { frozen: true, seq: 12 }, models: models(), prev: AUDIT_GENESIS });
  t.ok(Math.abs(Date.parse(e0.at) - Date.now()) < 60000, 'ISO time');
  t.equal(statSync(path).mode & 0o777, 0o600, 'readable by its owner only');
  const again = new AuditLog(path, models);
  t.equal(again.record({ id: 'panel' }, 'mark', {}).n, 2, 'numbers carry on');
  again.close();
  t.same(verifyAuditLog(path), { entries: 3, ok: true, problems: [] });
});

t.test('two writers on one file (two sonomics on a box) keep one chain', async (t) => {
  const path = join(dir, 'shared.jsonl');
  const a = new AuditLog(path), b = new AuditLog(path);
  a.record({ id: 'v1' }, 'freeze', {});
  b.record({ id: 'v1' }, 'lock', {});
  a.record({ id: 'v2' }, 'mark', {});
  a.close();
  b.close();
  t.same(verifyAuditLog(path), { entries: 3, ok: true, problems: [] });
});

t.test('an edited, removed or inserted line breaks the chain, and verify says where', async (t) => {
  const path = join(dir, 'tamper.jsonl');
  const log = new AuditLog(path);
  for (let i = 0; i < 4; i++) log.record({ id: 'v1' }, 'layers', { i });
  log.close();
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  writeFileSync(join(dir, 'edited.jsonl'), [lines[0], lines[1].replace('"i":1', '"i":9'), lines[2], lines[3]].join('\n') + '\n');
  t.match(verifyAuditLog(join(dir, 'edited.jsonl')).problems, ['line 3: prev does not match the hash of line 2 (a line was changed, removed or inserted)']);
  writeFileSync(join(dir, 'removed.jsonl'), [lines[0], lines[2], lines[3]].join('\n') + '\n');
  const removed = verifyAuditLog(join(dir, 'removed.jsonl'));
  t.equal(removed.ok, false);
  t.match(removed.problems[0], /^line 2: entry number 2, expected 1/);
  t.match(errorOf(() => verifyAuditLog(join(dir, 'nope.jsonl')))?.message, /no such file/);
});

t.test('a damaged log is not continued: the error says to move it aside', async (t) => {
  const path = join(dir, 'damaged.jsonl');
  const log = new AuditLog(path);
  log.record({ id: 'v1' }, 'mark', {});
  log.close();
  appendFileSync(path, '{"format":"sonomics.au');
  t.match(errorOf(() => new AuditLog(path))?.message, /audit log .*damaged\.jsonl: the last line is not JSON.*move it aside/);
  writeFileSync(join(dir, 'other.jsonl'), '{"hello":1}\n');
  t.match(errorOf(() => new AuditLog(join(dir, 'other.jsonl')))?.message, /is not a sonomics\.audit\/v1 entry/);
});

t.test('sonomics audit-verify: JSON verdict, exit 1 on a broken chain', async (t) => {
  const { runCli } = await import('./helpers.js');
  const path = join(dir, 'cli.jsonl');
  const log = new AuditLog(path);
  log.record({ id: 'v1' }, 'freeze', { frozen: true });
  log.record({ id: 'v1' }, 'freeze', { frozen: false });
  log.close();
  const ok = await runCli(['audit-verify', path]);
  t.equal(ok.code, 0);
  t.same(JSON.parse(ok.stdout), { entries: 2, ok: true, problems: [] });
  writeFileSync(path, readFileSync(path, 'utf8').replace('"frozen":true', '"frozen":false'));
  const bad = await runCli(['audit-verify', path]);
  t.equal(bad.code, 1);
  t.match(JSON.parse(bad.stdout), { ok: false, problems: [/^line 2: prev does not match/] });
});
