// Overlay security: bind rules, the access token (environment or secret file, never the config),
// Origin, TLS, and the rate limit on page messages.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import WebSocket from 'ws';
import { ConfigError, resolveConfig } from '../core/config.js';
import { Pipeline } from '../core/pipeline.js';
import { PhantomScanner } from '../device/phantom.js';
import { checkBinding, resolveToken } from '../web-overlay/auth.js';
import { OverlayServer } from '../web-overlay/server.js';
import { errorOf, runCli, until } from './helpers.js';

const TOKEN = 'test-token-0123456789abcdef';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'sonomics-sec-'));
}

async function serve(t: Test, opts: Partial<ConstructorParameters<typeof OverlayServer>[0]> = {}) {
  const phantom = new PhantomScanner({ seed: 1, width: 640, height: 360 });
  const pipeline = new Pipeline({ layout: phantom.layout });
  const server = new OverlayServer({ pipeline, port: 0, ...opts });
  const url = await server.listen();
  t.teardown(() => server.close());
  return { server, url, wsUrl: url.replace(/^http/, 'ws') + 'ws' };
}

/** Opens a socket and says how it went: 'open' (with the chosen subprotocol) or the HTTP status of the refusal. */
function attempt(url: string, protocols: string[] = [], opts: WebSocket.ClientOptions = {}): Promise<{ result: string; protocol?: string; ws?: WebSocket }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, protocols, opts);
    ws.once('unexpected-response', (_q, res) => { resolve({ result: String(res.statusCode) }); ws.terminate(); });
    ws.once('open', () => resolve({ result: 'open', protocol: ws.protocol, ws }));
    ws.once('error', (e) => resolve({ result: e.message }));
  });
}

t.test('bind: loopback needs nothing; any other address needs a token, and says where it comes from', async (t) => {
  const phantom = new PhantomScanner({ seed: 1, width: 640, height: 360 });
  const pipeline = new Pipeline({ layout: phantom.layout });
  for (const host of ['0.0.0.0', '192.168.1.5', '::']) {
    const e = errorOf(() => new OverlayServer({ pipeline, host }));
    t.match(e?.message, new RegExp(`overlay.host ${host.replace(/\./g, '\\.')} is not a loopback address.*needs an access token.*SONOMICS_TOKEN.*--token-file or overlay.tokenFile.*never goes in the config file`), host);
  }
  t.doesNotThrow(() => checkBinding('127.0.0.1', undefined));
  t.doesNotThrow(() => checkBinding('::1', undefined));
  t.doesNotThrow(() => checkBinding('0.0.0.0', TOKEN), 'a token allows any address');
});

t.test('the token: SONOMICS_TOKEN first, else a secret file kept private; bad tokens refused by name', async (t) => {
  const dir = tmp();
  const file = join(dir, 'token');
  writeFileSync(file, `${TOKEN}\n`);
  chmodSync(file, 0o600);
  t.equal(resolveToken({ env: {}, tokenFile: file }), TOKEN, 'from the file, trimmed');
  t.equal(resolveToken({ env: { SONOMICS_TOKEN: 'from-the-environment-1234' }, tokenFile: file }), 'from-the-environment-1234', 'the environment wins');
  t.equal(resolveToken({ env: {} }), undefined, 'none');
  chmodSync(file, 0o644);
  t.match(errorOf(() => resolveToken({ env: {}, tokenFile: file }))?.message, /token file .*: readable by group or others \(mode 644\); chmod 600 it/);
  t.match(errorOf(() => resolveToken({ env: {}, tokenFile: join(dir, 'missing') }))?.message, /token file .*missing: cannot read it \(ENOENT\)/);
  t.match(errorOf(() => resolveToken({ env: { SONOMICS_TOKEN: 'short' } }))?.message, /SONOMICS_TOKEN: the token must be 16 to 256 characters .*got 5 characters/);
  t.match(errorOf(() => resolveToken({ env: { SONOMICS_TOKEN: 'has a space inside it' } }))?.message, /with white space inside/);
  // The config may name the file, never hold the token.
  const e = errorOf(() => resolveConfig({ overlay: { token: TOKEN } }));
  t.ok(e instanceof ConfigError);
  t.match(e?.message, /overlay\.token: a secret never goes in the config file: set SONOMICS_TOKEN/);
  t.equal(resolveConfig({ overlay: { tokenFile: file } }).overlay.tokenFile, file);
});

t.test('the command line refuses a network address without a token, and names the fix (exit 2)', async (t) => {
  const r = await runCli(['demo', '--headless', '--host', '0.0.0.0', '--port', '0', '--frames', '1'], 60000);
  t.equal(r.code, 2, r.stderr);
  t.match(r.stderr, /not a loopback address.*SONOMICS_TOKEN/);
  const dir = tmp();
  const file = join(dir, 'token');
  writeFileSync(file, TOKEN);
  chmodSync(file, 0o640);
  const r2 = await runCli(['demo', '--headless', '--host', '0.0.0.0', '--port', '0', '--frames', '1', '--token-file', file], 60000);
  t.equal(r2.code, 2, r2.stderr);
  t.match(r2.stderr, /readable by group or others/);
});

