import type { Worker } from 'node:worker_threads';
import { ConfigError } from '../errors.js';
import { checkOptionNames } from '../options.js';
import { type ConsumerStats, type WaitStrategyName, waitStrategyNamed } from '../queues/index.js';
import { actorConsumerOwner, committedFigures, createFigures, figuresOf } from '../spine/actor-figures.js';
import {
  type AdapterPositions,
  type AdapterStart,
  MAX_WORKERS,
  Phase,
  Spine,
  type SpineDefinition,
  type StreamSpecs,
} from '../spine/index.js';
import {
  createThreadBuffers,
  releaseThreadBuffers,
  type ThreadBuffersDescriptor,
  ThreadBuffersReader,
} from '../telemetry/instrumentation/index.js';
import {
  type AttachedActor,
  type PersistReport,
  type SystemAttachment,
  type SystemCounts,
  systemOptionHandler,
} from './attachments.js';
import { ActorCrashedError, ActorModuleError, SystemStateError } from './errors.js';
import { actorModuleHref, launchActorWorker } from './launch.js';
import { mergeReports, type RunEnd } from './merge-reports.js';
import type { FromWorker, ToWorker, WorkerActorReport } from './protocol.js';
import { untilQuiet } from './quiescence.js';
import {
  checkInstrumentationCapacities,
  checkSpawnOptions,
  checkStopTimeouts,
  MAX_TIMEOUT_MS,
  RUN_OPTIONS,
  type RunOptions,
  SPINE_OPTIONS,
  type SpawnOptions,
  SYSTEM_OPTIONS,
  type SystemOptions,
  type SystemReport,
} from './system-options.js';
import { systemThreadBuffers } from './thread-buffers.js';

interface ActorEntry {
  readonly id: number;
  readonly module: string;
  /** The name of its thread. */
  readonly thread: string;
  readonly options: SpawnOptions;
  restartsLeft: number;
  name?: string;
  /** Its current incarnation's figures (see `SpineAdapter`), read if its thread ends unreported. */
  figures?: SharedArrayBuffer;
}

interface ThreadState {
  readonly index: number;
  readonly name: string;
  readonly actors: ActorEntry[];
  /** Its instrumentation buffers: every incarnation of the thread records into them. */
  readonly buffers: ThreadBuffersDescriptor;
  wait: WaitStrategyName;
  worker?: Worker;
  status: 'pending' | 'starting' | 'running' | 'exited' | 'crashed';
  report?: readonly WorkerActorReport[];
  initialized?: Promise<void>;
  /** Resolves once its current incarnation's actors are loaded and named, or it failed or ended first. */
  loaded?: Promise<void>;
  exit?: Promise<void>;
  ended?: boolean;
  /**
   * Restarts under way (between a crash and the relaunch that replaces it): a count, not a flag,
   * since a relaunch that crashes in its `onInit` begins the next restart before its own ends.
   */
  restarting: number;
  /**
   * Terminated by the system itself: by the stop (which names it in `terminated`), or by the abort
   * of a start that failed. Its exit is no crash.
   */
  terminatedBy?: 'stop' | 'abort' | 'start timeout';
  /** Resolves `start`'s wait for this thread to have the actors' names. */
  namesReceived?: () => void;
  /**
   * Where its current incarnation's consumers began: a restart resumes from there what the
   * crashed incarnation never opened (see `resumeAt`).
   */
  start?: AdapterStart;
  /** Whether its current incarnation reported what its actors did (at its exit or its crash). */
  reported?: boolean;
  /** Whether its current incarnation's actors all ran `onInit` (none ran a loop before). */
  ran?: boolean;
  /** What earlier incarnations of the thread's actors did, reported at their crash. */
  readonly earlier: WorkerActorReport[];
}

type State = 'created' | 'starting' | 'running' | 'stopping' | 'stopped';

/** The control block's last worker word is the attachments' (the persister's thread parks on it). */
const ATTACHMENT_WORKER = MAX_WORKERS - 1;

/** How long a thread that reported its exit may take to end before it is ended (see `launch`). */
const EXITED_GRACE_MS = 500;

/**
 * Runs actors on worker threads around one spine: spawn by module URL, start, stop gracefully.
 *
 * @example
 * const system = new System(spine);
 * system.spawn(new URL('./feed.js', import.meta.url));
 * system.spawn(new URL('./strategy.js', import.meta.url));
 * const report = await system.run({ seconds: 5 });   // rejects naming the actor if one crashed
 */
export class System<D extends SpineDefinition<StreamSpecs>> {
  readonly spine: Spine;
  private readonly options: SystemOptions;
  private readonly actors: ActorEntry[] = [];
  private readonly threads = new Map<string, ThreadState>();
  private readonly crashes: ActorCrashedError[] = [];
  /** What runs beside the actors, by system option (the persister). */
  private readonly attachments = new Map<string, SystemAttachment>();
  /** This thread's instrumentation buffers, and where they stood when the system was made. */
  private readonly ownBuffers: ReturnType<typeof systemThreadBuffers>;
  /** The first crash that was not healed by a restart: it stops the system and fails `run`. */
  private fatal?: ActorCrashedError;
  private state: State = 'created';
  private stopping?: Promise<SystemReport>;
  private starting?: Promise<void>;
  private wakeOnCrash?: () => void;
  /** Threads a stop terminated because their start hung (see `startEnded`). */
  private readonly terminatedAtStart: string[] = [];
  private askStop?: () => void;
  /** Whether the system terminated a thread of its own accord (which may have left a claim open). */
  private terminatedSome = false;
  /** While the attachments start: gives their start up (see `startAttachmentsOrGiveUp`). */
  private giveUpAttaching?: (why: 'timeout' | 'stop') => void;
  /** The launch of the last actor spawned after the start, while under way (see `launchLate`). */
  private lateLaunches: Promise<void> | undefined;
  /**
   * Resolved by the first `stop()` after the start began: ends the wait of every `run()` under
   * way (of one still starting too), not only of the last one called.
   */
  private readonly stopAsked = new Promise<void>((resolve) => {
    this.askStop = resolve;
  });
  private readonly crashed = new Promise<void>((resolve) => {
    this.wakeOnCrash = resolve;
  });

