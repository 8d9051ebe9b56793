/**
 * Keys this process just reported absent to a client's existence check (`POST /chunks/check`),
 * remembered for a short while: the client's next step is to upload exactly those, and storing
 * one needs no second look at the storage first. A content-addressed key holds the same verified
 * bytes whoever writes it, so if another client stored it meanwhile, writing it again is
 * harmless (the answer says 201 where a look would have said 200). Each key is taken once, so a
 * repeated PUT looks again; an entry older than the window, or forgotten (the set is bounded),
 * means a look as before. Per process: a PUT landing on another replica simply looks.
 */

/** How long a check's answer spares the look before a PUT. */
const WINDOW_MS = 120_000;
/** Keys remembered, over all repositories; the oldest go first. */
const MAX_KEYS = 100_000;

export class RecentlyAbsent {
  private readonly keys = new Map<string, number>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  note(repo: string, keys: Iterable<string>): void {
    const at = this.now();
    for (const key of keys) {
      const id = `${repo}\0${key}`;
      this.keys.delete(id);
      if (this.keys.size >= MAX_KEYS) this.keys.delete(this.keys.keys().next().value!);
      this.keys.set(id, at);
    }
  }

  /** Whether `key` was reported absent within the window; forgets it either way. */
  take(repo: string, key: string): boolean {
    const id = `${repo}\0${key}`;
    const at = this.keys.get(id);
    if (at === undefined) return false;
    this.keys.delete(id);
    return this.now() - at < WINDOW_MS;
  }
}
