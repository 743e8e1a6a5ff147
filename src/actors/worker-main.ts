/**
 * The entry of every actor worker thread: attach the spine, load the actor modules, run
 * `onInit`, wait for the start, run the actors until told to exit, run `onExit`, report.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { figuresOf } from '../spine/actor-figures.js';
import { Spine, SpineAdapter, ThreadActivity } from '../spine/index.js';
import { bindThreadInstrumentation } from '../telemetry/instrumentation/index.js';
import { ACTOR_BRAND, Actor } from './actor.js';
import { ActorThread, type RunningActor } from './actor-thread.js';
import {
  type ActorAssignment,
  type ActorWorkerData,
  errorInfo,
  type FromWorker,
  type ToWorker,
  type WorkerActorReport,
} from './protocol.js';

const data = workerData as ActorWorkerData;
// Before any actor module loads (one may log as it loads): the thread's events go into the
// buffers the System made for it, on the spine's clock, with the process's level table.
bindThreadInstrumentation(data.instrumentation);
const port = parentPort!;
const post = (message: FromWorker) => port.postMessage(message);
const names = new Map<number, string>(Object.entries(data.names).map(([id, name]) => [Number(id), name]));
const spine = Spine.attach(data.spine);
const activity = new ThreadActivity(spine.control, data.worker);
port.on('message', (message: ToWorker) => {
  if (message.type === 'names') {
    for (const [id, name] of Object.entries(message.names)) names.set(Number(id), name);
    if (message.ack) post({ type: 'names-received' });
  } else if (message.type === 'timing-queue') {
    spine.attachTimingQueue(message.actor, message.buffer);
  }
});

async function load(spine: Spine, assignment: ActorAssignment): Promise<RunningActor> {
  const module = (await import(assignment.module)) as { default?: unknown };
  const ActorClass = module.default;
  if (typeof ActorClass !== 'function' || !(ActorClass.prototype instanceof Actor)) {
    // Statics are inherited: a class that extends any copy's Actor has the mark.
    if (
      typeof ActorClass === 'function' &&
      ActorClass !== Actor &&
      (ActorClass as { [ACTOR_BRAND]?: unknown })[ACTOR_BRAND] === true
    ) {
      throw new TypeError(
        "its default export extends the Actor of another copy of dorsal than the one running this thread: the module's `import 'dorsal'` resolves elsewhere (its logs, metrics and spans would go nowhere). Run the module and the thread from one dorsal; in dorsal's own repository, where tsx maps 'dorsal' to src/, run a TypeScript system through tsx (npx tsx src/cli/dorsal.ts run …) or the compiled one from dist/",
      );
    }
    throw new TypeError('its default export is not a class that extends Actor');
  }
  const actor = new (ActorClass as new (args: unknown) => Actor<unknown>)(assignment.args);
  if (typeof actor.name !== 'string' || actor.name.length === 0) {
    throw new TypeError('the actor has no name (declare `readonly name = "…"`)');
  }
  // Refused here, once: found missing by its first round, it crashed the thread, and a restart
  // crashed the same way, as many times as its restarts allow.
  if (typeof actor.loopBody !== 'function') {
    throw new TypeError(`actor '${actor.name}' has no loopBody method (the thread calls it over and over)`);
  }
  // NaN would make its thread park for ever; a negative one time every park out at once.
  const idle: unknown = actor.idleTimeoutMs;
  if (!(typeof idle === 'number' && idle >= 0)) {
    throw new TypeError(
      `actor '${actor.name}': idleTimeoutMs must be a number of ms from 0 (Infinity: woken by messages only), got ${String(idle)}`,
    );
  }
  // The names of the actors running when it was launched (none at the start, which checks them
  // all): an actor spawned later with one of them does not run. Reports, observers and the lake
  // tell actors by name.
  for (const [id, name] of names) {
    if (id !== assignment.id && name === actor.name) {
      throw new TypeError(
        `two actors are named '${name}' (ids ${id} and ${assignment.id}): name the later one otherwise`,
      );
    }
  }
  names.set(assignment.id, actor.name);
  const adapter = new SpineAdapter<unknown>(
    spine,
    assignment.id,
    actor.name,
    assignment.start,
    names,
    activity,
    figuresOf(assignment.figures),
  );
  return { id: assignment.id, actor, adapter };
}

async function main(): Promise<void> {
  const actors: RunningActor[] = [];
  for (const assignment of data.actors) {
    try {
      actors.push(await load(spine, assignment));
    } catch (error) {
      // Give back what the actors loaded so far hold, and let the thread end.
      for (const running of actors) running.adapter.close();
      post({ type: 'init-failed', module: assignment.module, error: errorInfo(error) });
      port.close();
      return;
    }
  }
  post({ type: 'loaded', actors: actors.map((a) => ({ id: a.id, name: a.actor.name })) });
  const thread = new ActorThread(spine, data.worker, actors, data.wait, activity);
  let stage: 'init' | 'run' | 'exit' = 'init';
  try {
    for (const running of actors) {
      thread.current = running;
      await running.actor.onInit(running.adapter);
    }
    thread.current = undefined;
    post({ type: 'initialized', actors: actors.map((a) => ({ id: a.id, name: a.actor.name })) });
    await thread.untilStarted();
    stage = 'run';
    await thread.run();
    stage = 'exit';
    for (const running of actors) {
      thread.current = running;
      await running.actor.onExit(running.adapter);
    }
  } catch (error) {
    // Busy until the system hears of the crash: its consumers, given back below, show no lag.
    activity.failing();
    const culprit = thread.current ?? actors[0]!;
    const stream = stage === 'run' ? culprit.adapter.currentStream : undefined;
    const positions = culprit.adapter.positions();
    const reports = actors.map(report);
    // Give back consumer entries and producer roles first: a restarted actor needs them.
    for (const running of actors) running.adapter.close();
    thread.close();
    post({
      positions,
      actors: reports,
      type: 'crashed',
      actor: culprit.id,
      name: culprit.actor.name,
      ...(stream === undefined ? {} : { stream }),
      error: errorInfo(error),
    });
    port.close();
    return;
  }
  for (const running of actors) running.adapter.close();
  thread.close();
  post({ type: 'exited', actors: actors.map(report) });
  port.close();
}

function report(running: RunningActor): WorkerActorReport {
  const positions = running.adapter.positions();
  return {
    id: running.id,
    name: running.actor.name,
    streams: running.adapter.stats(),
    timings: running.adapter.timingStats(),
    stoppedAt: positions.streams,
    timingsStoppedAt: positions.timings ?? {},
  };
}

await main();