  constructor(definition: D, options: SystemOptions = {}) {
    checkOptionNames(options, SYSTEM_OPTIONS, 'System option');
    if (options.spine !== undefined) checkOptionNames(options.spine, SPINE_OPTIONS, 'System option', 'spine');
    if (options.instrumentation !== undefined) checkInstrumentationCapacities(options.instrumentation);
    checkStopTimeouts(options);
    for (const [name, value] of Object.entries(options ?? {})) {
      if (value !== undefined) systemOptionHandler(name)?.check(value);
    }
    this.spine = Spine.create(definition, options.spine);
    this.options = options;
    this.ownBuffers = systemThreadBuffers(this.spine.control.clockBaseNs, options.instrumentation);
  }

  /** Registers an actor module; after `start`, launches it at once (its consumers start at the head). */
  spawn(
    module: URL | string,
    options: SpawnOptions = {},
  ): { readonly id: number; readonly ready: Promise<void> } {
    if (this.state === 'stopping' || this.state === 'stopped')
      throw new SystemStateError('cannot spawn: the system is stopping');
    if (this.state === 'starting') {
      throw new SystemStateError(
        'cannot spawn while start() is under way: spawn before start(), or await it and spawn then (the actor starts at once)',
      );
    }
    checkSpawnOptions(options);
    const id = this.actors.length;
    const threadName = options.thread ?? this.defaultThreadName(id);
    const entry: ActorEntry = {
      id,
      module: actorModuleHref(module),
      thread: threadName,
      options,
      restartsLeft: options.restarts ?? 0,
    };
    waitStrategyNamed(options.wait ?? 'adaptive');
    let thread = this.threads.get(threadName);
    const wait = options.wait ?? thread?.wait ?? 'adaptive';
    if (thread !== undefined && options.wait !== undefined && thread.wait !== options.wait) {
      throw new ConfigError(
        `thread '${threadName}' already waits with '${thread.wait}', not '${options.wait}'`,
      );
    }
    if (thread !== undefined && thread.status !== 'pending') {
      throw new SystemStateError(`thread '${threadName}' is already running: spawn onto a new thread name`);
    }
    // A crash restarts its whole thread, which the other actors on it would not survive.
    const restarting = thread?.actors.find((a) => a.restartsLeft > 0);
    if (thread !== undefined && ((options.restarts ?? 0) > 0 || restarting !== undefined)) {
      throw new ConfigError(
        `thread '${threadName}' would be shared by an actor with restarts: an actor spawned with 'restarts' runs on a thread of its own`,
      );
    }
    if (thread === undefined) {
      if (this.threads.size >= ATTACHMENT_WORKER)
        throw new ConfigError(`a system runs at most ${ATTACHMENT_WORKER} threads`);
      thread = {
        index: this.threads.size,
        name: threadName,
        actors: [],
        buffers: createThreadBuffers({
          ...this.options.instrumentation,
          name: threadName,
          clockBaseNs: this.spine.control.clockBaseNs,
        }),
        status: 'pending',
        wait,
        earlier: [],
        restarting: 0,
      };
      this.threads.set(threadName, thread);
    }
    thread.actors.push(entry);
    this.actors.push(entry);
    const timing = this.spine.addTimingQueue(entry.id);
    for (const attachment of this.attachments.values()) attachment.actorSpawned(this.attachedActor(entry));
    if (this.state === 'running') {
      // Observers already running learn of the newcomer's timing queue.
      const message: ToWorker = { type: 'timing-queue', actor: entry.id, buffer: timing.buffer };
      for (const t of this.threads.values()) {
        if (t.status === 'running' || t.status === 'starting') t.worker?.postMessage(message);
      }
    }
    const ready = this.state === 'running' ? this.launchLate(thread) : Promise.resolve();
    ready.catch(() => {});
    return { id: entry.id, ready };
  }

  /**
   * Launches a thread spawned after the start once the actors of those spawned before it are
   * loaded and named (their onInit may still run): each begins knowing the names of the actors
   * before it, so that a second actor of a name is refused
   * (two launched at once each missed the other's) and an observer labels every actor it reads.
   * The first launches at once; one queued behind another is coming up (busy for a stop) from
   * now, and one that a stop overtakes is never launched (its `ready` rejects).
   */
  private launchLate(thread: ThreadState): Promise<void> {
    thread.status = 'starting';
    const before = this.lateLaunches;
    const launched =
      before === undefined
        ? this.launchBounded(thread)
        : before.then(() => {
            if (this.state !== 'running') {
              thread.status = 'pending';
              throw new SystemStateError('cannot spawn: the system stopped before the actor could start');
            }
            return this.launchBounded(thread);
          });
    // The next waits for this one's actors to be loaded and named, not for their onInit (one that
    // never returns would hold every later spawn); for nothing if a stop kept it from launching.
    const settled = (before ?? Promise.resolve()).then(() => thread.loaded);
    this.lateLaunches = settled;
    void settled.then(() => {
      if (this.lateLaunches === settled) this.lateLaunches = undefined;
    });
    return launched;
  }

