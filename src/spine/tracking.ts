import { defineMessage, type MessageOfLayout } from '../queues/index.js';

/**
 * The envelope every spine message carries, written in the same seqlocked slot as the message:
 * when its chain entered the system, when it was published, which actor published it, and the
 * id of its parent (the message the producing handler was consuming: stream + sequence).
 * Trees are exact: no guessing from timestamps.
 */
export const Tracking = defineMessage('Tracking', {
  /** When the ingress message that started this chain entered the system (ns, spine clock). */
  origin_t: 'f64',
  /** When this message was published (ns, spine clock). */
  publish_t: 'f64',
  /** Sequence of the parent message in its stream; meaningless when `parent_stream` is NO_PARENT. */
  parent_seq: 'f64',
  /** Stream index of the parent message, or NO_PARENT for an ingress message. */
  parent_stream: 'u16',
  /** Id of the producing actor (its index in the system). */
  actor: 'u16',
});
export type Tracking = MessageOfLayout<typeof Tracking>;

/** `parent_stream` of an ingress message. */
export const NO_PARENT = 0xffff;

/** Largest number of user streams: stream indices must stay below NO_PARENT. */
export const MAX_STREAMS = 1024;

/**
 * One record per handler invocation, in the handling actor's timing queue: processing time is
 * `end_t - start_t`, queueing `start_t - publish_t`, latency since origin `end_t - origin_t`.
 */
export const TimingRecord = defineMessage('TimingRecord', {
  /** Sequence of the handled message in its stream. */
  seq: 'f64',
  origin_t: 'f64',
  publish_t: 'f64',
  start_t: 'f64',
  end_t: 'f64',
  /** Stream index of the handled message. */
  stream: 'u16',
  /** Id of the handling actor. */
  actor: 'u16',
});
export type TimingRecord = MessageOfLayout<typeof TimingRecord>;
