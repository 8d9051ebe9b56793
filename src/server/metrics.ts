/**
 * Prometheus metrics (docs/protocol.md "Metrics"), in a Registry of their own per server so two
 * servers in one process (tests, embedding) never share or clash. Served on a separate listener,
 * `MEDIAGIT_METRICS_PORT`, so the metrics port can stay inside the cluster while the API is public.
 *
 * Counters are per process since it started; Prometheus sums replicas.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class ServerMetrics {
  readonly registry = new Registry();
  readonly bytesUploaded: Counter;
  readonly bytesDownloaded: Counter;
  readonly objectsStored: Counter;
  readonly bytesOffered: Counter;
  readonly bytesStored: Counter;
  readonly requestDuration: Histogram<'route' | 'method' | 'status'>;
  /** Running sums behind the two ratio gauges, computed at scrape time. */
  private readonly totals = { offered: 0, stored: 0, canonical: 0, compressed: 0 };

  /** `processMetrics`: also collect the standard process_* and nodejs_* metrics (only worth it when served). */
  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.bytesUploaded = new Counter({
      name: 'mediagit_bytes_uploaded_total',
      help: 'Bytes of object, pack, key and meta bodies received.',
      registers,
    });
    this.bytesDownloaded = new Counter({
      name: 'mediagit_bytes_downloaded_total',
      help: 'Bytes of object, pack, key and meta bodies sent.',
      registers,
    });
    this.objectsStored = new Counter({
      name: 'mediagit_objects_stored_total',
      help: 'Chunks and objects written to storage (not counting ones already there).',
      registers,
    });
    this.bytesOffered = new Counter({
      name: 'mediagit_bytes_offered_total',
      help: 'Stored-envelope bytes of verified chunk and object uploads, including ones already stored.',
      registers,
    });
    this.bytesStored = new Counter({
      name: 'mediagit_bytes_stored_total',
      help: 'Stored-envelope bytes actually written to storage.',
      registers,
    });
    const totals = this.totals;
    new Gauge({
      name: 'mediagit_dedup_ratio',
      help: 'Bytes offered / bytes actually stored since start (1 until something is stored).',
      registers,
      collect() {
        this.set(totals.stored === 0 ? 1 : totals.offered / totals.stored);
      },
    });
    new Gauge({
      name: 'mediagit_compression_ratio',
      help: 'Canonical bytes / stored bytes of unencrypted objects written since start (1 until one is).',
      registers,
      collect() {
        this.set(totals.compressed === 0 ? 1 : totals.canonical / totals.compressed);
      },
    });
    this.requestDuration = new Histogram({
      name: 'mediagit_request_duration_seconds',
      help: 'Time from request to response, by route template, method and status.',
      labelNames: ['route', 'method', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    // Process metrics (CPU, memory, event loop, GC), minus the three gauges prom-client names
    // `*_total`, which Prometheus reserves for counters (promtool check metrics refuses them).
    if (!options.processMetrics) return;
    collectDefaultMetrics({ register: this.registry });
    for (const name of [
      'nodejs_active_handles_total',
      'nodejs_active_requests_total',
      'nodejs_active_resources_total',
    ])
      this.registry.removeSingleMetric(name);
  }

  /** A verified chunk or object upload: `written` false when storage already had it. */
  objectUpload(storedLength: number, written: boolean, canonicalLength: number | null): void {
    this.totals.offered += storedLength;
    this.bytesOffered.inc(storedLength);
    if (!written) return;
    this.totals.stored += storedLength;
    this.bytesStored.inc(storedLength);
    this.objectsStored.inc();
    if (canonicalLength !== null) {
      this.totals.canonical += canonicalLength;
      this.totals.compressed += storedLength;
    }
  }
}

/** The `/metrics` listener. */
export class MetricsListener {
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(metrics: ServerMetrics, host: string, port: number): Promise<MetricsListener> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '').split('?', 1)[0];
      if ((req.method !== 'GET' && req.method !== 'HEAD') || path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      metrics.registry.metrics().then(
        (text) =>
          res
            .writeHead(200, { 'content-type': metrics.registry.contentType })
            .end(req.method === 'HEAD' ? undefined : text),
        () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address() as AddressInfo;
    return new MetricsListener(server, `http://${hostForUrl(host)}:${address.port}/metrics`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

export function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
