import {
  assertCreatableKey,
  assertObjectKey,
  assertValidKey,
  assertValidRefName,
  assertValidRefTarget,
  type AdoptResult,
  type BatchTransfer,
  type ListedKey,
  type LocalFileTransfer,
  type LocalObjectFile,
  type Negotiator,
  type OperationOptions,
  type SwapOptions,
  type RefValue,
  type Replicas,
  type Store,
  type StoreCapabilities,
  type StreamedObject,
  type StreamingRead,
} from '../store.js';
import type { StoreOperation } from './operations.js';

/** What a call moved, for counters: payload bytes and items (keys asked, keys listed, refs). */
export interface Traffic {
  readonly bytesRead?: number;
  readonly bytesWritten?: number;
  readonly items?: number;
}

/** One call on its way through a wrapper to the inner store. */
export interface Passage<T> {
  /**
   * The Store operation it counts as: batches and the local fast path count as `get` (reads,
   * lending files) and `put` (writes, adopting files), so limits, retries and counters treat them
   * like the single-object calls they replace.
   */
  readonly operation: StoreOperation;
  /** Key, ref name or prefix; for a batch, a count such as "12 objects". For messages. */
  readonly target: string;
  readonly options: OperationOptions | undefined;
  /**
   * Sends the call to the inner store. May be run more than once (retries). A wrapper that must
   * be able to cancel one attempt (a deadline) passes its own signal, which then replaces the
   * caller's; it is the wrapper's job to have it follow the caller's too.
   */
  readonly run: (signal?: AbortSignal) => Promise<T>;
  /** What a successful call moved. */
  readonly traffic?: (result: T) => Traffic;
}

/** `options` with `signal` in place of the caller's, when a wrapper gave one. */
function withSignal<O extends OperationOptions>(
  options: O | undefined,
  signal: AbortSignal | undefined,
): O | undefined {
  return signal === undefined ? options : ({ ...options, signal } as O);
}

const sum = <T>(items: Iterable<T>, size: (item: T) => number): number => {
  let total = 0;
  for (const item of items) total += size(item);
  return total;
};

/**
 * The base of every Store wrapper (retries, limits, metrics, test fault injection): it validates
 * arguments, then hands every call — the Store methods and the capabilities' batch and
 * local-file calls alike — to one hook, `pass`, which a wrapper overrides to do its job around
 * the inner call. Capabilities are forwarded as the inner store has them, so no wrapper copies
 * optional members by hand, and none can forget one. Locks are not Store traffic and pass
 * through untouched (their client retries on its own; see sync/locks.ts).
 *
 * Arguments are validated here, before `pass`, so an invalid key is a TypeError that is never
 * queued, counted, retried or sent.
 */
export abstract class ForwardingStore implements Store {
  readonly description: string;
  readonly capabilities: StoreCapabilities;

  constructor(
    readonly inner: Store,
    description: string = inner.description,
  ) {
    this.description = description;
    this.capabilities = this.forwardCapabilities(inner.capabilities);
  }

  /** Runs one call through this wrapper; the default just runs it. */
  protected pass<T>(passage: Passage<T>): Promise<T> {
    return passage.run();
  }

  get(key: string, options?: OperationOptions): Promise<Buffer> {
    return this.validated(
      () => assertValidKey(key),
      () =>
        this.pass({
          operation: 'get',
          target: key,
          options,
          run: (signal) => this.inner.get(key, withSignal(options, signal)),
          traffic: (data) => ({ bytesRead: data.byteLength }),
        }),
    );
  }

  put(key: string, data: Uint8Array, options?: OperationOptions): Promise<void> {
    return this.validated(
      () => assertValidKey(key),
      () =>
        this.pass({
          operation: 'put',
          target: key,
          options,
          run: (signal) => this.inner.put(key, data, withSignal(options, signal)),
          traffic: () => ({ bytesWritten: data.byteLength }),
        }),
    );
  }

  /** Counted and limited as a put; a retry after a lost reply may answer false for our own write (see Store). */
  create(key: string, data: Uint8Array, options?: OperationOptions): Promise<boolean> {
    return this.validated(
      () => assertCreatableKey(key),
      () =>
        this.pass({
          operation: 'put',
          target: key,
          options,
          run: (signal) => this.inner.create(key, data, withSignal(options, signal)),
          traffic: () => ({ bytesWritten: data.byteLength }),
        }),
    );
  }

