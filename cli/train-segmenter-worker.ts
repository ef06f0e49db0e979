// A worker thread of `sonomics train-segmenter`: reads its training images, trains one network
// (seeded, one thread) and posts the weights back. Progress per epoch.
import { parentPort, workerData } from 'node:worker_threads';
import { readCohort } from '../core/cohort.js';
import { trainUNet, type TrainingImage } from '../core/segment/train.js';
import { loadTrainingImages, phantomTrainingImages, type TrainJob } from './train-segmenter.js';

const job = workerData as TrainJob;
try {
  const cohort = readCohort(job.cohort, { labelColumn: job.labelColumn });
  const loaded = await loadTrainingImages(cohort, job.train);
  const images = [...job.train.map((i) => loaded[i] as TrainingImage), ...phantomTrainingImages(job.phantomImages)];
  const weights = await trainUNet(images, job.options, (r) => parentPort!.postMessage({ type: 'epoch', ...r }));
  parentPort!.postMessage({ type: 'done', weights });
} catch (e) {
  parentPort!.postMessage({ type: 'error', message: (e as Error).message });
}
