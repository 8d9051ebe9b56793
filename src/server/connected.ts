/**
 * Objects this process has found connected (connectivity.ts): present, and everything they lead
 * to present. Objects are never removed by a write token, so the answer stays true (a gc sweep or
 * a DELETE, admin only, makes the server forget the repository's); the set is
 * an LRU, so a long-running server forgets the oldest and walks them again if it must.
 *
 * Chunks lead to nothing: one this process stored (or storage confirmed) is connected, kept as
 * `chunks/<oid>` so it is never taken for an object of the same ID. A manifest stored or found
 * present is connected too: it is stored only once its chunks are (routes/objects.ts).
 */

/** IDs remembered, over all repositories. */
const MAX_CONNECTED = 200_000;

export class ConnectedObjects {
  private readonly ids = new Set<string>();

  has(repo: string, oid: string): boolean {
    return this.ids.has(`${repo}\0${oid}`);
  }

  add(repo: string, oid: string): void {
    const id = `${repo}\0${oid}`;
    if (this.ids.has(id)) return;
    if (this.ids.size >= MAX_CONNECTED) this.ids.delete(this.ids.values().next().value!);
    this.ids.add(id);
  }

  /** Forgets a repository's objects: an admin's gc sweep may have deleted some of them. */
  forget(repo: string): void {
    const prefix = `${repo}\0`;
    for (const id of this.ids) if (id.startsWith(prefix)) this.ids.delete(id);
  }
}