  has(keys: readonly string[], options?: OperationOptions): Promise<boolean[]> {
    return this.validated(
      () => keys.forEach(assertValidKey),
      () =>
        this.pass({
          operation: 'has',
          target: `${keys.length} keys`,
          options,
          run: (signal) => this.inner.has(keys, withSignal(options, signal)),
          traffic: () => ({ items: keys.length }),
        }),
    );
  }

  /** Forwarded as is; wrappers that act per item or per listing override it. */
  list(prefix: string, options?: OperationOptions): AsyncIterable<ListedKey> {
    return this.inner.list(prefix, options);
  }

  delete(key: string, options?: OperationOptions): Promise<void> {
    return this.validated(
      () => assertValidKey(key),
      () =>
        this.pass({
          operation: 'delete',
          target: key,
          options,
          run: (signal) => this.inner.delete(key, withSignal(options, signal)),
        }),
    );
  }

  readRef(name: string, options?: OperationOptions): Promise<RefValue | null> {
    return this.validated(
      () => assertValidRefName(name),
      () =>
        this.pass({
          operation: 'readRef',
          target: name,
          options,
          run: (signal) => this.inner.readRef(name, withSignal(options, signal)),
        }),
    );
  }

  compareAndSwapRef(
    name: string,
    expected: RefValue | null,
    next: string | null,
    options?: SwapOptions,
  ): Promise<boolean> {
    return this.validated(
      () => {
        assertValidRefName(name);
        assertValidRefTarget(next);
      },
      () =>
        this.pass({
          operation: 'compareAndSwapRef',
          target: name,
          options,
          run: (signal) =>
            this.inner.compareAndSwapRef(name, expected, next, withSignal(options, signal)),
        }),
    );
  }

