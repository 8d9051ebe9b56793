/**
 * Every remote backend's test server, prepared to be reached through a proxy on 127.0.0.1
 * (test/support/fault-proxy.ts): radosgw (S3), Azurite (Azure Blob), the GCS test server and an
 * in-process `mediagit server`. Each entry creates its own bucket or server, and gives the
 * proxy's target and the remote URL + options that send a store's requests through the proxy.
 */
import { randomBytes } from 'node:crypto';
import type { StoreOptions, TokenProvider } from '../../src/store/index.js';
import {
  describeRepository,
  startTestServer,
  storedObject,
  uploadCommit,
  type TestServer,
} from './server-harness.js';
import { oidFor, patternBytes } from './store-contract.js';
import { createS3TestBucket } from './s3-bucket.js';
import { skipUnlessServer } from './test-servers.js';

const env = process.env;

export interface PreparedBackend {
  /** The server's own origin: the proxy's target. */
  readonly target: string;
  /** The remote URL and options of a store under `prefix`, sent to `proxyUrl` instead of the server. */
  remote(proxyUrl: string, prefix: string): { url: string; options: StoreOptions };
  readonly tokens?: TokenProvider;
  /**
   * What the backend accepts under `prefix`, for backends that check what they store (a mediagit
   * server takes only well-formed objects, after the descriptor, and refs to commits it holds).
   * Without it, any bytes and any OID do.
   */
  fixtures?(prefix: string): Promise<BackendFixtures>;
  close?(): Promise<void>;
}

export interface BackendFixtures {
  /** A key and bytes (of about `size`) the backend stores as an object. */
  object(label: string, size: number): Promise<{ key: string; data: Buffer }>;
  /** An OID a ref may point at. */
  refTarget(label: string): Promise<string>;
}

/** Fixtures for a backend that stores any bytes and any ref value. */
export const PLAIN_FIXTURES: BackendFixtures = {
  object: (label, size) =>
    Promise.resolve({ key: `chunks/${oidFor(label)}`, data: patternBytes(label, size) }),
  refTarget: (label) => Promise.resolve(oidFor(label)),
};

export interface ProxiedBackend {
  readonly name: string;
  /** False, or why the suite skips (the server is not running). */
  readonly skip: string | false;
  prepare(label: string): Promise<PreparedBackend>;
}

const run = (): string => `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;

export const PROXIED_BACKENDS: readonly ProxiedBackend[] = [
  {
    name: 'S3 (radosgw)',
    skip: skipUnlessServer('s3'),
    async prepare(label) {
      const bucket = `mg-${label}-${run()}`.toLowerCase();
      const s3 = await createS3TestBucket(bucket);
      return {
        target: s3.endpoint,
        remote: (proxyUrl, prefix) => ({
          url: `s3://${bucket}/${prefix}`,
          options: { ...s3, endpoint: proxyUrl },
        }),
      };
    },
  },
  {
    name: 'Azure Blob (Azurite)',
    skip: skipUnlessServer('azure'),
    async prepare(label) {
      const container = `mg-${label}-${run()}`.toLowerCase();
      const { BlobServiceClient, StorageSharedKeyCredential } = await import('@azure/storage-blob');
      const endpoint = env['MEDIAGIT_TEST_AZURE_ENDPOINT']!;
      const account = env['MEDIAGIT_TEST_AZURE_ACCOUNT'] ?? 'devstoreaccount1';
      const key = env['MEDIAGIT_TEST_AZURE_KEY'] ?? '';
      await new BlobServiceClient(
        endpoint,
        new StorageSharedKeyCredential(account, key),
      ).createContainer(container);
      const origin = new URL(endpoint);
      return {
        target: origin.origin,
        // Azurite's endpoint carries the account as its path: keep it behind the proxy.
        remote: (proxyUrl, prefix) => ({
          url: `azure://${container}/${prefix}`,
          options: {
            endpoint: `${proxyUrl}${origin.pathname.replace(/\/$/, '')}`,
            account_name: account,
            account_key: key,
          },
        }),
      };
    },
  },
  {
    name: 'GCS (test server)',
    skip: skipUnlessServer('gcs'),
    async prepare(label) {
      const bucket = `mg-${label}-${run()}`.toLowerCase();
      const { Storage } = await import('@google-cloud/storage');
      const endpoint = env['MEDIAGIT_TEST_GCS_ENDPOINT']!;
      await new Storage({ apiEndpoint: endpoint, projectId: 'test' }).createBucket(bucket);
      return {
        target: new URL(endpoint).origin,
        remote: (proxyUrl, prefix) => ({
          url: `gs://${bucket}/${prefix}`,
          options: { endpoint: proxyUrl, project: 'test' },
        }),
      };
    },
  },
  {
    name: 'mediagit server',
    skip: false,
    async prepare() {
      const server: TestServer = await startTestServer();
      const token = await server.token('*', 'admin');
      return {
        target: server.url,
        remote: (proxyUrl, prefix) => ({ url: `${proxyUrl}/${prefix}`, options: {} }),
        tokens: () => Promise.resolve(token),
        async fixtures(prefix) {
          const base = `${server.url}/${prefix}`;
          await describeRepository(base, token);
          return {
            async object(label, size) {
              const { oid, stored } = await storedObject('chunk', patternBytes(label, size));
              return { key: `chunks/${oid}`, data: stored };
            },
            refTarget: (label) => uploadCommit(base, token, [], label),
          };
        },
        close: () => server.close(),
      };
    },
  },
];
