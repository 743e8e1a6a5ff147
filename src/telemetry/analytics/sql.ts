/**
 * A name as DuckDB compares names: its ASCII letters in lower case, nothing else changed (É and é
 * are two names to it, unlike to `toLowerCase`).
 */
export function foldCase(name: string): string {
  return name.replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
}

/** A SQL identifier, double-quoted. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * A SQL string literal. DuckDB's parser ends a literal at a NUL character: one is spliced in with
 * `chr(0)` (the value as it was, not cut). Anything not a string is quoted as its `String()`.
 */
export function quoteLiteral(text: string): string {
  const quoted = `'${String(text).replaceAll("'", "''")}'`;
  return quoted.includes('\u0000') ? `(${quoted.replaceAll('\u0000', "' || chr(0) || '")})` : quoted;
}
