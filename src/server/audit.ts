/**
 * The audit log (docs/protocol.md "Audit log"): one JSON line per write and per failed
 * authentication or authorisation, on standard error or appended to `MEDIAGIT_AUDIT_LOG`.
 *
 *   {"time","event","repo","identity","ip","target","status"[,"reason"]}
 *
 * Lines name who did what to which key or ref and how it ended; they never hold a token, a key,
 * a secret or object content.
 */
import { createWriteStream, type WriteStream } from 'node:fs';

export type AuditEventName =
  | 'put'
  | 'pack'
  | 'delete'
  | 'ref_update'
  | 'lock'
  | 'unlock'
  | 'auth_failure'
  | 'forbidden'
  | 'failures_suppressed';

export interface AuditEvent {
  readonly event: AuditEventName;
  readonly repo: string | null;
  /** Subject of the identity; null when authentication failed. */
  readonly identity: string | null;
  readonly ip: string;
  /** Store key, ref name, lock path or endpoint the event is about. */
  readonly target: string | null;
  readonly status: number;
  /** Short machine-readable cause of a failure (e.g. "expired"). */
  readonly reason?: string;
  /** `failures_suppressed`: how many failure lines of this client were left out. */
  readonly count?: number;
}

export interface AuditThrottle {
  /** Failure lines written per client per interval; the rest are counted. */
  readonly linesPerInterval: number;
  readonly intervalMs: number;
}

export const DEFAULT_AUDIT_THROTTLE: AuditThrottle = { linesPerInterval: 5, intervalMs: 60_000 };

interface Window {
  readonly started: number;
  written: number;
  suppressed: number;
  readonly identity: string | null;
  readonly ip: string;
  readonly reason: string | undefined;
}

export interface AuditSink {
  write(line: string): void;
  close(): Promise<void>;
}

export function stderrSink(): AuditSink {
  return { write: (line) => void process.stderr.write(line), close: async () => {} };
}

export function fileSink(path: string): AuditSink {
  const stream: WriteStream = createWriteStream(path, { flags: 'a', mode: 0o600 });
  // A failing audit file must not take the server down; the failure is reported once on stderr.
  let reported = false;
  stream.on('error', (err) => {
    if (!reported)
      process.stderr.write(`mediagit server: audit log ${path} failed: ${err.message}\n`);
    reported = true;
  });
  return {
    write: (line) => void stream.write(line),
    close: () => new Promise<void>((resolve) => stream.end(resolve)),
  };
}

/**
 * Writes are always logged. Failures (401, 403) are logged up to `linesPerInterval` per client
 * (identity, or address when there is none) and cause per interval; past that they are counted, and one
 * `failures_suppressed` line with the count closes the interval — so a client hammering the
 * server with bad tokens costs the log a few lines a minute, not one per request.
 */
export class AuditLog {
  private readonly windows = new Map<string, Window>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly sink: AuditSink,
    private readonly throttle: AuditThrottle = DEFAULT_AUDIT_THROTTLE,
    private readonly now: () => number = Date.now,
  ) {
    this.timer = setInterval(() => this.flush(false), throttle.intervalMs);
    this.timer.unref();
  }

  record(event: AuditEvent): void {
    if (event.event === 'auth_failure' || event.event === 'forbidden') {
      // Per client and cause: a flood of one kind cannot hide the first line of another.
      const client = event.identity !== null ? `id:${event.identity}` : `ip:${event.ip}`;
      const key = `${client} ${event.reason ?? ''}`;
      let window = this.windows.get(key);
      if (window !== undefined && this.now() - window.started >= this.throttle.intervalMs) {
        this.summarise(window);
        window = undefined;
      }
      if (window === undefined) {
        window = {
          started: this.now(),
          written: 0,
          suppressed: 0,
          identity: event.identity,
          ip: event.ip,
          reason: event.reason,
        };
        this.windows.set(key, window);
      }
      if (window.written >= this.throttle.linesPerInterval) {
        window.suppressed++;
        return;
      }
      window.written++;
    }
    this.write(event);
  }

  private write(event: AuditEvent): void {
    const line = { time: new Date(this.now()).toISOString(), ...event };
    this.sink.write(`${JSON.stringify(line)}\n`);
  }

  private summarise(window: Window): void {
    if (window.suppressed === 0) return;
    this.write({
      event: 'failures_suppressed',
      repo: null,
      identity: window.identity,
      ip: window.ip,
      target: null,
      status: 0,
      ...(window.reason !== undefined ? { reason: window.reason } : {}),
      count: window.suppressed,
    });
  }

  /** Closes every interval that has ended (all of them when `all`), writing their summaries. */
  flush(all: boolean): void {
    const now = this.now();
    for (const [key, window] of this.windows) {
      if (!all && now - window.started < this.throttle.intervalMs) continue;
      this.summarise(window);
      this.windows.delete(key);
    }
  }

  close(): Promise<void> {
    clearInterval(this.timer);
    this.flush(true);
    return this.sink.close();
  }
}
