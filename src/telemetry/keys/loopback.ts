import { isIPv4, isIPv6 } from 'node:net';

/**
 * Loopback names and addresses. A server bound to loopback is reachable from this machine only,
 * but a page in a browser here can still reach it by DNS rebinding: its own name resolves to
 * 127.0.0.1, and its requests carry that name in `Host`. Answering only loopback hosts stops it.
 */

/** A host name as names compare: lower case, without the root's trailing dot. */
export function hostName(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}

/** `localhost` (and `*.localhost`, which browsers resolve to loopback themselves), 127.0.0.0/8, ::1. */
export function isLoopbackHost(host: string): boolean {
  const name = hostName(host);
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (isIPv4(name)) return name.startsWith('127.');
  if (isIPv6(name)) return name === '::1' || /^::ffff:127\.\d+\.\d+\.\d+$/.test(name);
  return false;
}

/** `name`, `name:port`, `[v6]` or `[v6]:port`, and nothing else. */
const HOST_HEADER = /^(?:\[([^\]]*)\]|([^:[\]]*))(?::\d{1,5})?$/;

/**
 * The host name of a `Host` header (`name`, `name:port`, `[v6]`, `[v6]:port`); `undefined` for
 * anything else (`127.0.0.1:80@example.com`, two colons…), which no browser sends.
 */
export function hostOfHeader(header: string): string | undefined {
  const match = HOST_HEADER.exec(header);
  return match === null ? undefined : (match[1] ?? match[2]);
}

/**
 * Whether a loopback server may answer a request with this `Host` header: a loopback name or
 * address, or one of `names` (the name it was told to listen on, which resolves to loopback
 * here: a page elsewhere cannot make a browser send it). A request without one (HTTP/1.0)
 * passes: browsers always send it.
 */
export function loopbackHostAllowed(header: string | undefined, names: readonly string[] = []): boolean {
  if (header === undefined) return true;
  const host = hostOfHeader(header);
  return host !== undefined && (isLoopbackHost(host) || names.includes(hostName(host)));
}