  /**
   * Launches a thread spawned after the start, or a restart, as `start` launches its threads,
   * within `startTimeoutMs`: one whose actors have not run `onInit` by then (a module whose
   * top-level await never settles, an `onInit` that never returns) is terminated: a late spawn's
   * `ready` rejects and those spawned after it come up; a restart fails the run. One that a stop
   * finds still starting is the stop's to end and name.
   */
  private launchBounded(thread: ThreadState, start: AdapterStart = 'head'): Promise<void> {
    const launched = this.launch(thread, start);
    const worker = thread.worker;
    const timer = setTimeout(() => {
      if (thread.worker !== worker || thread.ended || thread.status !== 'starting') return;
      // Ended by a stop already, or left to the stop under way, which ends and names it.
      if (thread.terminatedBy !== undefined || this.state !== 'running') return;
      thread.terminatedBy = 'start timeout';
      this.terminatedSome = true;
      void worker?.terminate();
    }, this.options.startTimeoutMs ?? 60_000);
    const settled = () => clearTimeout(timer);
    launched.then(settled, settled);
    return launched;
  }

  /** `actor-ID`, or if a thread of the user's took that name, `actor-ID-2`, … : a thread of its own. */
  private defaultThreadName(id: number): string {
    let name = `actor-${id}`;
    for (let n = 2; this.threads.has(name); n++) name = `actor-${id}-${n}`;
    return name;
  }

  /**
   * Starts every spawned actor; resolves once all ran `onInit` and the system is running. Rejects,
   * leaving nothing running, if an actor fails to load or crashes first, or a thread ends first
   * (a `stop()` that ran out of patience with the start terminates them).
   */
  start(): Promise<void> {
    if (this.state !== 'created')
      return Promise.reject(new SystemStateError(`cannot start: the system is ${this.state}`));
    if (this.actors.length === 0)
      return Promise.reject(new SystemStateError('cannot start: no actor was spawned'));
    this.state = 'starting';
    this.starting = this.startAll();
    return this.starting;
  }

