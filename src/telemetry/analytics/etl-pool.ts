import { Piscina } from 'piscina';
import { isTypeScriptModule } from '../../module-worker.js';
import type { EtlTask, PartitionTaskResult } from './etl-worker.js';

/** What writes partitions: a pool of threads (`EtlPool`), or the thread that asks (`InlineEtl`). */
export interface PartitionWriter {
  /** Partitions written at once (one more is read meanwhile). */
  readonly threads: number;
  run(task: EtlTask): Promise<PartitionTaskResult>;
  close(): Promise<void>;
}

/**
 * The threads that write partitions (piscina): decoding blocks into Parquet takes seconds for
 * millions of records, which the thread answering queries must not spend.
 */
export class EtlPool implements PartitionWriter {
  private readonly pool: Piscina<EtlTask, PartitionTaskResult>;

  constructor(threads: number) {
    const typescript = isTypeScriptModule(import.meta.url);
    this.pool = new Piscina({
      filename: new URL(`./etl-worker${typescript ? '.ts' : '.js'}`, import.meta.url).href,
      minThreads: 0,
      maxThreads: threads,
      idleTimeout: 30_000,
      // From dorsal's sources (its tests), the workers load TypeScript through tsx.
      ...(typescript ? { execArgv: ['--import', 'tsx'] } : {}),
    });
  }

  get threads(): number {
    return this.pool.options.maxThreads;
  }

  run(task: EtlTask): Promise<PartitionTaskResult> {
    return this.pool.run(task);
  }

  async close(): Promise<void> {
    await this.pool.close({ force: true });
  }
}
