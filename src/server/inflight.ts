/**
 * Bytes in flight: request bodies the server has agreed to receive and not yet finished with.
 * Each body reserves its declared length (the endpoint's limit when it is chunked) before a byte is
 * read, against one budget per identity and one for the whole server, and gives it back when its
 * request ends, however it ends. So a client that opens hundreds of uploads and stalls holds no
 * more than its own budget, and memory stays bounded whatever clients do. Over an identity's
 * budget → 429, over the server's → 503, both with `Retry-After`.
 */
import { HttpError } from './errors.js';

export interface InFlightLimits {
  /** Bytes one identity (or address, for anonymous requests) may have in flight. */
  readonly perIdentity: number;
  /** Bytes the whole server may have in flight. */
  readonly total: number;
}

export class InFlightBudget {
  private readonly byKey = new Map<string, number>();
  private total = 0;

  constructor(private readonly limits: InFlightLimits) {}

  /** Reserves `bytes` for `key`; returns the release (idempotent), or throws 429/503. */
  reserve(key: string, bytes: number): () => void {
    const held = this.byKey.get(key) ?? 0;
    // A single body larger than a budget would never fit: it may go alone.
    if (held > 0 && held + bytes > this.limits.perIdentity)
      throw new HttpError(
        429,
        'rate_limited',
        `too many bytes in flight for this client (limit ${this.limits.perIdentity})`,
        {},
        { 'retry-after': '1' },
      );
    if (this.total > 0 && this.total + bytes > this.limits.total)
      throw new HttpError(
        503,
        'unavailable',
        'the server is receiving as much as it can, try again',
        {},
        { 'retry-after': '1' },
      );
    this.byKey.set(key, held + bytes);
    this.total += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total -= bytes;
      const left = (this.byKey.get(key) ?? bytes) - bytes;
      if (left <= 0) this.byKey.delete(key);
      else this.byKey.set(key, left);
    };
  }

  /** Bytes reserved now (for tests and the soak script's figures). */
  get reserved(): number {
    return this.total;
  }
}
