/**
 * An in-memory Store for wrapper tests. Its ref versions are a counter, not the OID, so it
 * behaves like an ETag/generation backend: a RefValue only matches the exact version it was read
 * at. `around` lets a test fail, delay or observe any call.
 */
import { NotFoundError } from '../../../src/errors/index.js';
import {
  BASIC_CAPABILITIES,
  assertCreatableKey,
  assertValidKey,
  assertValidRefName,
  assertValidRefTarget,
  throwIfAborted,
  type ListedKey,
  type OperationOptions,
  type RefValue,
  type Store,
  type StoreOperation,
} from '../../../src/store/index.js';

export type Around = <T>(op: StoreOperation, target: string, run: () => Promise<T>) => Promise<T>;

const passThrough: Around = (_op, _target, run) => run();

export class MemoryStore implements Store {
  readonly description = 'memory';
  readonly capabilities = BASIC_CAPABILITIES;
  readonly objects = new Map<string, Buffer>();
  readonly refs = new Map<string, RefValue>();
  readonly calls: Partial<Record<StoreOperation, number>> = {};
  around: Around = passThrough;
  closed = false;
  private generation = 0;

  private call<T>(
    options: OperationOptions | undefined,
    op: StoreOperation,
    target: string,
    run: () => T | Promise<T>,
  ): Promise<T> {
    throwIfAborted(options?.signal);
    this.calls[op] = (this.calls[op] ?? 0) + 1;
    return this.around(op, target, async () => run());
  }

  async get(key: string, options?: OperationOptions): Promise<Buffer> {
    assertValidKey(key);
    return this.call(options, 'get', key, () => {
      const data = this.objects.get(key);
      if (!data) throw new NotFoundError(key);
      return Buffer.from(data);
    });
  }

  async put(key: string, data: Uint8Array, options?: OperationOptions): Promise<void> {
    assertValidKey(key);
    return this.call(options, 'put', key, () => {
      if (!this.objects.has(key)) this.objects.set(key, Buffer.from(data));
    });
  }

  async create(key: string, data: Uint8Array, options?: OperationOptions): Promise<boolean> {
    assertCreatableKey(key);
    return this.call(options, 'put', key, () => {
      if (this.objects.has(key)) return false;
      this.objects.set(key, Buffer.from(data));
      return true;
    });
  }

  async has(keys: readonly string[], options?: OperationOptions): Promise<boolean[]> {
    for (const key of keys) assertValidKey(key);
    return this.call(options, 'has', `${keys.length} keys`, () =>
      keys.map((key) => this.objects.has(key)),
    );
  }

  async *list(prefix: string, options?: OperationOptions): AsyncIterable<ListedKey> {
    const items = await this.call(options, 'list', prefix, () =>
      [...this.objects]
        .filter(([key]) => key.startsWith(prefix))
        .map(([key, data]) => ({ key, size: data.length })),
    );
    yield* items;
  }

  async delete(key: string, options?: OperationOptions): Promise<void> {
    assertValidKey(key);
    return this.call(options, 'delete', key, () => {
      this.objects.delete(key);
    });
  }

  async readRef(name: string, options?: OperationOptions): Promise<RefValue | null> {
    assertValidRefName(name);
    return this.call(options, 'readRef', name, () => this.refs.get(name) ?? null);
  }

  async compareAndSwapRef(
    name: string,
    expected: RefValue | null,
    next: string | null,
    options?: OperationOptions,
  ): Promise<boolean> {
    assertValidRefName(name);
    assertValidRefTarget(next);
    return this.call(options, 'compareAndSwapRef', name, () => this.swap(name, expected, next));
  }

  /**
   * The CAS itself, synchronous and so atomic; tests also use it to move a ref behind a wrapper's
   * back. A version equal to the OID gets value semantics, as the Store contract asks.
   */
  swap(name: string, expected: RefValue | null, next: string | null): boolean {
    const current = this.refs.get(name) ?? null;
    const matches =
      current === null
        ? expected === null
        : expected !== null &&
          (expected.version === current.version ||
            (expected.version === expected.oid && expected.oid === current.oid));
    if (!matches) return false;
    if (next === null) this.refs.delete(name);
    else this.refs.set(name, { oid: next, version: `v${++this.generation}` });
    return true;
  }

  async listRefs(prefix: string, options?: OperationOptions): Promise<Map<string, RefValue>> {
    return this.call(
      options,
      'listRefs',
      prefix,
      () => new Map([...this.refs].filter(([name]) => name.startsWith(prefix))),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
