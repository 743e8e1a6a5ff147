/** A quoted string of JSON, or (captured) a bare NaN, Infinity or -Infinity outside of one. */
const NON_FINITE = /"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)/g;

/**
 * Parses JSON as DuckDB writes it (`to_json`, a message's `fields`): a double that is no number is
 * written bare there (NaN, Infinity, -Infinity), which is not JSON; each is read back as that
 * number, through a marker no text holds (it is new at each call). Throws as `JSON.parse` does
 * for anything else that is not JSON (a bare NaN where a key stands, which DuckDB never writes,
 * is read as a key).
 */
export function parseDuckJson(text: string): unknown {
  const marker = `\\u0000${Math.random().toString(36).slice(2)}:`;
  const marked = text.replace(NON_FINITE, (match, bare: string | undefined) =>
    bare === undefined ? match : `"${marker}${bare}"`,
  );
  const prefix = JSON.parse(`"${marker}"`) as string;
  return JSON.parse(marked, (_key, value: unknown) =>
    typeof value === 'string' && value.startsWith(prefix) ? Number(value.slice(prefix.length)) : value,
  );
}