  listRefs(prefix: string, options?: OperationOptions): Promise<Map<string, RefValue>> {
    return this.pass({
      operation: 'listRefs',
      target: prefix,
      options,
      run: (signal) => this.inner.listRefs(prefix, withSignal(options, signal)),
      traffic: (refs) => ({ items: refs.size }),
    });
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** A throwing check becomes a rejection, as the Store contract asks of invalid arguments. */
  private async validated<T>(check: () => void, call: () => Promise<T>): Promise<T> {
    check();
    return call();
  }

  /** `inner`'s capabilities with their calls passed through this wrapper; locks as they are. */
  protected forwardCapabilities(inner: StoreCapabilities): StoreCapabilities {
    return {
      freshBuffers: inner.freshBuffers,
      ...(inner.batch ? { batch: this.forwardBatch(inner.batch) } : {}),
      ...(inner.localFiles ? { localFiles: this.forwardLocalFiles(inner.localFiles) } : {}),
      ...(inner.locks ? { locks: inner.locks } : {}),
      ...(inner.replicas ? { replicas: this.forwardReplicas(inner.replicas) } : {}),
      ...(inner.negotiate ? { negotiate: this.forwardNegotiate(inner.negotiate) } : {}),
      ...(inner.streaming ? { streaming: this.forwardStreaming(inner.streaming) } : {}),
      // A hint that moves nothing: no limit, retry or count applies to it.
      ...(inner.readAhead ? { readAhead: inner.readAhead } : {}),
      ...(inner.refWriterTokens ? { refWriterTokens: true } : {}),
      ...(inner.prepareRefUpdates ? { prepareRefUpdates: inner.prepareRefUpdates } : {}),
      ...(inner.warmConnections ? { warmConnections: inner.warmConnections } : {}),
      ...(inner.pacing ? { pacing: inner.pacing } : {}),
    };
  }

  private forwardReplicas(replicas: Replicas): Replicas {
    return {
      hasEverywhere: (keys, options) =>
        this.validated(
          () => keys.forEach(assertValidKey),
          () =>
            this.pass({
              operation: 'has',
              target: `${keys.length} keys on every copy`,
              options,
              run: (signal) => replicas.hasEverywhere(keys, withSignal(options, signal)),
              traffic: () => ({ items: keys.length }),
            }),
        ),
    };
  }

  /** A negotiation reads refs and keys: it is limited, retried and counted as a ref listing. */
  private forwardNegotiate(negotiator: Negotiator): Negotiator {
    return {
      negotiate: (request, options) =>
        this.validated(
          () => request.check?.forEach(assertObjectKey),
          () =>
            this.pass({
              operation: 'listRefs',
              target: 'negotiate',
              options,
              run: (signal) => negotiator.negotiate(request, withSignal(options, signal)),
              traffic: () => ({ items: request.check?.length ?? 0 }),
            }),
        ),
      ...(negotiator.history ? { history: this.forwardHistory(negotiator) } : {}),
    };
  }

  /** A history answer is a read of many objects: limited, retried and counted as a `get`. */
  private forwardHistory(negotiator: Negotiator): NonNullable<Negotiator['history']> {
    return (request, options) =>
      this.pass({
        operation: 'get',
        target: `history of ${request.want.length} tips`,
        options,
        run: (signal) => negotiator.history!(request, withSignal(options, signal)),
        traffic: (found) => ({
          bytesRead: found ? sum(found.values(), (d) => d.byteLength) : 0,
        }),
      });
  }

  /** Opening the stream passes through this wrapper as a `get`; the bytes then flow past it. */
  private forwardStreaming(streaming: StreamingRead): StreamingRead {
    return {
      getStream: (key, options) =>
        this.validated(
          () => assertValidKey(key),
          () =>
            this.pass<StreamedObject>({
              operation: 'get',
              target: key,
              options,
              run: (signal) => streaming.getStream(key, withSignal(options, signal)),
              traffic: (opened) => ({ bytesRead: opened.size }),
            }),
        ),
    };
  }

  private forwardBatch(batch: BatchTransfer): BatchTransfer {
    return {
      putMany: (entries, options) =>
        this.validated(
          () => entries.forEach((e) => assertValidKey(e.key)),
          () =>
            this.pass({
              operation: 'put',
              target: `${entries.length} objects`,
              options,
              run: (signal) => batch.putMany(entries, withSignal(options, signal)),
              traffic: () => ({ bytesWritten: sum(entries, (e) => e.data.byteLength) }),
            }),
        ),
      getMany: (keys, options) =>
        this.validated(
          () => keys.forEach(assertValidKey),
          () =>
            this.pass({
              operation: 'get',
              target: `${keys.length} objects`,
              options,
              run: (signal) => batch.getMany(keys, withSignal(options, signal)),
              traffic: (found) => ({ bytesRead: sum(found.values(), (d) => d.byteLength) }),
            }),
        ),
      ...(batch.putManyThenSwap ? { putManyThenSwap: this.forwardPutThenSwap(batch) } : {}),
    };
  }

  /**
   * Counted and limited as the batch it mostly is. Repeating it whole is safe (the caller asked
   * only that the ref end at `next`, and the entries are content-addressed), so a retrying
   * wrapper repeats it as it does a batch.
   */
  private forwardPutThenSwap(batch: BatchTransfer): NonNullable<BatchTransfer['putManyThenSwap']> {
    return (entries, update, options) =>
      this.validated(
        () => {
          entries.forEach((e) => assertValidKey(e.key));
          assertValidRefName(update.name);
          assertValidRefTarget(update.next);
          if (options?.endAtNextIsEnough !== true)
            throw new TypeError('putManyThenSwap is only for updates that end at next is enough');
        },
        () =>
          this.pass({
            operation: 'put',
            target: `${entries.length} objects and ${update.name}`,
            options,
            run: (signal) => batch.putManyThenSwap!(entries, update, withSignal(options, signal)),
            traffic: () => ({ bytesWritten: sum(entries, (e) => e.data.byteLength) }),
          }),
      );
  }

  private forwardLocalFiles(files: LocalFileTransfer): LocalFileTransfer {
    return {
      lend: (keys, options) =>
        this.validated(
          () => keys.forEach(assertObjectKey),
          () =>
            this.pass<LocalObjectFile[]>({
              operation: 'get',
              target: `${keys.length} local files`,
              options,
              run: (signal) => files.lend(keys, withSignal(options, signal)),
              traffic: (lent) => ({ bytesRead: sum(lent, (f) => f.size) }),
            }),
        ),
      adopt: (adopted, options) =>
        this.validated(
          () => adopted.forEach((f) => assertObjectKey(f.key)),
          () =>
            this.pass<AdoptResult>({
              operation: 'put',
              target: `${adopted.length} local files`,
              options,
              run: (signal) => files.adopt(adopted, withSignal(options, signal)),
              // What the store gained: objects it already had cost nothing.
              traffic: (result) => ({ bytesWritten: result.bytes }),
            }),
        ),
    };
  }
}

/**
 * The store of class `type` inside `store`'s wrappers (or `store` itself), or null when there is
 * none — like restic's `AsBackend[T]`. For code that needs what only one backend offers (a mirror's
 * divergence report); everything optional that callers share belongs in StoreCapabilities instead.
 */
export function unwrapStore<T extends Store>(
  store: Store,
  type: abstract new (...args: never[]) => T,
): T | null {
  for (let current: Store | null = store; current !== null;) {
    if (current instanceof type) return current;
    current = current instanceof ForwardingStore ? current.inner : null;
  }
  return null;
}
