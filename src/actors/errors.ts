import { DorsalError } from '../errors.js';

/** An actor threw: names the actor, the stream it was handling (if any) and carries its stack. */
export class ActorCrashedError extends DorsalError {
  readonly actor: string;
  readonly stream: string | undefined;
  readonly actorStack: string | undefined;

  constructor(actor: string, stream: string | undefined, message: string, stack: string | undefined) {
    const where = stream === undefined ? '' : ` while handling stream '${stream}'`;
    super('DORSAL_ACTOR_CRASHED', `actor '${actor}' crashed${where}: ${message}${stack ? `\n${stack}` : ''}`);
    this.actor = actor;
    this.stream = stream;
    this.actorStack = stack;
  }
}

/** An actor module could not be loaded or has no default export extending Actor. */
export class ActorModuleError extends DorsalError {
  readonly module: string;

  constructor(module: string, message: string) {
    super('DORSAL_ACTOR_MODULE', `actor module ${module}: ${message}`);
    this.module = module;
  }
}

/** The system was used out of order (spawn after stop, start twice, …). */
export class SystemStateError extends DorsalError {
  constructor(message: string) {
    super('DORSAL_SYSTEM_STATE', message);
  }
}
