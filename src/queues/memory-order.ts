/**
 * Which orderings the seqlock relies on.
 *
 * The default is sound by the ECMAScript memory model on every CPU and engine. Plain TypedArray
 * accesses are Unordered events: they are ordered across threads only through happens-before,
 * which only `Atomics` operations create (an SC write synchronizes-with the SC read that reads
 * from it). So:
 * - a writer publishes with an SC store of the done version: a reader whose SC load reads it sees
 *   every payload byte stored before it;
 * - a reader re-checks the version with a read-modify-write that writes back what it reads
 *   (`Atomics.add(…, 0)`), and a writer claims a slot with a read-modify-write (`Atomics.exchange`
 *   or `compareExchange`): if the re-check read the version from before the claim, the claim reads
 *   from the re-check (or from a later one), which therefore synchronizes-with it, and the reader's
 *   copy happens-before every store of the later lap: the copy cannot have read any of them.
 * A plain store, or an SC load as the re-check, creates no edge from reader to writer, and the
 * model then lets a reader accept bytes of a later lap (what a fence gives in C++, JavaScript
 * only gives through a read-modify-write).
 *
 * `DORSAL_MEMORY_ORDER=x86-v8` in the environment opts into the older, faster path on x86: the
 * odd version, the re-check and (for a producer that wakes no one) the done version become plain
 * stores and loads. It is correct only because x86 keeps stores in order with stores and loads
 * with loads, and because V8 happens to emit TypedArray accesses in program order around `Atomics`
 * calls; nothing in the language promises the second. Elsewhere the variable is ignored.
 */
export const V8_X86_ORDERING: boolean =
  (process.arch === 'x64' || process.arch === 'ia32') && process.env.DORSAL_MEMORY_ORDER === 'x86-v8';