  /**
   * `startEveryone`, bounded by `startTimeoutMs`: past it, the threads whose `onInit` has not
   * returned, or which have not answered the actors' names, are terminated, or the attachments'
   * start still under way (a lake that does not answer) is given up (its attachment aborted), which
   * fails the start under way, and the start fails saying which. A start already failing (the
   * abort has begun: the state is no longer 'starting') or ended by a stop says why it did.
   */
  private async startAll(): Promise<void> {
    const timeoutMs = this.options.startTimeoutMs ?? 60_000;
    const late: string[] = [];
    let attachmentsLate = false;
    const timer = setTimeout(() => {
      if (this.state !== 'starting') return;
      for (const t of this.threads.values()) {
        if (t.worker === undefined || t.ended || t.terminatedBy !== undefined) continue;
        if (t.status !== 'starting' && t.namesReceived === undefined) continue;
        late.push(t.name);
        t.terminatedBy = 'start timeout';
        void t.worker.terminate();
      }
      attachmentsLate = this.giveUpAttaching !== undefined;
      this.giveUpAttaching?.('timeout');
    }, timeoutMs);
    try {
      await this.startEveryone();
    } catch (error) {
      if (late.length === 0 && !attachmentsLate) throw error;
      const threads = `thread${late.length > 1 ? 's' : ''} ${late.map((name) => `'${name}'`).join(', ')} had not started (an onInit that does not return?) and ${late.length > 1 ? 'were' : 'was'} terminated`;
      throw new SystemStateError(
        `the start did not complete within startTimeoutMs (${timeoutMs} ms): ${attachmentsLate ? `the ${this.attachmentNames().join(', ')} attachment had not started (a lake that does not answer?) and was given up` : threads}`,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Starts the attachments (the persister), unless given up first (`giveUpAttaching`: by the
   * start's timeout, or by a stop that ran out of patience with the start): then it throws, and
   * the abort that follows aborts them.
   */
  private async startAttachmentsOrGiveUp(startAt: readonly number[]): Promise<void> {
    let givenUp: (why: 'timeout' | 'stop') => void = () => {};
    const giveUp = new Promise<'timeout' | 'stop'>((resolve) => (givenUp = resolve));
    const loading = new AbortController();
    this.giveUpAttaching = (why) => {
      loading.abort();
      givenUp(why);
    };
    try {
      const started = this.startAttachments(startAt, loading.signal);
      // Given up, it may settle long after, or never: nobody waits for it then.
      started.catch(() => {});
      const outcome = await Promise.race([started.then(() => undefined), giveUp]);
      if (outcome !== undefined) {
        throw new SystemStateError(
          outcome === 'stop'
            ? 'the start was ended by the stop while its attachments were starting'
            : 'the start timed out while its attachments were starting',
        );
      }
    } finally {
      this.giveUpAttaching = undefined;
    }
  }

  private async startEveryone(): Promise<void> {
    // Consumers created before any actor runs start where the streams are now: nothing
    // published after the start is missed, even by an actor whose first loop comes late.
    const startAt: AdapterPositions = {
      streams: this.spine.names.map((_, i) => this.spine.queue(i).stats().published),
    };
    try {
      // Attachments (the persister) first: their consumers exist before any actor can publish.
      await this.startAttachmentsOrGiveUp(startAt.streams as number[]);
      await Promise.all([...this.threads.values()].map((t) => this.launch(t, startAt)));
      const byName = new Map<string, number>();
      for (const a of this.actors) {
        const other = byName.get(a.name!);
        if (other !== undefined)
          throw new ConfigError(`two actors are named '${a.name}' (ids ${other} and ${a.id})`);
        byName.set(a.name!, a.id);
      }
    } catch (error) {
      await this.abort();
      throw error;
    }
    // Every thread knows every actor's name before any actor runs: observers label from the start.
    await Promise.all(
      [...this.threads.values()].map(
        (t) =>
          new Promise<void>((resolve) => {
            // Dead or crashed since its onInit returned (a timer of its that threw, a rejection,
            // process.exit): its end already went by, before there was a wait to end. It would
            // never answer: the start fails below with its crash.
            if (t.ended || t.status !== 'running') {
              resolve();
              return;
            }
            t.namesReceived = () => {
              t.namesReceived = undefined;
              resolve();
            };
            t.worker?.postMessage({ type: 'names', names: this.names(), ack: true } satisfies ToWorker);
          }),
      ),
    );
    const failure = this.fatal ?? this.crashes[0];
    if (failure !== undefined) {
      await this.abort();
      throw failure;
    }
    // A stop that ran out of patience with this start terminated the threads while they were
    // given the names (one had not answered): no crash, but nothing is left to run.
    const byStop = this.terminatedAtStart.length > 0;
    const ended = byStop
      ? this.terminatedAtStart
      : [...this.threads.values()].filter((t) => t.ended).map((t) => t.name);
    if (ended.length > 0) {
      await this.abort();
      throw new SystemStateError(
        `the start did not complete: thread${ended.length > 1 ? 's' : ''} ${ended.map((name) => `'${name}'`).join(', ')} ${byStop ? 'terminated by the stop' : 'ended'} before every thread had the actors' names`,
      );
    }
    try {
      for (const attachment of this.attachments.values()) attachment.actorsNamed(this.attachedActors());
    } catch (error) {
      // The persister could not open its run (its lake refused it): nothing is left running.
      await this.abort();
      throw error;
    }
    this.state = 'running';
    this.spine.control.setPhase(Phase.RUNNING);
  }

  /** Starts, runs for `seconds` (or until an actor crashes), then stops gracefully. */
  async run(options: RunOptions): Promise<SystemReport> {
    // A misspelt name first: `{ secnds: 1 }` is told as such, not as seconds missing.
    checkOptionNames(options, RUN_OPTIONS, 'run option');
    const seconds = options.seconds;
    if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) {
      throw new ConfigError(
        `run needs { seconds } as a finite number of seconds ≥ 0, got ${String(seconds)}`,
      );
    }
    await this.start();
    // The time, a crash that no restart heals, or a `stop()` of the caller's (asked while the
    // start was under way too): whichever comes first.
    const time = sleepLong(seconds * 1000);
    await Promise.race([time.done, this.crashed, this.stopAsked]);
    time.cancel();
    const report = await this.stop();
    if (this.fatal !== undefined) throw this.fatal;
    return report;
  }

  /**
   * Graceful stop: new ingress is refused, consumers drain, then every thread leaves its loop,
   * runs `onExit` and ends. Threads that do not end in time are terminated (and reported). Before
   * `start()`, it rejects and is not kept: the system can still be started, then stopped.
   */
  stop(): Promise<SystemReport> {
    if (this.state === 'created')
      return Promise.reject(new SystemStateError('cannot stop: the system was never started'));
    this.askStop?.();
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  /** Names of the threads whose worker has not ended yet. */
  get liveThreads(): string[] {
    return [...this.threads.values()].filter((t) => t.worker !== undefined && !t.ended).map((t) => t.name);
  }

  /** The crash that stops the system (the first one no restart healed), once one did. */
  get failure(): ActorCrashedError | undefined {
    return this.fatal;
  }

  /** Crashes seen so far (an actor that crashed and was restarted is listed too). */
  get crashReports(): readonly ActorCrashedError[] {
    return this.crashes;
  }

  private async shutdown(): Promise<SystemReport> {
    // A stop asked while start() is under way waits for it: the attachments (the persister) and
    // the threads it launches are all there to be stopped, and it cannot set RUNNING after the stop.
    if (this.state === 'starting') await this.startEnded(this.options.exitTimeoutMs ?? 5000);
    // The start failed (or the stop ended it): what started was stopped with it; no actor ran.
    if (this.state === 'stopped') return this.failedStartReport();
    this.state = 'stopping';
    const control = this.spine.control;
    control.setPhase(Phase.DRAINING);
    const drained = await this.quiet(this.options.drainTimeoutMs ?? 3000);
    control.setPhase(Phase.EXITING);
    const terminated = await this.untilExited(this.options.exitTimeoutMs ?? 5000);
    // A thread ended mid-claim (an event of a timer of its, even after it reported) left a hole.
    if (this.terminatedSome) this.countDeadClaims();
    // Every thread has ended: nothing is published any more, what is left unread is final.
    const end: RunEnd = {
      streams: this.spine.names.map((_, i) => {
        const queue = this.spine.queue(i);
        return { published: queue.settledPublished(), capacity: queue.capacity };
      }),
      timings: new Map(
        [...this.spine.timings].map(([actor, queue]) => [
          actor,
          { published: queue.settledPublished(), capacity: queue.capacity },
        ]),
      ),
    };
    this.reportTerminated(end);
    const actors = [...this.threads.values()].flatMap((t) =>
      mergeReports([...t.earlier, ...(t.report ?? [])], end),
    );
    const counts: SystemCounts = {
      actors,
      refused: control.refused,
      // Quiet, and nothing left unread by anyone: a crashed actor's consumers are gone from the
      // rings (quiet sees no lag of theirs), what it did not read is its report's `unread`.
      drained: drained && actors.every((a) => [...a.streams, ...a.timings].every((c) => c.unread === 0)),
      terminated,
    };
    // After the actors: everything they published is in the attachments' queues by now.
    const attached: Record<string, unknown> = {};
    for (const [name, attachment] of this.attachments) attached[name] = await attachment.stop(counts);
    this.state = 'stopped';
    return {
      ...counts,
      streams: this.spine.names.map((stream, i) => ({ stream, ...this.spine.queue(i).stats() })),
      crashes: [...this.crashes],
      ...(this.fatal === undefined ? {} : { failure: this.fatal }),
      ...(attached.persist === undefined ? {} : { persist: attached.persist as PersistReport }),
    };
  }

  /**
   * The report of a system whose start failed: no actor ran (none is reported), nothing drained,
   * and the threads a stop terminated while their `onInit` hung are named. `start()` says why it
   * failed; a `stop()` after it, in a `finally`, resolves and does not hide that.
   */
  private failedStartReport(): SystemReport {
    return {
      actors: [],
      streams: this.spine.names.map((stream, i) => ({ stream, ...this.spine.queue(i).stats() })),
      refused: this.spine.control.refused,
      drained: false,
      terminated: [...this.terminatedAtStart],
      crashes: [...this.crashes],
      ...(this.fatal === undefined ? {} : { failure: this.fatal }),
    };
  }

  /** Starts the attachment of every registered option the system was given (the persister). */
  private async startAttachments(startAt: readonly number[], signal?: AbortSignal): Promise<void> {
    const options = this.options as Record<string, unknown>;
    for (const name of this.attachmentNames()) {
      const make = await systemOptionHandler(name)!.load();
      // Given up while its module loaded: nothing is made that the abort would not end.
      signal?.throwIfAborted();
      const attachment = make(options[name]);
      this.attachments.set(name, attachment);
      await attachment.start({
        spine: this.spine,
        actors: () => this.attachedActors(),
        startAt,
        worker: ATTACHMENT_WORKER,
        instrumentation: this.ownBuffers,
      });
    }
  }

  /** The options the system was given that attach something (the persister's `persist`). */
  private attachmentNames(): string[] {
    const options = this.options as Record<string, unknown>;
    return Object.keys(options).filter(
      (name) => systemOptionHandler(name) !== undefined && options[name] !== undefined,
    );
  }

  private attachedActors(): AttachedActor[] {
    return this.actors.map((a) => this.attachedActor(a));
  }

  private attachedActor(a: ActorEntry): AttachedActor {
    const instrumentation = this.threads.get(a.thread)!.buffers;
    return { id: a.id, name: a.name, module: a.module, thread: a.thread, instrumentation };
  }

  private launch(thread: ThreadState, start: AdapterStart): Promise<void> {
    thread.status = 'starting';
    // Busy until the new worker says otherwise: an idle word left by a crashed predecessor
    // would let a stop take a thread coming up for a drained one.
    this.spine.control.setIdle(thread.index, false);
    const worker = launchActorWorker({
      worker: thread.index,
      wait: thread.wait,
      spine: this.spine.descriptor(),
      actors: thread.actors.map((a) => {
        // Each incarnation counts anew, in figures of its own: a crashed one's are in its report.
        a.figures = createFigures(this.spine.names.length);
        return { id: a.id, module: a.module, args: a.options.args, start, figures: a.figures };
      }),
      names: this.names(),
      instrumentation: thread.buffers,
    });
    thread.worker = worker;
    thread.start = start;
    // A restarted thread gets a new worker: events of the old one are no longer ours.
    const current = () => thread.worker === worker;
    let settle: { resolve: () => void; reject: (e: unknown) => void } | undefined;
    thread.initialized = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    let loaded: () => void = () => {};
    thread.loaded = new Promise<void>((resolve) => {
      loaded = resolve;
      thread.initialized!.then(resolve, resolve);
    });
    thread.ended = false;
    thread.reported = false;
    thread.ran = false;
    thread.exit = new Promise<void>((resolve) =>
      worker.once('exit', () => {
        loaded();
        if (current()) {
          thread.ended = true;
          // A thread terminated, or dead before it could count itself out, holds no core.
          this.spine.control.coreBudget.leave(thread.index);
        }
        thread.namesReceived?.();
        resolve();
      }),
    );
    worker.on('message', (message: FromWorker) => {
      if (!current()) return;
      // Terminated by the system (a start's timeout, a stop, an abort) while these were on their
      // way: it did not start, whatever they say (its `ready` rejects at its exit).
      if ((message.type === 'loaded' || message.type === 'initialized') && thread.terminatedBy !== undefined)
        return;
      if (message.type === 'loaded') {
        for (const { id, name } of message.actors) this.actors[id]!.name = name;
        // Threads coming up meanwhile (late spawns, restarts) learn the names before their actors run.
        if (this.state === 'running') this.broadcastNames();
        loaded();
      } else if (message.type === 'initialized') {
        for (const { id, name } of message.actors) this.actors[id]!.name = name;
        if (this.state === 'running') {
          this.broadcastNames();
          for (const attachment of this.attachments.values()) attachment.actorsNamed(this.attachedActors());
        }
        thread.status = 'running';
        thread.ran = true;
        settle?.resolve();
      } else if (message.type === 'init-failed') {
        thread.status = 'crashed';
        settle?.reject(new ActorModuleError(message.module, message.error.message));
      } else if (message.type === 'crashed') {
        const crash = new ActorCrashedError(
          message.name,
          message.stream,
          message.error.message,
          message.error.stack,
        );
        settle?.reject(crash);
        thread.reported = true;
        thread.earlier.push(...message.actors);
        this.onCrash(thread, crash, message.positions);
      } else if (message.type === 'names-received') {
        thread.namesReceived?.();
      } else if (message.type === 'exited') {
        thread.reported = true;
        thread.report = message.actors;
        thread.status = 'exited';
        // Its actors ran onExit and reported: a timer or a socket of theirs still open keeps the
        // thread alive, not their work. Ended after a grace, not named as terminated by the stop.
        setTimeout(() => {
          if (!current() || thread.ended) return;
          this.terminatedSome = true;
          void worker.terminate();
        }, EXITED_GRACE_MS).unref();
      }
    });
    worker.on('error', (error) => {
      if (!current()) return;
      const name = thread.actors[0]?.name ?? thread.name;
      const crash = new ActorCrashedError(name, undefined, error.message, error.stack);
      settle?.reject(crash);
      this.onCrash(thread, crash);
    });
    worker.once('exit', (code) => {
      if (!current() || thread.status === 'exited' || thread.status === 'crashed') return;
      if (thread.terminatedBy !== undefined) {
        // No crash, but a thread terminated before its onInit returned never starts: whoever
        // awaits it (a late spawn's `ready`, a restart) learns so instead of waiting forever, and
        // its actors' names are free again (it is in no report: a respawn of it was refused).
        // (A restart's actors ran before: theirs stay, with their reports.)
        if (thread.ran !== true && thread.earlier.length === 0)
          for (const actor of thread.actors) actor.name = undefined;
        settle?.reject(
          new SystemStateError(
            `thread '${thread.name}' was terminated by the ${thread.terminatedBy} before it started`,
          ),
        );
        return;
      }
      const crash = new ActorCrashedError(
        thread.actors[0]?.name ?? thread.name,
        undefined,
        `thread exited with code ${code}`,
        undefined,
      );
      settle?.reject(crash);
      this.onCrash(thread, crash);
    });
    return thread.initialized;
  }

  /**
   * `positions`: where the crashed actor's consumers were, reported by a worker that caught the
   * throw and gave back everything it held. Only such a crash is restartable: a worker that died
   * otherwise may still hold producer roles and consumer entries.
   */
  private onCrash(thread: ThreadState, crash: ActorCrashedError, positions?: AdapterPositions): void {
    if (thread.status === 'crashed' || thread.status === 'exited') return;
    thread.status = 'crashed';
    thread.namesReceived?.();
    this.crashes.push(crash);
    const [only] = thread.actors;
    // While a stop drains too: the new incarnation drains what the crash left (see `restart`).
    // Past the drain (the stop took the thread for quiet just before it threw, in a loopBody
    // after its drains committed, or its crash was still on its way), the restart is not made,
    // and the crash fails nothing: the stop, not the actor, kept it from healing.
    const restartable = this.state === 'running' || this.state === 'stopping';
    if (restartable && positions !== undefined && thread.actors.length === 1 && only!.restartsLeft > 0) {
      only!.restartsLeft--;
      void this.restart(thread, only!, resumeAt(thread.start, positions));
      return;
    }
    this.fail(crash);
  }

  /**
   * Relaunches a crashed single-actor thread once its worker has ended. Its consumers resume
   * where the crashed ones were: what the ring overwrote meanwhile is counted as lost.
   */
  private async restart(thread: ThreadState, actor: ActorEntry, positions: AdapterPositions): Promise<void> {
    thread.restarting++;
    const ended = await Promise.race([thread.exit!.then(() => true), sleep(1000).then(() => false)]);
    // A crashed worker kept alive by a timer or a socket of the actor's is ended here.
    if (!ended) {
      this.terminatedSome = true;
      await thread.worker?.terminate();
    }
    // The dead worker may not have given back its timing queue's producer role, nor its
    // instrumentation buffers: the new one records on where it stopped.
    this.spine.timingQueue(actor.id)?.releaseProducer();
    releaseThreadBuffers(thread.buffers);
    // A stop that began while the crashed worker ended and is still draining waits for this
    // restart (`quiet` counts a restarting thread as busy): the new incarnation drains what the
    // crash left. One that went on to EXITING (its drain timed out) waited for the crashed worker
    // only: a new one would run on after the stop returned (its thread never ended).
    if (this.state !== 'running' && this.spine.control.phase !== Phase.DRAINING) {
      // Not a failure of the run: the stop is what kept it from healing; the crash is in
      // `crashes`, what it left unread in its report, and the stop did not drain.
      thread.restarting--;
      return;
    }
    try {
      await this.launchBounded(thread, positions);
    } catch (error) {
      // A crash of the new incarnation went through onCrash already (restarted again, or failed);
      // anything else (its module no longer loads, it did not start in time) fails the system here.
      const timedOut = thread.terminatedBy === 'start timeout';
      if (!(error instanceof ActorCrashedError) && (thread.terminatedBy === undefined || timedOut)) {
        const why = timedOut
          ? `its restart did not start within startTimeoutMs (${this.options.startTimeoutMs ?? 60_000} ms) and was terminated`
          : String(error);
        const crash = new ActorCrashedError(actor.name ?? thread.name, undefined, why, undefined);
        // Listed with the crashes, as every failure of the run is.
        this.crashes.push(crash);
        this.fail(crash);
      }
    } finally {
      thread.restarting--;
    }
  }

  private fail(crash: ActorCrashedError): void {
    this.fatal ??= crash;
    this.wakeOnCrash?.();
    if (this.state === 'running') void this.stop();
  }

  /**
   * Waits for a start under way to settle. One that has not within `timeoutMs` (an `onInit` that
   * never returns) is ended: its threads are terminated, which fails the start (it aborts).
   */
  private async startEnded(timeoutMs: number): Promise<void> {
    const settled = (this.starting ?? Promise.resolve()).then(
      () => true,
      () => true,
    );
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((r) => (timer = setTimeout(() => r(false), timeoutMs)));
    const inTime = await Promise.race([settled, late]);
    clearTimeout(timer);
    // The start may have completed as the time ran out: its threads run, and are stopped as such.
    // One that failed and is giving its threads back (stopped already) is waited for, as one
    // still under way: a thread it has not ended yet is terminated, and named.
    if (inTime || this.state === 'running') return;
    // An attachment's start still under way (a lake that does not answer) is given up: aborted.
    this.giveUpAttaching?.('stop');
    // Terminated by the stop, not crashed: the start fails saying so, the stop names them.
    await Promise.all(
      [...this.threads.values()].map((t) => {
        if (t.worker !== undefined && !t.ended) {
          t.terminatedBy = 'stop';
          this.terminatedAtStart.push(t.name);
        }
        return t.worker?.terminate();
      }),
    );
    await settled;
  }

  /** Waits until the spine is quiet (see `untilQuiet`), counting threads coming up as busy. */
  private quiet(timeoutMs: number): Promise<boolean> {
    return untilQuiet(
      this.spine,
      () => {
        const threads = [...this.threads.values()];
        // A thread coming up (a restart, a late spawn) has work to drain once it runs.
        // (One whose worker ended before it started, terminated, has nothing to drain.)
        if (threads.some((t) => t.restarting > 0 || (t.status === 'starting' && t.ended !== true)))
          return false;
        return threads.every((t) => t.status !== 'running' || this.spine.control.isIdle(t.index));
      },
      timeoutMs,
      // A worker dead without giving back its consumers (an error outside any handler,
      // `process.exit`) and not restarted: what they lag by is its unread, not work to wait for.
      () =>
        new Set(
          [...this.threads.values()]
            .filter((t) => t.ended && t.restarting === 0)
            .flatMap((t) => t.actors.map((a) => actorConsumerOwner(a.id))),
        ),
    );
  }

  /**
   * After threads were terminated (every actor thread has ended by now): a message one of them had
   * claimed and not committed (terminated mid-publish, mid-timing record, mid-event) is counted as
   * published and lost, in its stream, its timing queue or its thread's instrumentation queue, so
   * that every reader's account adds up to what was published. The main thread's and the
   * persister's own buffers are alive, and left alone.
   */
  private countDeadClaims(): void {
    for (let i = 0; i < this.spine.names.length; i++) this.spine.queue(i).countDeadClaim();
    for (const queue of this.spine.timings.values()) queue.countDeadClaim();
    for (const thread of this.threads.values()) {
      const reader = ThreadBuffersReader.attach(thread.buffers);
      reader.logs.countDeadClaim();
      reader.metrics.countDeadClaim();
      reader.spans.countDeadClaim();
    }
  }

  /**
   * Gives a thread whose last incarnation ran and ended without reporting (terminated by the stop,
   * or dead without a word: an error outside any handler, `process.exit`) the report its actors'
   * figures and consumer entries make, read after its worker's `exit` (Node emits it once the
   * thread has stopped: every store of it is done): handled, skipped, failed, lost and poisoned
   * as of each consumer's last commit (`committedFigures`: the entries were read with an SC load
   * of their committed words first), and where that commit left it (a consumer commits once per drain:
   * the messages of the drain a handler was stuck in count as unread, those before it too); produced from where its producer of a stream began to the
   * stream's settled count, or of a multi-producer stream, the count its producer kept in the
   * figures (a thread ended right after a publish, before that count's store, leaves that message
   * out of it); what it read of timing queues, from its tagged entries on them.
   */
  private reportTerminated(end: RunEnd): void {
    const names = this.names();
    // Every thread has ended: the rings' consumer tables, read once for all of them.
    const entries = this.spine.names.map((_, i) => this.spine.queue(i).stats().consumers);
    const timingEntries = [...this.spine.timings].map(([actor, queue]) => ({
      actor,
      consumers: queue.stats().consumers,
    }));
    for (const thread of this.threads.values()) {
      if (thread.worker === undefined || thread.reported === true || thread.ran !== true) continue;
      thread.report = thread.actors.map((actor): WorkerActorReport => {
        const owner = actorConsumerOwner(actor.id);
        const owned = entries.map((consumers) => consumers.find((c) => c.owner === owner));
        const figures = figuresOf(actor.figures!);
        // Its reads of timing queues, from its entries, as of each one's last commit.
        const reads = timingEntries.flatMap(({ actor: timed, consumers }) => {
          const entry = consumers.find((c) => c.owner === owner);
          return entry === undefined ? [] : [{ timed, entry, ...committedReads(entry) }];
        });
        return {
          id: actor.id,
          name: actor.name ?? thread.name,
          streams: this.spine.names.map((stream, i) => {
            const { handled, skipped, lost, poisoned, failed, producedFrom, produced } = committedFigures(
              figures,
              i,
              owned[i]?.position,
            );
            return {
              stream,
              handled,
              skipped,
              lost,
              poisoned,
              failed,
              produced: producedFrom < 0 ? produced : Math.max(0, end.streams[i]!.published - producedFrom),
            };
          }),
          timings: reads.map(({ timed, handled, lost }) => ({
            actor: names[timed] ?? `actor-${timed}`,
            actorId: timed,
            handled,
            lost,
          })),
          stoppedAt: owned.map((c) => c?.position ?? null),
          timingsStoppedAt: Object.fromEntries(reads.map(({ timed, entry }) => [timed, entry.position])),
        };
      });
    }
  }

  /**
   * Waits for every thread to end; terminates those that do not in time, and names those of them
   * that had not reported.
   */
  private async untilExited(timeoutMs: number): Promise<string[]> {
    const named: string[] = [];
    await Promise.all(
      [...this.threads.values()].map(async (t) => {
        if (t.worker === undefined) return;
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), timeoutMs)));
        const outcome = await Promise.race([t.exit!.then(() => 'exited' as const), late]);
        clearTimeout(timer);
        if (outcome === 'late') {
          this.terminatedSome = true;
          // One that ran onExit and reported, kept alive by a timer or a socket of its actors, is
          // ended as its grace would have (EXITED_GRACE_MS, longer than a short exitTimeoutMs):
          // not named. Any other is named in the report as terminated: its exit (code 1) must
          // not fail the run as a crash.
          if (t.status !== 'exited') named.push(t.name);
          t.terminatedBy = 'stop';
          await t.worker.terminate();
        }
      }),
    );
    return named;
  }

