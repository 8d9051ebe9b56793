/**
 * Per-client token buckets (docs/protocol.md "Limits"): each identity (or IP address, for requests
 * without one) may make `burst` requests at once and `rps` per second on average. The buckets are
 * per process — each replica limits what reaches it — which is what protects the process; the
 * protocol's promise to clients is only "429 with Retry-After", and every replica keeps it.
 */
export interface RateDecision {
  readonly allowed: boolean;
  /** Whole seconds until one request will be allowed again (when not allowed). */
  readonly retryAfterS: number;
}

interface Bucket {
  tokens: number;
  updated: number;
}

/** Buckets kept before idle (full) ones are dropped. */
const SWEEP_AT = 10_000;

export class TokenBucketLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly rps: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes one token from `key`'s bucket. */
  take(key: string): RateDecision {
    const now = this.now();
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= SWEEP_AT) this.sweep(now);
      bucket = { tokens: this.burst, updated: now };
      this.buckets.set(key, bucket);
    } else {
      bucket.tokens = Math.min(
        this.burst,
        bucket.tokens + ((now - bucket.updated) / 1000) * this.rps,
      );
      bucket.updated = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true, retryAfterS: 0 };
    }
    return { allowed: false, retryAfterS: Math.max(1, Math.ceil((1 - bucket.tokens) / this.rps)) };
  }

  /** Whether `key`'s bucket holds a token, without taking it. */
  peek(key: string): RateDecision {
    const bucket = this.buckets.get(key);
    if (bucket === undefined) return { allowed: true, retryAfterS: 0 };
    const tokens = Math.min(
      this.burst,
      bucket.tokens + ((this.now() - bucket.updated) / 1000) * this.rps,
    );
    if (tokens >= 1) return { allowed: true, retryAfterS: 0 };
    return { allowed: false, retryAfterS: Math.max(1, Math.ceil((1 - tokens) / this.rps)) };
  }

  /** Forgets buckets that have refilled completely: they behave exactly like new ones. */
  private sweep(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.updated) / 1000) * this.rps >= this.burst)
        this.buckets.delete(key);
    }
  }
}
