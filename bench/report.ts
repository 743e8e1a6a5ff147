/** Prints bench rows as a Markdown table and writes them to bench/results/ with the machine's description. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import type { BenchRow } from './types.js';

export interface Machine {
  readonly node: string;
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  /** 1-minute load average when the run started and ended: other work on the VM skews figures. */
  readonly loadBefore: number;
  loadAfter?: number;
  readonly date: string;
  readonly quick: boolean;
  readonly only?: string;
}

export function describeMachine(quick: boolean, only: string | undefined): Machine {
  const cpu = cpus();
  return {
    node: process.version,
    cpu: cpu[0]?.model ?? 'unknown',
    cores: cpu.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    loadBefore: loadavg()[0]!,
    date: new Date().toISOString(),
    quick,
    ...(only === undefined ? {} : { only }),
  };
}

function formatValue(r: BenchRow): string {
  const v = r.value;
  if (Number.isInteger(v) && Math.abs(v) >= 1000) return v.toLocaleString('en-US');
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(v === 0 ? 0 : 2);
}

const HEADER =
  '| group | name | value | unit | baseline | ratio | target | met |\n|---|---|---:|---|---|---:|---|---|';

/** The rows as a Markdown table (ratio = value ÷ baseline, both measured in this run). */
export function markdownTable(rows: readonly BenchRow[]): string {
  const lines = rows.map((r) => {
    const ratio = r.ratio === undefined ? '' : `${r.ratio < 0.1 ? r.ratio.toFixed(3) : r.ratio.toFixed(2)}×`;
    const met = r.met === undefined ? '' : r.met ? 'yes' : '**no**';
    return `| ${r.group} | ${r.name} | ${formatValue(r)} | ${r.unit} | ${r.baseline ?? ''} | ${ratio} | ${r.target ?? ''} | ${met} |`;
  });
  return [HEADER, ...lines].join('\n');
}

function machineLine(m: Machine): string {
  const load = `load ${m.loadBefore.toFixed(2)} → ${m.loadAfter?.toFixed(2) ?? '?'}`;
  return `${m.date} · Node ${m.node} · ${m.cpu} × ${m.cores} · ${m.memoryGiB} GiB · ${load}${m.quick ? ' · quick' : ''}${m.only ? ` · only ${m.only}` : ''}`;
}

/** Writes `latest.json` (machine + rows) and `latest.md` (the table and its notes) into `dir`. */
export function writeResults(dir: URL, machine: Machine, rows: readonly BenchRow[]): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(new URL('latest.json', dir), `${JSON.stringify({ machine, rows }, null, 2)}\n`);
  const notes = rows.filter((r) => r.note).map((r) => `- **${r.group} / ${r.name}**: ${r.note}`);
  const md = [
    '# dorsal bench — latest run',
    '',
    machineLine(machine),
    '',
    'Ratio = value ÷ baseline, both measured in this run. Run with `npm run bench` (`-- --quick`, `-- --only <group>`).',
    '',
    markdownTable(rows),
    '',
    '## Notes',
    '',
    ...notes,
    '',
  ].join('\n');
  writeFileSync(new URL('latest.md', dir), md);
}

export { machineLine };
