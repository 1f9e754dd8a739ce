/**
 * Frees a large message value's memory as soon as its batch is durable, instead of when V8
 * next collects: a dead Buffer's memory is returned only by a garbage collection, and V8 lets
 * tens of MB of them pile up (measured: 30 to 90 MB of 700 KB chunk messages, the whole of the
 * 64 MB a 256 MiB snapshot may add). Only a value that alone owns its ArrayBuffer is freed
 * (node-rdkafka copies each message into its own); views of a shared buffer are left to the GC.
 * Whatever still points at a freed value sees an empty Buffer (a BulkString says so).
 */
export const RELEASE_MIN_BYTES = 64 * 1024

interface Transferable { transfer (length: number): ArrayBuffer, readonly detached: boolean }

/** The value is large and alone on its ArrayBuffer: freeing it cannot touch other data. */
export function releasable (v: Buffer | null): v is Buffer {
  return v !== null && v.length >= RELEASE_MIN_BYTES && v.byteOffset === 0 && v.buffer instanceof ArrayBuffer && v.buffer.byteLength === v.length
}

/** Detaches the value's ArrayBuffer, which frees its memory now. */
export function release (v: Buffer): void {
  const ab = v.buffer as unknown as Transferable
  if (!ab.detached) ab.transfer(0)
}
