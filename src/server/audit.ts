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
  'put' | 'pack' | 'delete' | 'ref_update' | 'lock' | 'unlock' | 'auth_failure' | 'forbidden';

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

export class AuditLog {
  constructor(private readonly sink: AuditSink) {}

  record(event: AuditEvent): void {
    const line = { time: new Date().toISOString(), ...event };
    this.sink.write(`${JSON.stringify(line)}\n`);
  }

  close(): Promise<void> {
    return this.sink.close();
  }
}
