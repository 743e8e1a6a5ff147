/**
 * A quoted string of JSON; or (captured) a bare NaN, Infinity or -Infinity outside of one; or
 * (captured) a bare integer of 16 digits or more, no fraction or exponent, not a part of another
 * number: the integers that may be past what a double holds exactly.
 */
const MARKED = /"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)|(?<![\d.eE+-])(-?[1-9]\d{15,})(?![\d.eE])/g;

/**
 * Parses JSON as DuckDB writes it (`to_json`, a message's `fields`): a double that is no number is
 * written bare there (NaN, Infinity, -Infinity), which is not JSON; each is read back as that
 * number. An integer past 2^53 (a u64 or i64 field: 18446744073709551615) is read back as its
 * text, exactly: as a double it would lose its last digits (18446744073709552000), and a BigInt is
 * no value JSON writes (`tree --json`, the report's data, a replay's diff stored in the lake). Both
 * go through a marker no text holds (it is new at each call). Throws as `JSON.parse` does for
 * anything else that is not JSON (a bare NaN where a key stands, which DuckDB never writes, is
 * read as a key).
 */
export function parseDuckJson(text: string): unknown {
  const marker = `\\u0000${Math.random().toString(36).slice(2)}:`;
  const marked = text.replace(MARKED, (match, bare: string | undefined, integer: string | undefined) => {
    if (bare !== undefined) return `"${marker}${bare}"`;
    // One a double holds exactly is left a number.
    if (integer !== undefined && !Number.isSafeInteger(Number(integer))) return `"${marker}${integer}"`;
    return match;
  });
  const prefix = JSON.parse(`"${marker}"`) as string;
  return JSON.parse(marked, (_key, value: unknown) => {
    if (typeof value !== 'string' || !value.startsWith(prefix)) return value;
    const kept = value.slice(prefix.length);
    return /^-?\d/.test(kept) ? kept : Number(kept);
  });
}
