import type { SpineControl } from './control.js';

/**
 * Whether an actor thread may be about to publish ingress: the word a graceful stop reads for it
 * (`SpineControl.setIdle`). Handlers need no word: their consumers commit positions after them,
 * so a stop sees their messages unhandled until they are (see `ConsumerOptions.positions`).
 *
 * The thread rests after a round that did nothing and stays so, however long its rounds take,
 * until an ingress `produce`, which marks it busy before it reads the phase. A stop sets the
 * phase before it reads the words: in the total order of SC operations either the stop sees the
 * thread busy, or the produce sees the phase and refuses the message.
 */
export class ThreadActivity {
  private readonly control: SpineControl;
  private readonly worker: number;
  private resting = false;

  constructor(control: SpineControl, worker: number) {
    this.control = control;
    this.worker = worker;
  }

  /** After a round that handled and produced nothing. */
  rest(): void {
    if (this.resting) return;
    this.resting = true;
    this.control.setIdle(this.worker, true);
  }

  /**
   * Before a crashed thread gives back its consumers: given back, they show no lag, and without
   * this word a stop could take the thread for quiet and go on before it hears of the crash:
   * too late to restart it, and what it left unread would stay unread.
   */
  failing(): void {
    this.resting = false;
    this.control.setIdle(this.worker, false);
  }

  /** Before an ingress message reads the phase. */
  busy(): void {
    if (!this.resting) return;
    this.resting = false;
    this.control.setIdle(this.worker, false);
  }
}
