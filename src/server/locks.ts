/**
 * File locks (docs/protocol.md "Locks"): the server keeps them in the repository's storage with
 * the same layout and compare-and-swap a client uses on a folder or bucket remote, so that code
 * lives with the stores and the lock endpoints use it from there.
 */
export {
  LOCK_REF_PREFIX,
  createLock,
  isLockRecordName,
  listLocks,
  lockIdOf,
  readLock,
  releaseLock,
  type HeldLock,
  type Lock,
  type LockResult,
} from '../store/locks.js';
