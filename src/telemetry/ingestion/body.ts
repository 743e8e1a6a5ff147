import type { IncomingMessage } from 'node:http';
import { PayloadTooLargeError, RequestTimeoutError, ServerBusyError, WireFormatError } from '../errors.js';
import type { ByteBudget, Release } from './byte-budget.js';

/** How a request body is read. */
export interface BodyRules {
  /** Largest body in bytes; larger gets 413 before it is buffered. */
  readonly limit: number;
  /** A body must bring `MIN_PROGRESS_BYTES` (or its end) within every window of this many ms. */
  readonly stallMs: number;
  /** Bytes of large bodies held at once, shared by all requests; a body that does not fit gets 503. */
  readonly largeBodies: ByteBudget;
}

/** A body's bytes beyond this many are taken from the large-body budget as they arrive. */
export const LARGE_BODY_BYTES = 1024 * 1024;

/**
 * What a body must bring per stall window: a client sending less is holding a connection and
 * memory rather than uploading (16 KiB per 10 s is 1.6 KB/s).
 */
export const MIN_PROGRESS_BYTES = 16 * 1024;

/** A body read whole, and the budget it holds until the request is answered. */
export interface Body {
  readonly bytes: Uint8Array;
  readonly release: Release;
}

/**
 * Reads a request body within the rules. Refuses before buffering: a declared size over the
 * limit (413), a large body the budget has no room for now (503, retry later). While reading: a
 * body that grows past the limit (413), or that brings less than 16 KiB in a stall window (408).
 * A large body takes from the budget as its bytes arrive, not as it declares them: a client that
 * declares much and sends little holds little. The caller must answer with `connection: close`
 * when the body was not read to its end.
 */
export function readBody(req: IncomingMessage, rules: BodyRules): Promise<Body> {
  const { limit, stallMs, largeBodies } = rules;
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  if (declared > limit) {
    return Promise.reject(
      new PayloadTooLargeError(`body of ${declared} bytes is over the limit of ${limit} bytes`),
    );
  }
  if (declared > LARGE_BODY_BYTES && !largeBodies.hasRoom(declared - LARGE_BODY_BYTES)) {
    return Promise.reject(busy(declared));
  }
  // Gone before it was read (its client hung up while its key was checked): its 'close' has
  // fired already, and nothing else would settle the read (a body of 0 bytes never stalls).
  // (Complete or not: a destroyed stream hands over none of the body it had buffered.)
  if (req.destroyed && !req.readableEnded) return Promise.reject(abandoned());
  const releases: Release[] = [];
  const releaseAll: Release = () => {
    for (const release of releases.splice(0)) release();
  };
  return new Promise<Body>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    /** Bytes accounted for: the first MiB is free, the rest is taken from the budget. */
    let counted = LARGE_BODY_BYTES;
    let atLastCheck = 0;
    const stop = (error: Error): void => {
      req.off('data', onData);
      req.pause();
      clearInterval(timer);
      releaseAll();
      reject(error);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        stop(new PayloadTooLargeError(`body is over the limit of ${limit} bytes`));
        return;
      }
      if (size > counted) {
        // A step of at least a MiB (at most to the declared end): a few takes per body, not one
        // per chunk.
        const end = Number.isNaN(declared) || declared < size ? limit : declared;
        const next = Math.min(Math.max(size, counted + LARGE_BODY_BYTES), end);
        const release = largeBodies.tryAcquire(next - counted);
        if (release === undefined) {
          stop(busy(size));
          return;
        }
        releases.push(release);
        counted = next;
      }
      chunks.push(chunk);
    };
    const timer = setInterval(() => {
      const left = Number.isNaN(declared) ? MIN_PROGRESS_BYTES : declared - atLastCheck;
      // Everything declared came (or nothing was) and still no end within a window: stalled too.
      const want = Math.min(MIN_PROGRESS_BYTES, left);
      if (want <= 0 || size - atLastCheck < want) {
        stop(
          new RequestTimeoutError(
            `request body stalled: ${size - atLastCheck} bytes in the last ${stallMs} ms, ${size} in all; a body must bring ${MIN_PROGRESS_BYTES} bytes or its end every ${stallMs} ms`,
          ),
        );
      }
      atLastCheck = size;
    }, stallMs).unref();
    req.on('data', onData);
    req.once('end', () => {
      clearInterval(timer);
      resolve({
        bytes: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size),
        release: releaseAll,
      });
    });
    // A client that goes away mid-body ('aborted', or its socket reset): nothing to answer, but the
    // promise must settle, and as the client's doing: not an error of the server's to log.
    const aborted = () => {
      if (!req.complete) stop(abandoned());
    };
    req.once('error', (error) => (req.complete ? stop(error) : aborted()));
    req.once('close', aborted);
  });
}

function abandoned(): WireFormatError {
  return new WireFormatError('request body aborted by the client');
}

function busy(size: number): ServerBusyError {
  return new ServerBusyError(
    `the server is receiving as many large bodies as it holds at once; retry this one (${size} bytes) later`,
  );
}
