/** Runs the instrumentation bench in this worker and posts the results. */
import { parentPort, workerData } from 'node:worker_threads';
import { measureInstrumentation } from './tasks.js';

parentPort!.postMessage(await measureInstrumentation((workerData as { quick: boolean }).quick));
