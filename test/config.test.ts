import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, loadConfig, resolveConfig } from '../core/config.js';
import { errorOf } from './helpers.js';


const dir = mkdtempSync(join(tmpdir(), 'sonomics-config-'));
const file = (name: string, text: string) => { const p = join(dir, name); writeFileSync(p, text); return p; };

t.test('defaults need no file', async (t) => {
  const c = loadConfig();
  t.equal(c.overlay.host, '127.0.0.1');
  t.equal(c.overlay.port, 8080);
  t.same(c.pipeline.ringsMm, [3, 5, 8]);
  t.equal(c.source.phantom.width, 1280);
  t.equal(c.source.phantom.fps, 30);
  t.same(c.models, ['busi-malignancy']);
});

t.test('JSON and YAML files, partial, defaults filled', async (t) => {
  const j = loadConfig(file('a.json', JSON.stringify({ overlay: { port: 9000 } })));
  t.equal(j.overlay.port, 9000);
  t.equal(j.overlay.host, '127.0.0.1');
  const y = loadConfig(file('b.yaml', 'pipeline:\n  ringsMm: [2, 4]\nsource:\n  phantom:\n    fps: 60\n'));
  t.same(y.pipeline.ringsMm, [2, 4]);
  t.equal(y.source.phantom.fps, 60);
  t.equal(y.pipeline.binWidth, 25);
  t.same(y.perfusion, { enabled: true, model: 'lognormal', refitIntervalS: 1, saturationLimit: 0.05 }, 'perfusion defaults: on, lognormal, no linearisation unless configured');
  const lin = resolveConfig({ perfusion: { linearisation: { dynamicRangeDb: 45 }, reference: { x: 100, y: 40, radiusMm: 4 } } });
  t.same(lin.perfusion.linearisation, { dynamicRangeDb: 45 });
  t.equal(resolveConfig({ perfusion: { linearisation: false } }).perfusion.linearisation, false);
});

t.test('invalid configs are refused with the key and the reason', async (t) => {
  const bad = (obj: unknown, re: RegExp) => t.throws(() => resolveConfig(obj, 'test'), re);
  bad({ overlay: { port: 70000 } }, /overlay\.port: must be <= 65535/);
  bad({ overlay: { prot: 1 } }, /overlay\.prot: unknown key/);
  bad({ pipeline: { ringsMm: [5, 3] } }, /pipeline\.ringsMm: distances must increase/);
  bad({ pipeline: { tracker: { lostBelow: 0.9, uncertainBelow: 0.5 } } }, /pipeline\.tracker\.lostBelow/);
  bad({ source: { phantom: { fps: 'fast' } } }, /source\.phantom\.fps: must be number/);
  bad({ source: { type: 'webcam' } }, /source\.type: must be equal to one of the allowed values/);
  bad({ perfusion: { model: 'spline' } }, /perfusion\.model: must be equal to one of the allowed values/);
  bad({ perfusion: { linearisation: { dynamicRangeDb: 500 } } }, /perfusion\.linearisation/);
  bad({ perfusion: { reference: { x: 10, y: 10, radiusMm: 90 } } }, /perfusion\.reference\.radiusMm: must be <= 20/);
  bad({ perfusion: { saturationLimit: 1 } }, /perfusion\.saturationLimit: must be < 1/);
  // Several problems are all named.
  const e = errorOf(() => resolveConfig({ overlay: { port: -1, jpegQuality: 5 } }));
  t.ok(e instanceof ConfigError && /overlay\.port/.test(e.message) && /overlay\.jpegQuality/.test(e.message), e?.message ?? "no error");
  t.throws(() => loadConfig(file('c.json', '{"overlay": ')), /not valid JSON/);
  t.throws(() => loadConfig(file('d.yaml', 'overlay: [unclosed')), /not valid YAML/);
  t.throws(() => loadConfig(file('e.yaml', '- 1\n- 2\n')), /top level/);
  t.throws(() => loadConfig(file('f.toml', 'a = 1')), /unsupported extension/);
  t.throws(() => loadConfig(join(dir, 'missing.json')), /cannot read/);
});

t.test('source keys: the layout must be a profile of the config, paths and capture options come together', async (t) => {
  const profile = { screen: { width: 640, height: 480 }, panes: { bmode: { x: 0, y: 0, width: 300, height: 400 }, contrast: { x: 320, y: 0, width: 300, height: 400 } }, calibration: { mmPerPixel: 0.1 } };
  t.equal(resolveConfig({ source: { type: 'capture', layout: 'p' }, layouts: { p: profile } }).source.layout, 'p');
  const bad = (obj: unknown, re: RegExp) => t.match(errorOf(() => resolveConfig(obj, 'test'))?.message, re);
  bad({ source: { layout: 'nope' } }, /source\.layout: no layout profile "nope" in layouts \(none defined\)/);
  bad({ source: { layout: 'constructor' }, layouts: { p: profile } }, /source\.layout: no layout profile "constructor" in layouts \(p\)/);
  bad({ source: { type: 'dicom' } }, /source\.dicom\.path: required when source\.type is "dicom"/);
  bad({ source: { type: 'replay' } }, /source\.replay\.path: required/);
  bad({ source: { capture: { restartInitialMs: 500, restartMaxMs: 100 } } }, /source\.capture\.restartMaxMs: must be >= restartInitialMs/);
  bad({ source: { capture: { width: 640 } } }, /source\.capture: give width and height together/);
  bad({ source: { layout: 'p' }, layouts: null }, /layouts: must be an object mapping profile names to layout profiles; source\.layout: no layout profile "p"/);
  bad({ source: { type: 'v4l2' } }, /source\.type: must be equal to one of the allowed values/);
});
