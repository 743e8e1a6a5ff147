import { describe, expect, it } from 'vitest';
import { LakeConfigError, LakeUnavailableError } from '../../src/telemetry/errors.js';
import { isLakeDown } from '../../src/telemetry/lake/down.js';

/** A lake failure as the stores make it: a LakeUnavailableError whose cause is the driver's error. */
const failure = (cause: object) => new LakeUnavailableError('the lake', { cause });
const coded = (code: string) => Object.assign(new Error(code), { code });
const s3 = (status: number, name = 'S3ServiceException') =>
  Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });

describe('isLakeDown: an outage to wait out, or a lake to fix', () => {
  it('is down when its peer cannot be reached or cannot serve now', () => {
    for (const cause of [
      coded('ECONNREFUSED'),
      coded('ETIMEDOUT'),
      coded('57P03'), // PostgreSQL starting up
      coded('53300'), // too many connections
      coded('40001'), // a serialization failure
      coded('40P01'), // a deadlock
      coded('55P03'), // a lock not available
      coded('57014'), // a statement cancelled by its timeout
      coded('SQLITE_BUSY'),
      s3(503, 'SlowDown'),
      s3(500),
      s3(429),
      new Error('Connection terminated unexpectedly'), // pg says so in words only
    ]) {
      expect(isLakeDown(failure(cause)), cause.message).toBe(true);
    }
    // Down the chain of causes too.
    expect(isLakeDown(failure(new Error('wrapped', { cause: coded('ECONNRESET') })))).toBe(true);
  });

  it('is not down when the lake answered that it cannot be used', () => {
    for (const cause of [
      coded('SQLITE_NOTADB'),
      coded('ENOTDIR'),
      coded('28P01'), // a password PostgreSQL refuses
      coded('3D000'), // no such database
      s3(404, 'NoSuchBucket'),
      s3(403, 'AccessDenied'),
      Object.assign(new Error('no credentials'), { name: 'CredentialsProviderError' }),
    ]) {
      expect(isLakeDown(failure(cause)), cause.message).toBe(false);
    }
    expect(isLakeDown(new LakeConfigError('a lake newer than this code'))).toBe(false);
    expect(isLakeDown(new Error('not a lake error'))).toBe(false);
  });
});