t.test('with a token: the socket and /api/status need it; header or subprotocol; the page itself is public', async (t) => {
  const { url, wsUrl, server } = await serve(t, { token: TOKEN });
  t.equal((await attempt(wsUrl)).result, '401', 'no token');
  t.equal((await attempt(wsUrl, ['sonomics.v3', 'bearer.wrong-token-0000000000'])).result, '401', 'wrong token');
  const viaHeader = await attempt(wsUrl, ['sonomics.v3'], { headers: { Authorization: `Bearer ${TOKEN}` } });
  t.equal(viaHeader.result, 'open', 'Authorization header');
  const viaProtocol = await attempt(wsUrl, ['sonomics.v3', `bearer.${TOKEN}`]);
  t.equal(viaProtocol.result, 'open', 'bearer subprotocol (what a browser page sends)');
  t.equal(viaProtocol.protocol, 'sonomics.v3', 'the chosen subprotocol is the protocol, never the token');
  viaHeader.ws!.close();
  viaProtocol.ws!.close();
  t.equal((await fetch(url + 'api/status')).status, 401);
  t.equal((await fetch(url + 'api/status', { headers: { Authorization: `Bearer ${TOKEN}` } })).status, 200);
  t.equal((await fetch(url)).status, 200, 'the page (no data in it) loads without the token');
  t.equal(server.stats().refused, 2, 'refusals counted');
});

t.test('Origin: pages from other sites are refused (403); configured origins are let in', async (t) => {
  const { url, wsUrl } = await serve(t, { allowedOrigins: ['https://tablet.ward7.example'] });
  t.equal((await attempt(wsUrl, [], { origin: 'http://evil.example' })).result, '403', 'other origin refused');
  const own = await attempt(wsUrl, [], { origin: url.replace(/\/$/, '') });
  t.equal(own.result, 'open', 'own origin');
  own.ws!.close();
  const allowed = await attempt(wsUrl, [], { origin: 'https://tablet.ward7.example' });
  t.equal(allowed.result, 'open', 'configured origin');
  allowed.ws!.close();
});

t.test('TLS: https and wss from configured certificate files', async (t) => {
  const dir = tmp();
  const key = join(dir, 'key.pem'), cert = join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore', timeout: 30000 });
  const { readFileSync } = await import('node:fs');
  const { url, wsUrl } = await serve(t, { tls: { cert: readFileSync(cert), key: readFileSync(key) }, token: TOKEN });
  t.match(url, /^https:\/\/127\.0\.0\.1:\d+\/$/);
  t.match(wsUrl, /^wss:/);
  const ca = readFileSync(cert);
  const ok = await attempt(wsUrl, ['sonomics.v3', `bearer.${TOKEN}`], { ca });
  t.equal(ok.result, 'open', 'wss with the token');
  const hello = await new Promise<Record<string, unknown>>((resolve) => ok.ws!.once('message', (d) => resolve(JSON.parse(String(d)))));
  t.equal(hello.type, 'hello');
  ok.ws!.close();
  const untrusted = await attempt(wsUrl, ['sonomics.v3', `bearer.${TOKEN}`]);
  t.match(untrusted.result, /self[- ]signed|certificate/i, 'a client that does not trust the certificate does not connect');
  // A plain-http client gets nothing from the TLS port.
  const plain = await fetch(url.replace('https', 'http')).then((r) => String(r.status), (e: Error) => e.message);
  t.not(plain, '200');
});

t.test('rate limit: a flood of messages is cut off with one error a second; the page carries on', async (t) => {
  const { wsUrl, server } = await serve(t, { controlRate: { perSecond: 5, burst: 10 } });
  const ws = new WebSocket(wsUrl, ['sonomics.v3']);
  const text: Array<Record<string, unknown>> = [];
  ws.on('message', (d, bin) => { if (!bin) text.push(JSON.parse(String(d))); });
  await new Promise((r) => ws.once('open', r));
  for (let i = 0; i < 60; i++) ws.send(JSON.stringify({ type: 'ping', id: `p${i}` }));
  await until(() => text.filter((m) => m.type === 'ack').length >= 10 && text.some((m) => m.type === 'error'), 3000, 'acks and the rate-limit error');
  const acks = text.filter((m) => m.type === 'ack').length;
  const errors = text.filter((m) => m.type === 'error');
  t.ok(acks >= 10 && acks <= 12, `${acks} of 60 answered (burst 10)`);
  t.equal(errors.length, 1, 'one rate-limit error, not one per message');
  t.match(errors[0].error, /^rate limited: at most 5 messages a second \(bursts of 10\)/);
  t.ok(server.stats().rateLimited >= 48, `${server.stats().rateLimited} dropped and counted`);
  await new Promise((r) => setTimeout(r, 600));
  ws.send(JSON.stringify({ type: 'ping', id: 'later' }));
  await until(() => text.some((m) => m.id === 'later'), 8000, 'answered after a pause');
  t.equal(ws.readyState, WebSocket.OPEN);
  ws.close();
});
