import type { PersistReport, SystemReport } from '../../src/index.js';
import { readPersisted } from '../../src/persist.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import type { LakeLocation } from '../../src/telemetry/lake/open.js';

export interface Row {
  key: string;
  published?: number;
  reportPersisted: number;
  reportLost: number;
  lakeRecords: number;
  lakeLost: number;
  lakeCovered: number;
}

/** Per source: what the report says beside what the lake holds. */
export async function compare(report: SystemReport, location: LakeLocation): Promise<Row[]> {
  const persist = report.persist as PersistReport;
  const lake = Lake.open(location);
  try {
    const data = await readPersisted(lake, persist.processId);
    const rows: Row[] = [];
    for (const s of persist.sources) {
      let stored;
      if (s.kind === 'messages')
        stored = data.find((d) => d.stream.tags.includes('messages') && d.stream.properties.name === s.name);
      else if (s.kind === 'timings')
        stored = data.find((d) => d.stream.tags.includes('timings') && d.stream.properties.actor === s.name);
      else stored = data.find((d) => d.stream.tags.includes(s.kind) && d.stream.properties.thread === s.name);
      rows.push({
        key: `${s.kind}:${s.name}`,
        ...(s.kind === 'messages'
          ? { published: report.streams.find((x) => x.stream === s.name)!.published }
          : {}),
        reportPersisted: s.persisted,
        reportLost: s.lost,
        lakeRecords: stored?.records.length ?? -1,
        lakeLost: stored?.lost ?? -1,
        lakeCovered: stored?.covered ?? -1,
      });
    }
    return rows;
  } finally {
    await lake.close();
  }
}
