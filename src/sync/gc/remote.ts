/**
 * `gc --remote` against any remote: a bucket or folder is swept from here; a mediagit server
 * sweeps next to its storage (POST /gc/sweep, admin), because the sweeper lease is a ref under
 * `refs/locks/`, which clients may not write through the server, and because the server need not
 * send this client every key of the repository.
 */
import { LockedError, StoreUnavailableError } from '../../errors/index.js';
import { HttpStore, ProtocolError } from '../../store/http/index.js';
import { unwrapStore, type Store } from '../../store/index.js';
import type { ObjectOpener } from './mark.js';
import { collectRemoteGarbage, type RemoteGcOptions, type RemoteGcReport } from './sweep.js';

export async function sweepRemote(
  repo: ObjectOpener,
  store: Store,
  options: RemoteGcOptions,
): Promise<RemoteGcReport> {
  const server = unwrapStore(store, HttpStore);
  if (server === null) return collectRemoteGarbage(repo, store, options);
  const { policy } = options;
  const lines = await server.sweepGarbage(
    {
      keep: policy.keep.map((rule) => `${rule.pattern}=${rule.versions}`),
      ...(policy.olderThanMs === undefined ? {} : { older_than_ms: policy.olderThanMs }),
      grace_ms: options.graceMs,
      dry_run: options.dryRun ?? false,
      list_keys: options.listKeys ?? true,
    },
    options.signal ? { signal: options.signal } : {},
  );
  const last = lines.at(-1);
  const report = last?.['report'];
  if (typeof report === 'object' && report !== null) {
    const result = report as RemoteGcReport;
    // The server's deletions are its own; replayed here so a caller's progress sees the total.
    options.progress?.start(
      'gc',
      result.deleted.expired.count + result.deleted.unreachable.count,
      result.freedBytes,
    );
    options.progress?.bytes(result.freedBytes);
    options.progress?.stop();
    return result;
  }
  const message = typeof last?.['message'] === 'string' ? last['message'] : '';
  const hint = typeof last?.['hint'] === 'string' ? { hint: last['hint'] } : {};
  if (last?.['error'] === 'E_LOCKED') throw new LockedError(message, hint);
  if (last?.['error'] === undefined || last['error'] === 'E_INTERRUPTED')
    throw new StoreUnavailableError(
      `${server.url}: the sweep stopped before it finished${message ? ` (${message})` : ''}`,
      { hint: 'what it deleted stays deleted and nothing reachable was touched; run gc again' },
    );
  throw new ProtocolError(`${server.url}: the sweep failed: ${message}`, hint);
}
