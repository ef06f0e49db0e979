// MQTT telemetry over TLS with a client certificate (CA, server and client certificates made by
// openssl for the test), and with a user name and password from the environment or a secret file.
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { TelemetryPublisher, type TelemetryOptions } from '../device/telemetry/publisher.js';
import { within } from './helpers.js';
import { checkPayloads, startBroker, Subscriber, PREFIX, publisher as testPublisher, tmp } from './mosquitto.js';

/** The shared test publisher, with this file's timings. */
const publisher = (t: Test, o: Partial<TelemetryOptions> & Pick<TelemetryOptions, 'url' | 'deviceId'>) => testPublisher(t, { connectTimeoutMs: 3000, stopTimeoutMs: 1000, ...o });

/** 'connect', or the first connection error's message, within ms. */
function outcome(p: TelemetryPublisher, ms: number): Promise<string> {
  return within(new Promise<string>((resolve) => {
    p.once('connect', () => resolve('connect'));
    p.once('connectError', (e: Error) => resolve(e.message));
  }), ms, `${p.deviceId} to connect or fail`).catch((e: Error) => e.message);
}

t.test('TLS: the box connects with its client certificate to a broker signed by the configured CA', async (t) => {
  const broker = await startBroker(t, { tls: true });
  if (!broker) return;
  const c = broker.certs!;
  const tls = { ca: c.ca, cert: c.clientCert, key: c.clientKey };
  t.match(broker.url, /^mqtts:\/\/127\.0\.0\.1:\d+$/);
  const sub = await Subscriber.open(broker.url, `${PREFIX}/#`, { ca: [readFileSync(c.ca)], cert: readFileSync(c.clientCert), key: readFileSync(c.clientKey), rejectUnauthorized: true });
  t.teardown(() => sub.close());

  const good = publisher(t, { url: broker.url, deviceId: 'box-tls', tls });
  const ok = outcome(good, 10000);
  good.start();
  t.equal(await ok, 'connect', 'connected over TLS with the client certificate');
  await sub.waitFor((m) => m.json.kind === 'telemetry', 5000, 'telemetry over TLS');
  const birth = await sub.waitFor((m) => m.json.state === 'online', 5000, 'birth over TLS');
  t.equal(birth.json.deviceId, 'box-tls');

  const wrongCa = publisher(t, { url: broker.url, deviceId: 'box-wrong-ca', tls: { ...tls, ca: c.wrongCa } });
  const refused = outcome(wrongCa, 10000);
  wrongCa.start();
  t.match(await refused, /self[- ]signed|unable to (verify|get)|certificate/i, 'a broker whose certificate the configured CA did not sign is refused');
  t.equal(wrongCa.connected, false);

  const noCert = publisher(t, { url: broker.url, deviceId: 'box-no-cert', tls: { ca: c.ca } });
  const noCertOutcome = outcome(noCert, 10000);
  noCert.start();
  t.not(await noCertOutcome, 'connect', 'without a client certificate the broker refuses the box');
  t.equal(noCert.connected, false);

  t.throws(() => new TelemetryPublisher({ url: broker.url.replace('mqtts', 'mqtt'), deviceId: 'x', tls, spool: { dir: join(tmp(t), 's') } }), /not mqtts/);
  t.throws(() => new TelemetryPublisher({ url: broker.url, deviceId: 'x', tls: { ca: c.ca, cert: c.clientCert }, spool: { dir: join(tmp(t), 's2') } }), /together/);
  t.throws(() => new TelemetryPublisher({ url: broker.url, deviceId: 'x', tls: { ca: join(c.dir, 'missing.pem') }, spool: { dir: join(tmp(t), 's3') } }), /telemetry\.tls\.ca: cannot read/);
  await good.stop();
  checkPayloads(t, sub.seen, 'TLS');
});

t.test('user name and password: from SONOMICS_MQTT_PASSWORD or a secret file (mode 600); a wrong one is refused', async (t) => {
  const broker = await startBroker(t, { users: { 'box-7': 's3cret-Pa55', watcher: 'w-pass-123' } });
  if (!broker) return;
  const sub = await Subscriber.open(broker.url, `${PREFIX}/#`, { username: 'watcher', password: 'w-pass-123' });
  t.teardown(() => sub.close());

  const anon = publisher(t, { url: broker.url, deviceId: 'box-anon', env: {} });
  const anonOutcome = outcome(anon, 10000);
  anon.start();
  t.match(await anonOutcome, /not authorized|bad user/i, 'anonymous clients are refused by this broker');

  const fromEnv = publisher(t, { url: broker.url, deviceId: 'box-env', username: 'box-7', env: { SONOMICS_MQTT_PASSWORD: 's3cret-Pa55' } });
  const envOutcome = outcome(fromEnv, 10000);
  fromEnv.start();
  t.equal(await envOutcome, 'connect', 'password from SONOMICS_MQTT_PASSWORD');

  const dir = tmp(t);
  const file = join(dir, 'mqtt-password');
  writeFileSync(file, 's3cret-Pa55\n', { mode: 0o600 });
  const fromFile = publisher(t, { url: broker.url, deviceId: 'box-file', env: { SONOMICS_MQTT_USERNAME: 'box-7' }, passwordFile: file });
  const fileOutcome = outcome(fromFile, 10000);
  fromFile.start();
  t.equal(await fileOutcome, 'connect', 'password from the secret file, user name from SONOMICS_MQTT_USERNAME');

  const wrong = publisher(t, { url: broker.url, deviceId: 'box-wrong', username: 'box-7', env: { SONOMICS_MQTT_PASSWORD: 'guess' } });
  const wrongOutcome = outcome(wrong, 10000);
  wrong.start();
  t.match(await wrongOutcome, /not authorized|bad user/i, 'a wrong password is refused');
  t.equal(wrong.connected, false);

  chmodSync(file, 0o644);
  t.throws(() => new TelemetryPublisher({ url: broker.url, deviceId: 'x', username: 'box-7', passwordFile: file, env: {}, spool: { dir: join(dir, 's') } }), /chmod 600/);
  t.throws(() => new TelemetryPublisher({ url: broker.url, deviceId: 'x', env: { SONOMICS_MQTT_PASSWORD: 'p' }, spool: { dir: join(dir, 's2') } }), /no username/);
  await sub.waitFor((m) => m.json.deviceId === 'box-file' && m.json.state === 'online', 5000, 'birth of box-file');
  checkPayloads(t, sub.seen, 'password');
});
