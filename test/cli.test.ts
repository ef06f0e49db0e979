import t from 'tap';
import { runCli } from './helpers.js';

const run = runCli;

t.test('help', async (t) => {
  const r = await run(['--help']);
  t.equal(r.code, 0);
  t.match(r.stdout, /Usage: sonomics <command>/);
  t.match(r.stdout, /not for diagnosis/);
  const d = await run(['demo', '--help']);
  t.equal(d.code, 0);
  t.match(d.stdout, /--frames N/);
});

t.test('bad arguments give clear errors and exit code 2', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['frobnicate'], /unknown command "frobnicate"/],
    [['demo', '--frames', 'ten'], /--frames must be an integer/],
    [['demo', '--port', '99999'], /--port must be an integer in \[0, 65535\]/],
    [['demo', '--fps', '0'], /--fps must be a number/],
    [['train-segmenter', '--cohort', 'c.csv', '--out', 'o', '--box-negatives', '0.7'], /--box-negatives must be a number in \[0, 0\.5\] \(got "0\.7"\)/],
    [['train-segmenter', '--cohort', 'c.csv', '--out', 'o', '--refine-scale', '3,1.5'], /--refine-scale must be two numbers "A,B" with A < B \(got "3,1\.5"\)/],
    [['train-segmenter', '--cohort', 'c.csv', '--out', 'o', '--refine-scale', '1,x'], /--refine-scale must be two numbers "A,B"/],
    [['train-segmenter', '--cohort', 'c.csv', '--out', 'o', '--trial-of', 'models/segmenter'], /--trial-of DIR and --trial-folds K,\.\.\. go together/],
    [['train-segmenter', '--cohort', 'c.csv', '--out', 'o', '--refine-only'], /--refine-only is for a trial/],
    [['train-segmenter', '--cohort', 'c.csv', '--out', 'o', '--trial-of', 'models/segmenter', '--trial-folds', '1,,2'], /--trial-folds must be an integer in \[1, 20\]/],
    [['train-segmenter', '--cohort', 'c.csv', '--out', 'o', '--negatives', '1.5'], /--negatives must be a number in \[0, 0\.9\]/],
    [['train-segmenter', '--cohort', 'c.csv', '--out', 'o', '--refine-epochs', '0'], /--refine-epochs must be an integer in \[1, 1000\]/],
    [['train-segmenter', '--cohort', 'c.csv', '--out', 'o', '--trial-of', 'models/segmenter', '--trial-folds', '1,last'], /--trial-folds must be an integer in \[1, 20\]/],
    [['demo', '--bogus'], /Unknown option '--bogus'/],
    [['demo', '--config', '/nonexistent/sonomics.yaml'], /cannot read/],
  ];
  for (const [args, re] of cases) {
    const r = await run(args);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, re, args.join(' '));
    t.equal(r.stdout, '', 'nothing on stdout');
  }
  // A network address without an access token is a set-up error (test/overlay-security.test.ts has the rest).
  const host = await run(['demo', '--host', '0.0.0.0', '--frames', '5', '--headless', '--port', '0']);
  t.equal(host.code, 2);
  t.match(host.stderr, /overlay\.host 0\.0\.0\.0 is not a loopback address/);
});

t.test('demo --frames N --json prints one JSON document; logs go to stderr', async (t) => {
  const r = await run(['demo', '--frames', '90', '--headless', '--port', '0', '--json']);
  t.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout) as { frames: number; tracking: { maxErrorPx: number }; url: string; notice: string; pipeline: { stages: Record<string, { p50: number }> } };
  t.equal(s.frames + (s as unknown as { source: { dropped: number } }).source.dropped, 90);
  t.ok(s.tracking.maxErrorPx < 2, `tracking max error ${s.tracking.maxErrorPx}`);
  t.match(s.notice, /not for diagnosis/);
  t.same(Object.keys(s.pipeline.stages), ['layout', 'track', 'regions', 'features', 'risk', 'publish']);
  t.match(r.stderr, /sonomics overlay: http:\/\/127\.0\.0\.1:\d+\//);
});
