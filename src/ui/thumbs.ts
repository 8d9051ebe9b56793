/**
 * Thumbnails of images (PNG, JPEG, WebP, GIF, TIFF), made on the server with sharp and cached in
 * the server's own storage area by the file's content ID and the width, so each is made once for
 * every replica: `_system/meta/thumb-<manifest oid>-<width>.webp`. The `_system` area is one no
 * client can write, so nobody can plant a thumbnail; a thumbnail depends only on the content, so
 * one cached entry serves every repository holding the same file.
 *
 * sharp is loaded on the first thumbnail, never at start-up, and decodes with at most
 * THUMBNAIL_JOBS images at once.
 */
import { NotFoundError } from '../errors/index.js';
import type { Manifest, ObjectDatabase, Oid } from '../objects/index.js';
import type { Store } from '../store/index.js';
import { Semaphore } from '../util/limit.js';
import { contentStream } from './content.js';

export const THUMBNAIL_WIDTHS = [160, 480] as const;
export type ThumbnailWidth = (typeof THUMBNAIL_WIDTHS)[number];
/** Files larger than this are not decoded for a thumbnail (a TIFF is decoded whole in memory). */
export const THUMBNAIL_MAX_INPUT = 512 * 1024 * 1024;
const THUMBNAIL_JOBS = 2;

export type ThumbnailSource = 'cache' | 'made';

export interface ThumbnailCounter {
  inc(labels: { result: ThumbnailSource | 'failed' }): void;
}

type SharpModule = typeof import('sharp').default;

export class Thumbnailer {
  private sharp: Promise<SharpModule> | null = null;
  private readonly jobs = new Semaphore(THUMBNAIL_JOBS);
  /** Thumbnails being made, so two requests for one image make it once. */
  private readonly making = new Map<string, Promise<Buffer>>();

  constructor(
    private readonly cache: () => Promise<Store>,
    private readonly counter: ThumbnailCounter,
  ) {}

  private loadSharp(): Promise<SharpModule> {
    this.sharp ??= import('sharp').then((m) => {
      const sharp = m.default;
      // One libvips thread per image: two cores serve many clients better than one fast decode.
      sharp.concurrency(1);
      sharp.cache(false);
      return sharp;
    });
    return this.sharp;
  }

  async thumbnail(
    odb: ObjectDatabase,
    oid: Oid,
    manifest: Manifest,
    width: ThumbnailWidth,
    signal: AbortSignal,
  ): Promise<{ image: Buffer; source: ThumbnailSource }> {
    const key = `meta/thumb-${oid}-${width}.webp`;
    const cache = await this.cache();
    try {
      const image = await cache.get(key, { signal });
      this.counter.inc({ result: 'cache' });
      return { image, source: 'cache' };
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
    let pending = this.making.get(key);
    if (pending !== undefined) return { image: await pending, source: 'made' };
    // Tied to the request that started it: a client that leaves takes the work with it, and
    // nothing half-made is ever cached.
    pending = this.make(odb, manifest, width, signal).then(async (image) => {
      await cache.put(key, image, { signal });
      return image;
    });
    this.making.set(key, pending);
    const settle = (): void => void this.making.delete(key);
    pending.then(settle, settle);
    try {
      const image = await pending;
      this.counter.inc({ result: 'made' });
      return { image, source: 'made' };
    } catch (err) {
      if (!signal.aborted) this.counter.inc({ result: 'failed' });
      throw err;
    }
  }

  /** Resolves once no thumbnail is being made (the server waits for this before closing storage). */
  async drain(): Promise<void> {
    while (this.making.size > 0) await Promise.allSettled([...this.making.values()]);
  }

  private async make(
    odb: ObjectDatabase,
    manifest: Manifest,
    width: number,
    signal: AbortSignal,
  ): Promise<Buffer> {
    const sharp = await this.loadSharp();
    return this.jobs.run(async () => {
      signal.throwIfAborted();
      const source = contentStream(odb, manifest, null, { signal });
      const pipeline = sharp({ failOn: 'error', limitInputPixels: 100_000_000 })
        .rotate()
        .resize(width, width, { fit: 'inside', withoutEnlargement: true })
        .webp({ quality: 80 });
      source.on('error', (err) => pipeline.destroy(err));
      source.pipe(pipeline);
      return pipeline.toBuffer();
    });
  }
}
