/**
 * Frees a large buffer's memory now, by detaching it, instead of at the next garbage collection:
 * a worker's small heap would otherwise let hundreds of MiB of finished chunks pile up, and
 * memory freed in bulk returns to the OS only to be faulted back in for the next chunk.
 *
 * The caller must own the whole ArrayBuffer behind `view` (a chunk, zstd's or a cipher's output,
 * even when `view` is only part of it). Buffers under 64 KiB are left alone: among them is Node's
 * shared pool slab, which backs small Buffers the caller does not own.
 */
export function releaseMemory(view: Uint8Array): void {
  const buffer = view.buffer;
  if (!(buffer instanceof ArrayBuffer) || buffer.detached || buffer.byteLength < 64 * 1024) return;
  try {
    buffer.transfer(0);
  } catch {
    // Some buffers Node allocates natively refuse detaching; those wait for the collector.
  }
}

/**
 * One buffer holding `pieces` in order: the only piece itself, or else a copy, with the pieces (the
 * caller's own memory, a cipher's output) freed once copied.
 */
export function joinReleasing(pieces: readonly Buffer[]): Buffer {
  if (pieces.length === 1) return pieces[0]!;
  const joined = Buffer.concat(pieces);
  for (const piece of pieces) releaseMemory(piece);
  return joined;
}
