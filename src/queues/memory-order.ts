/**
 * Which fences the seqlock needs on this CPU.
 *
 * On x86 (total store order) the hardware keeps stores in program order with other stores, and
 * loads with other loads; only a store followed by a load of another address may be reordered.
 * So a seqlock writer needs no fence between its odd version store and the payload stores, and
 * a reader none between the payload loads and its version re-check — exactly what a Rust or C++
 * seqlock compiles to there (its fences are compiler barriers only). What keeps V8 from
 * reordering those plain TypedArray accesses is that it emits memory accesses in program order
 * around `Atomics` operations, which sit on the same effect chain.
 *
 * On ARM64 (and any other CPU, to be safe) plain stores and loads may be reordered by the
 * hardware, so the queue pays for SC `Atomics` operations at those two places (see Producer and
 * Consumer for what each orders).
 *
 * `DORSAL_MEMORY_ORDER=weak` in the environment forces the fenced path on x86 too, so that the
 * tests run both paths on the machines CI has.
 */
export const TOTAL_STORE_ORDER: boolean =
  (process.arch === 'x64' || process.arch === 'ia32') && process.env.DORSAL_MEMORY_ORDER !== 'weak';
