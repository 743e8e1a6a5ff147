/** Runs the micro bench in this worker (whose environment picked the queue's orderings) and posts the results. */
import { parentPort, workerData } from 'node:worker_threads';
import { measureMicro } from './micro.js';

parentPort!.postMessage(await measureMicro((workerData as { quick: boolean }).quick));
