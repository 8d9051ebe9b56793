import type { ProgressSink } from '../repo/index.js';
import { formatBytes } from '../commands/shared/format.js';

const REDRAW_MS = 100;
const BAR_WIDTH = 24;

interface Spinner {
  text: string;
  start(): Spinner;
  stop(): Spinner;
}

/**
 * A progress bar (files n/m, bytes, throughput, ETA) drawn by ora on stderr. Created only for a
 * terminal; ora is imported lazily so commands that never draw do not pay for loading it.
 */
export class TerminalProgress implements ProgressSink {
  private spinner: Spinner | undefined;
  private phase = '';
  private totalFiles = 0;
  private totalBytes = 0;
  private files = 0;
  private done = 0;
  private startedAt = 0;
  private lastDraw = 0;

  /** Loading starts with the sink, so a short phase still gets its bar before it is over. */
  private readonly ora = import('ora');

  constructor(private readonly stream: NodeJS.WriteStream) {
    this.ora.catch(() => undefined);
  }

  start(phase: string, totalFiles: number, totalBytes: number): void {
    this.phase = phase;
    this.totalFiles = totalFiles;
    this.totalBytes = totalBytes;
    this.files = 0;
    this.done = 0;
    this.startedAt = Date.now();
    void this.ora.then(({ default: ora }) => {
      if (this.startedAt === 0) return;
      this.spinner = ora({ stream: this.stream, text: this.render() }).start() as Spinner;
    });
  }

  bytes(delta: number): void {
    this.done += delta;
    this.redraw();
  }

  fileDone(): void {
    this.files++;
    this.redraw();
  }

  stop(): void {
    this.startedAt = 0;
    this.spinner?.stop();
    this.spinner = undefined;
  }

  private redraw(): void {
    const now = Date.now();
    if (!this.spinner || now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    this.spinner.text = this.render();
  }

  private render(): string {
    // Longer than the terminal is wide, the line wraps and every redraw leaves debris.
    const width = this.stream.columns && this.stream.columns > 20 ? this.stream.columns - 4 : 76;
    return this.line().slice(0, width);
  }

  private line(): string {
    const fraction = this.totalBytes > 0 ? Math.min(1, this.done / this.totalBytes) : 0;
    const filled = Math.round(fraction * BAR_WIDTH);
    const elapsed = Math.max(0.001, (Date.now() - this.startedAt) / 1000);
    const rate = this.done / elapsed;
    const eta =
      rate > 0 && this.totalBytes > this.done ? Math.ceil((this.totalBytes - this.done) / rate) : 0;
    return (
      `${this.phase} [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ` +
      `files ${this.files}/${this.totalFiles}, ${formatBytes(this.done)}/${formatBytes(this.totalBytes)}, ` +
      `${formatBytes(rate)}/s, ETA ${formatEta(eta)}`
    );
  }
}

function formatEta(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  const m = Math.floor(seconds / 60);
  return m < 60
    ? `${m}m${String(seconds % 60).padStart(2, '0')}s`
    : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