  /** Stops whatever started, after a failed start. */
  private async abort(): Promise<void> {
    this.spine.control.setPhase(Phase.EXITING);
    this.state = 'stopped';
    // Their exits are the abort's doing, not crashes: the start fails with what made it fail.
    await Promise.all(
      [...this.threads.values()].map((t) => {
        if (t.worker !== undefined && !t.ended) t.terminatedBy = 'abort';
        return t.worker?.terminate();
      }),
    );
    await Promise.all([...this.attachments.values()].map((a) => a.abort()));
  }

  private names(): Record<number, string> {
    return Object.fromEntries(this.actors.filter((a) => a.name !== undefined).map((a) => [a.id, a.name!]));
  }

  private broadcastNames(): void {
    const message: ToWorker = { type: 'names', names: this.names() };
    // Threads coming up too (a restart, launched with the names of its launch).
    for (const t of this.threads.values()) {
      if (t.status === 'running' || t.status === 'starting') t.worker?.postMessage(message);
    }
  }
}

/**
 * What an ended observer's timing reader had read and lost of one queue as of its last commit,
 * from its entry: its polls left it at `began + received + lost`, which is past the committed
 * position only if the thread ended in a handler (or between it and the commit: see
 * `TimingReader.drain`, which commits record by record), by that record and what its poll
 * skipped first. Those are counted from the committed position (unread, or lost if written over),
 * so that `handled + lost` and what lies past the position add up to every record from `began`.
 * (A thread ended between a poll that only skipped records, poisoned ones, and the commit after
 * it, a few instructions, is taken for one ended in a handler: one record counted lost instead of
 * handled; the sum holds.)
 */
