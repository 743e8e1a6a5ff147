import { request } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';

/** An answer as the tests look at it. */
export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: { error?: { code: string; message: string }; inserted?: boolean; status?: string };
}

/** POSTs bytes to an ingestion route. */
export async function post(
  base: string,
  kind: string,
  body: Uint8Array | string,
  contentType: string | null = 'application/cbor',
): Promise<Answer> {
  const headers: Record<string, string> = contentType === null ? {} : { 'content-type': contentType };
  const res = await fetch(`${base}/ingestion/insert_${kind}`, { method: 'POST', headers, body });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Answer['body'] };
}

/** GETs a path. */
export async function get(base: string, path: string): Promise<Answer> {
  const res = await fetch(`${base}${path}`);
  return { status: res.status, headers: res.headers, body: (await res.json()) as Answer['body'] };
}

/** Sends a request with a declared Content-Length but (almost) no body, and returns the status. */
export function postDeclaring(
  base: string,
  kind: string,
  declared: number,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/ingestion/insert_${kind}`, {
      method: 'POST',
      headers: { 'content-type': 'application/cbor', 'content-length': declared },
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.write(Buffer.alloc(16));
  });
}

/** A loopback port nothing listens on (taken, then released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** A raw TCP connection to a server: what it was sent, piece by piece, and all it answered. */
export interface RawConnection {
  readonly socket: Socket;
  /** Everything the server sent, once it closed the connection. */
  readonly answer: Promise<string>;
  /** True once the server closed (or reset) the connection. */
  closed(): boolean;
}

/** Opens a raw connection to a loopback port, writing `first` once connected. */
export function rawConnection(port: number, first: string | Uint8Array = ''): RawConnection {
  const socket = connect(port, '127.0.0.1');
  // Written at once: the socket keeps what is written before it connects, in order.
  if (first.length > 0) socket.write(first);
  let text = '';
  let done = false;
  socket.on('data', (d: Buffer) => {
    text += d.toString();
  });
  const answer = new Promise<string>((resolve) => {
    socket.on('error', () => {});
    socket.on('close', () => {
      done = true;
      resolve(text);
    });
  });
  return { socket, answer, closed: () => done };
}

/** The status and JSON body of a raw HTTP/1.1 answer. */
export function parseRaw(text: string): { status: number; body: Answer['body'] } {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  const body = text.slice(text.indexOf('\r\n\r\n') + 4);
  return { status, body: body === '' ? {} : (JSON.parse(body) as Answer['body']) };
}

/** What a server-sent event stream sends up to its first event (its `retry:` line included); then leaves it. */
export async function untilFirstEvent(response: Response): Promise<string> {
  const reader = response.body!.getReader();
  let events = '';
  for (let read = await reader.read(); !read.done; read = await reader.read()) {
    events += new TextDecoder().decode(read.value);
    if (events.includes('event: ')) break;
  }
  await reader.cancel();
  return events;
}
