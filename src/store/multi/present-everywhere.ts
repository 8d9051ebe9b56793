import type { OperationOptions, Replicas, Store } from '../store.js';
import { ForwardingStore } from '../wrappers/forwarding.js';

/** A store whose `has` asks every copy: see presentEverywhere. */
class PresentEverywhere extends ForwardingStore {
  constructor(
    inner: Store,
    private readonly replicas: Replicas,
  ) {
    super(inner);
  }

  override has(keys: readonly string[], options?: OperationOptions): Promise<boolean[]> {
    return this.replicas.hasEverywhere(keys, options);
  }
}

/**
 * `store` as a writer that must leave every copy whole should see it: `has` is true only where
 * every copy holds the key (a multi remote's primary AND secondary), so whatever one side lacks is
 * planned as missing and written again. A store with a single copy is returned as it is.
 */
export function presentEverywhere(store: Store): Store {
  const replicas = store.capabilities.replicas;
  return replicas ? new PresentEverywhere(store, replicas) : store;
}
