import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { PartitionWriter } from './etl-pool.js';
import type { EtlTask, PartitionTaskResult } from './etl-worker.js';

/**
 * Writes partitions in the thread that asks (`etlThreads: 0`), with a DuckDB of its own in memory:
 * no thread to start and no second load of DuckDB, which cost a command about 0.3 s at its first
 * look at a run (and, on a 2-core machine, more than the pool's overlap gave back even for a run
 * of 8 million records). The decoding then runs on the caller's event loop: a command line's
 * choice; a server keeps its pool, so that its other requests are answered meanwhile.
 */
export class InlineEtl implements PartitionWriter {
  readonly threads = 1;
  private writer:
    | Promise<{ db: DuckDBInstance; etl: DuckDBConnection; run: typeof import('./etl-worker.js').runEtlTask }>
    | undefined;

  run(task: EtlTask): Promise<PartitionTaskResult> {
    this.writer ??= (async () => {
      const [{ DuckDBInstance }, { runEtlTask }] = await Promise.all([
        import('@duckdb/node-api'),
        import('./etl-worker.js'),
      ]);
      const db = await DuckDBInstance.create(':memory:');
      return { db, etl: await db.connect(), run: runEtlTask };
    })();
    return this.writer.then(({ etl, run }) => run(etl, task));
  }

  async close(): Promise<void> {
    const writer = await this.writer?.catch(() => undefined);
    this.writer = undefined;
    writer?.etl.closeSync();
    writer?.db.closeSync();
  }
}
