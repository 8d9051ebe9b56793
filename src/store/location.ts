/**
 * Where a store is and how it is configured: the vocabulary `open.ts` parses into and each
 * backend's opener takes. Its own module so a backend can name these types without importing the
 * module that imports every backend.
 */
export type StoreOptionValue = string | number | boolean;
export type StoreOptions = Readonly<Record<string, StoreOptionValue>>;

export type StoreKind = 'local' | 's3' | 'azure' | 'gcs' | 'multi' | 'http';

export interface StoreLocation {
  readonly kind: StoreKind;
  /** local: absolute path; s3/gcs: bucket; azure: container; http: base URL; multi: ''. */
  readonly target: string;
  readonly prefix: string;
}
