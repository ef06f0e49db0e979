// npm run bench: the demo pipeline (phantom -> layout -> track -> regions -> features -> risk ->
// publish -> overlay server with one WebSocket viewer) at 1280x720 / 30 and 60 fps, live, and
// the phantom's own render cost. Prints tables of medians, p99 and max, measured in one run.
import WebSocket from 'ws';
import { quantileSorted } from 'simple-statistics';
import { runDemo } from '../cli/demo.js';
import { resolveConfig } from '../core/config.js';
import { PhantomScanner } from '../device/phantom.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
/** Threads for the features stage (config pipeline.featureThreads); the default config's unless BENCH_FEATURE_THREADS is set. */
const featureThreads = Number(process.env.BENCH_FEATURE_THREADS ?? resolveConfig({}).pipeline.featureThreads);
const f = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '-');

function renderCost(): { p50: number; p99: number; max: number; n: number } {
  const p = new PhantomScanner();
  const out = new Uint8Array(1280 * 720), mask = new Uint8Array(p.layout.panes.bmode.rect.width * p.layout.panes.bmode.rect.height);
  for (let i = 0; i < 20; i++) p.render(i, out, mask); // warm
  const times: number[] = [];
  for (let i = 0; i < 300; i++) {
    const t0 = performance.now();
    p.render(1000 + i, out, mask);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { p50: quantileSorted(times, 0.5), p99: quantileSorted(times, 0.99), max: times[times.length - 1], n: times.length };
}

// Runs the demo itself (sonomics demo) for `seconds`, with one WebSocket viewer attached.
async function live(fps: number) {
  let received = 0, ws: WebSocket | undefined;
  const summary = await runDemo({
    config: resolveConfig({ source: { phantom: { fps } }, pipeline: { featureThreads }, overlay: { port: 0 } }), frames: Math.round(fps * seconds), headless: true,
    log: (line) => {
      const m = /(http:\/\/\S+)/.exec(line);
      if (!m) return;
      ws = new WebSocket(m[1].replace('http', 'ws') + 'ws');
      ws.on('message', (_d, binary) => { if (binary) received++; });
    },
  });
  // The scanner's own running time: every frame it produced, delivered or dropped.
  const elapsed = (summary.source.delivered + summary.source.dropped) / fps;
  ws?.close();
  return { fps, elapsed, stats: summary.pipeline, overlay: summary.overlay, received, source: summary.source, tracking: summary.tracking };
}

async function main() {
  console.log(`sonomics bench: demo pipeline at 1280x720, ${seconds} s per rate, features on ${featureThreads} thread(s), node ${process.version}, ${new Date().toISOString()}`);
  const r = renderCost();
  console.log('\nPhantom render, 1280x720 frame (ms, %d frames)', r.n);
  console.log('| p50 | p99 | max |\n|---:|---:|---:|');
  console.log(`| ${f(r.p50)} | ${f(r.p99)} | ${f(r.max)} |`);
  const runs = [];
  for (const fps of [30, 60]) runs.push(await live(fps));
  for (const run of runs) {
    const s = run.stats;
    console.log(`\nLive pipeline at ${run.fps} fps (ms)`);
    console.log('| stage | p50 | p99 | max |\n|---|---:|---:|---:|');
    for (const [name, l] of Object.entries(s.stages)) console.log(`| ${name} | ${f(l.p50)} | ${f(l.p99)} | ${f(l.max)} |`);
    console.log(`| end-to-end display (arrival -> overlay published) | ${f(s.endToEnd.display.p50)} | ${f(s.endToEnd.display.p99)} | ${f(s.endToEnd.display.max)} |`);
    console.log(`| end-to-end scores (arrival -> score published) | ${f(s.endToEnd.scores.p50)} | ${f(s.endToEnd.scores.p99)} | ${f(s.endToEnd.scores.max)} |`);
    console.log(`| JPEG encode (overlay) | ${f(run.overlay.encode.p50)} | ${f(run.overlay.encode.p99)} | ${f(run.overlay.encode.max)} |`);
  }
  console.log('\nSustained rates');
  console.log('| target fps | source delivered | source dropped | displayed fps | scored fps | viewer fps | dropped display/features/risk | encode dropped | viewer skipped |');
  console.log('|---:|---:|---:|---:|---:|---:|---|---:|---:|');
  for (const run of runs) {
    const s = run.stats;
    console.log(`| ${run.fps} | ${run.source.delivered} | ${run.source.dropped} | ${f(s.displayed / run.elapsed)} | ${f(s.scored / run.elapsed)} | ${f(run.received / run.elapsed)} | ${s.dropped.display}/${s.dropped.features}/${s.dropped.risk} | ${run.overlay.encodeDropped} | ${run.overlay.skipped} |`);
  }
  trackingTable(runs);
}

function trackingTable(runs: Array<{ fps: number; tracking: { frames: number; meanErrorPx: number; maxErrorPx: number } }>) {
  console.log('\nTracking vs phantom truth (lesion centroid, pane pixels)');
  console.log('| target fps | tracked frames | mean error px | max error px |\n|---:|---:|---:|---:|');
  for (const r of runs) console.log(`| ${r.fps} | ${r.tracking.frames} | ${f(r.tracking.meanErrorPx)} | ${f(r.tracking.maxErrorPx)} |`);
}

main().catch((e) => { console.error(e); process.exit(1); });
