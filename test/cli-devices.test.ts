// `sonomics demo --panel PATH --mqtt URL`: the command line wires the touch panel and the MQTT
// telemetry into a running session. A C panel on a socat pty freezes the picture; the broker sees
// the session, the freeze and the box going offline; the audit log names the panel.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { verifyAuditLog, type AuditEntry } from '../core/audit.js';
import { runCli } from './helpers.js';
import { checkPayloads, startBroker, Subscriber } from './mosquitto.js';
import { CPanel, ptyPair, requireTool, tmp } from './panel-helpers.js';

t.test('demo --panel and --mqtt: a panel press freezes the session, telemetry reports it, the audit log names the panel', async (t) => {
  if (!requireTool(t, 'gcc') || !requireTool(t, 'socat')) return;
  const broker = await startBroker(t);
  if (!broker) return;
  const url = `mqtt://127.0.0.1:${broker.port}`;
  const sub = await Subscriber.open(url, 'sonomics/#');
  t.teardown(() => sub.close());
  const pair = await ptyPair(t, tmp('cli-panel'));
  const panel = new CPanel(t, pair.b);
  const dir = mkdtempSync(join(tmpdir(), 'sonomics-cli-devices-'));
  const config = join(dir, 'sonomics.json');
  writeFileSync(config, JSON.stringify({
    audit: { path: join(dir, 'audit.jsonl') }, recording: { dir: join(dir, 'recordings') },
    telemetry: { deviceId: 'test-box', spool: { dir: join(dir, 'spool') } },
  }));
  const run = runCli(['demo', '--headless', '--port', '0', '--frames', '240', '--json', '--config', config, '--mqtt', url, '--panel', pair.a], 90000);
  await panel.waitLine(/^rx WELCOME .*status=0 /, 30000);
  const mark = panel.lines.length;
  panel.send('click 1');
  t.match(await panel.waitLine(/^rx STATUS .*FROZEN/, 10000, mark), /text="FROZEN #\d+"/, 'the panel is told the picture is frozen');
  const r = await run;
  t.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { telemetry: { published: number } | null };
  t.ok(summary.telemetry && summary.telemetry.published > 0, `telemetry published ${summary.telemetry?.published} messages`);
  await sub.waitFor((m) => m.topic === 'sonomics/test-box/status' && m.json.state === 'offline', 10000, 'the offline status');
  const events = sub.on('events').map((m) => m.json.event);
  for (const e of ['session.start', 'model.loaded', 'score.freeze', 'session.stop']) t.ok(events.includes(e), `event ${e}`);
  t.ok(sub.on('telemetry').length >= 1, 'telemetry messages');
  checkPayloads(t, sub.seen, 'every payload');
  const audit = readFileSync(join(dir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as AuditEntry);
  t.ok(audit.some((e) => e.who.id === 'panel' && e.what === 'freeze'), 'the audit log names the panel for the freeze');
  t.ok(verifyAuditLog(join(dir, 'audit.jsonl')).ok, 'and its chain holds');
});