function committedReads(entry: ConsumerStats): { handled: number; lost: number } {
  const read = Math.max(0, entry.position - entry.began);
  const ahead = entry.began + entry.received + entry.lost - entry.position;
  const handled = Math.min(read, Math.max(0, ahead > 0 ? entry.received - 1 : entry.received));
  return { handled, lost: read - handled };
}

/**
 * Where a restart resumes: where the crashed incarnation's consumers were, and for a stream or a
 * timing queue it never opened (it crashed on a stream its round reads first), where it would
 * have begun itself. Its report says null, or leaves the queue out, for those: taken as they are,
 * a stream would start at the head (what was published since it began skipped, counted nowhere)
 * and a timing queue at its first record (what an earlier incarnation read, counted twice). An
 * incarnation spawned at the head begins at the head: so does its restart.
 */
function resumeAt(began: AdapterStart | undefined, positions: AdapterPositions): AdapterPositions {
  if (began === undefined || began === 'head') return positions;
  return {
    ...positions,
    streams: positions.streams.map((at, i) => at ?? began.streams[i] ?? null),
    timings: { ...began.timings, ...positions.timings },
  };
}

/**
 * Resolves after `ms`, waited in timers no longer than Node keeps (a longer one fires at once):
 * `run({ seconds })` of more than 24.8 days waits them all. `cancel` clears the one under way.
 */
function sleepLong(ms: number): { readonly done: Promise<void>; readonly cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  let left = ms;
  const done = new Promise<void>((resolve) => {
    const step = () => {
      const wait = Math.min(left, MAX_TIMEOUT_MS);
      left -= wait;
      timer = setTimeout(left > 0 ? step : resolve, wait);
    };
    step();
  });
  return { done, cancel: () => clearTimeout(timer) };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
