import type { QueryResult } from './query.js';

/**
 * UTF-16 characters a chunk of an answer's text holds at most (a row longer than that is sliced;
 * in UTF-8 a chunk is 64 KiB to about 192 KiB): a server writes a chunk once its client took the
 * last, so that it holds about one chunk of the text at a time, not the text.
 */
export const ANSWER_CHUNK_CHARS = 64 * 1024;

/**
 * The JSON of a query's answer, chunk by chunk, each made when it is asked for: joined, exactly
 * `JSON.stringify(result)` (its fields in their order, `rows` a row at a time).
 *
 * @example
 * for (const chunk of jsonAnswer(result)) socket.write(chunk);
 */
export function* jsonAnswer(result: QueryResult): Generator<string, void, undefined> {
  let chunk = '{';
  let first = true;
  for (const [key, value] of Object.entries(result)) {
    if (key !== 'rows' || !Array.isArray(value)) {
      // As JSON.stringify leaves out a field whose value has no JSON (undefined, a function).
      const text = JSON.stringify(value) as string | undefined;
      if (text === undefined) continue;
      chunk += `${first ? '' : ','}${JSON.stringify(key)}:${text}`;
      first = false;
      continue;
    }
    chunk += `${first ? '' : ','}"rows":[`;
    first = false;
    const rows: readonly unknown[] = value;
    for (let i = 0; i < rows.length; i++) {
      // An element without JSON is null in an array.
      const row = `${i === 0 ? '' : ','}${(JSON.stringify(rows[i]) as string | undefined) ?? 'null'}`;
      if (chunk.length > 0 && chunk.length + row.length > ANSWER_CHUNK_CHARS) {
        yield* sliced(chunk);
        chunk = '';
      }
      chunk += row;
    }
    chunk += ']';
  }
  yield* sliced(`${chunk}}`);
}

/**
 * The RFC 4180 CSV of a query's answer, chunk by chunk, each made when it is asked for: a header
 * line, then one line per row, each ended by CRLF; a value with a comma, quote or line break
 * quoted, a list or an object as its JSON, NULL as nothing.
 */
export function* csvAnswer(result: QueryResult): Generator<string, void, undefined> {
  let chunk = `${result.columns.map((c) => csvCell(c.name)).join(',')}\r\n`;
  for (const row of result.rows) {
    const line = `${row.map(csvCell).join(',')}\r\n`;
    if (chunk.length > 0 && chunk.length + line.length > ANSWER_CHUNK_CHARS) {
      yield* sliced(chunk);
      chunk = '';
    }
    chunk += line;
  }
  yield* sliced(chunk);
}

/**
 * `text` in slices of `ANSWER_CHUNK_CHARS` characters at most (one less where a slice would end
 * between the two halves of a surrogate pair, so that each slice is valid UTF-16 on its own).
 */
export function* sliced(text: string): Generator<string, void, undefined> {
  let at = 0;
  while (text.length - at > ANSWER_CHUNK_CHARS) {
    let end = at + ANSWER_CHUNK_CHARS;
    const last = text.charCodeAt(end - 1);
    if (last >= 0xd800 && last <= 0xdbff) end--;
    yield text.slice(at, end);
    at = end;
  }
  yield at === 0 ? text : text.slice(at);
}

function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
