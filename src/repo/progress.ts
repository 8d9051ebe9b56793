/**
 * What long operations report; the CLI decides how (or whether) to draw it. The repository layer
 * never writes to the terminal itself.
 */
export interface ProgressSink {
  start(phase: string, totalFiles: number, totalBytes: number): void;
  /** Bytes processed since the last call (may be called many times per file). */
  bytes(delta: number): void;
  fileDone(): void;
  stop(): void;
}

export const silentProgress: ProgressSink = {
  start() {},
  bytes() {},
  fileDone() {},
  stop() {},
};
