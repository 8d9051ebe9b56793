export * from './store.js';
export { LocalStore, type LocalStoreOptions } from './local/local-store.js';
export type { StoreKind, StoreLocation, StoreOptions, StoreOptionValue } from './location.js';
export { type ObjectKind, KIND_CODES, kindFromCode } from './object-kinds.js';
export {
  type StoreOperation,
  type Sleep,
  STORE_OPERATIONS,
  abortableSleep,
  throwIfAborted,
} from './wrappers/operations.js';
export { ForwardingStore, unwrapStore, type Passage, type Traffic } from './wrappers/forwarding.js';
export {
  RetryingStore,
  isStall,
  isTransientError,
  type RetryOptions,
  type RetryInfo,
  DEFAULT_MAX_RETRIES,
  DEFAULT_MAX_STALLS,
} from './wrappers/retry.js';
export { DeadlineError } from './wrappers/timeout.js';
export {
  ConcurrencyLimitedStore,
  type ConcurrencyLimitOptions,
  DEFAULT_MAX_CONCURRENT,
} from './wrappers/limit.js';
export {
  MeteredStore,
  type MeteredStoreOptions,
  type MetricsSnapshot,
  type OperationMetrics,
  DURATION_BUCKETS_MS,
} from './wrappers/metrics.js';
export { presentEverywhere } from './multi/present-everywhere.js';
export {
  MultiStore,
  type MirrorFailures,
  type MirrorSide,
  type MultiStoreOptions,
  type Divergence,
  type RefMismatch,
  type SizeMismatch,
} from './multi/multi-store.js';
export {
  openStore,
  openBackend,
  parseStoreUrl,
  checkStoreOptions,
  validateStoreOptions,
  multiSides,
  SECRET_OPTIONS,
  isSecretOption,
  OPTION_TABLES,
  type MultiSide,
  type OpenedStore,
} from './open.js';
export {
  StoredLocks,
  LOCK_REF_PREFIX,
  lockIdOf,
  createLock,
  listLocks,
  readLock,
  releaseLock,
  isLockRecordName,
  type HeldLock,
  type LockResult,
} from './locks.js';
