// The perfusion worker thread: analyses a session's curves (analysis.ts) off the main thread, so
// the display path never waits for a model fit. One message in, one out: {analysis} or {error}.
import { parentPort } from 'node:worker_threads';
import { analyseCurves, type CurvesInput } from './analysis.js';

if (!parentPort) throw new Error('core/perfusion/worker.js runs as a worker thread (PerfusionAnalyzer starts it)');
const port = parentPort;
port.on('message', (input: CurvesInput) => {
  try {
    port.postMessage({ analysis: analyseCurves(input) });
  } catch (e) {
    port.postMessage({ error: (e as Error).message });
  }
});
