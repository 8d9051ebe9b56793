import type {
  BlobServiceClient,
  ContainerClient,
  StoragePipelineOptions,
} from '@azure/storage-blob';
import { ConfigError, MediagitError, StoreUnavailableError } from '../../errors/index.js';
import { mapLimit } from '../../util/limit.js';
import { parseOptions, pickOptions, type OptionValues } from '../options/schema.js';
import { compareAndSwapRef, type ConditionalRefWrites } from '../remote-service/conditional-ref.js';
import {
  classifyFailure,
  failureError,
  networkCodeOf,
  parseRetryAfter,
  plainCause,
  type FailureFacts,
} from '../remote-service/failure.js';
import {
  BASIC_CAPABILITIES,
  assertCreatableKey,
  assertValidKey,
  assertValidRefName,
  isValidKey,
  isValidRefName,
  type ListedKey,
  type OperationOptions,
  type RefValue,
  type Store,
} from '../store.js';
import { AZURE_OPTIONS } from './options.js';

/** The remote's option keys (./options.ts) plus the container and prefix from the URL. */
export type AzureBlobStoreOptions = OptionValues<typeof AZURE_OPTIONS> & {
  container: string;
  /** Folder inside the container, so several repositories can share one container. */
  prefix?: string;
};

/** Metadata key holding a ref's OID, so listRefs gets every value from the listing alone. */
const REF_OID_METADATA = 'oid';

/**
 * Azure Blob Storage backend. Keys map 1:1 to block blobs under `<prefix>`; each ref is a small
 * blob `<prefix>refs/heads/<name>` holding the OID (also copied into blob metadata), and its ETag
 * is the CAS version: If-None-Match: * creates, If-Match: <etag> replaces or deletes.
 *
 * The SDK is imported on first use so commands that never touch the remote start fast, and its
 * retry policy is disabled: retries, throttling and metrics are wrappers around every Store.
 */
export class AzureBlobStore implements Store {
  readonly description: string;
  readonly capabilities = BASIC_CAPABILITIES;
  readonly endpoint: string;
  private readonly containerName: string;
  private readonly prefix: string;
  private readonly singleShot: number;
  private readonly blockSize: number;
  private readonly uploadConcurrency: number;
  private readonly hasConcurrency: number;
  private readonly listPageSize: number;
  private readonly requestTimeoutMs: number;
  private readonly secrets: string[];
  private clientPromise: Promise<ContainerClient> | undefined;

  constructor(private readonly options: AzureBlobStoreOptions) {
    this.containerName = options.container;
    validateContainerName(options.container);
    this.prefix = normalizePrefix(options.prefix);
    this.secrets = [
      options.account_key,
      options.connection_string,
      ...secretsInConnectionString(options.connection_string),
    ].filter((s): s is string => typeof s === 'string' && s.length >= 4);

    const methods = [
      options.connection_string !== undefined,
      options.account_key !== undefined,
      options.use_managed_identity === true,
    ].filter(Boolean).length;
    if (methods === 0) {
      throw new ConfigError('Azure remote has no credentials', {
        hint: 'set account_name and account_key, or connection_string, or use_managed_identity = true',
      });
    }
    if (methods > 1) {
      throw new ConfigError(
        'Azure remote sets more than one of connection_string, account_key and use_managed_identity',
        {
          hint: 'keep exactly one way of authenticating',
        },
      );
    }

    if (options.connection_string !== undefined) {
      if (options.endpoint !== undefined)
        throw new ConfigError('Azure remote sets both connection_string and endpoint', {
          hint: 'put BlobEndpoint=… in the connection string instead',
        });
      this.endpoint = endpointFromConnectionString(options.connection_string);
    } else {
      if (options.endpoint === undefined && !options.account_name) {
        throw new ConfigError('Azure remote needs account_name or endpoint');
      }
      if (options.account_key !== undefined && !options.account_name) {
        throw new ConfigError('Azure remote sets account_key without account_name', {
          hint: 'shared-key signing needs the account name',
        });
      }
      this.endpoint = normalizeEndpoint(
        options.endpoint ?? `https://${options.account_name}.blob.core.windows.net`,
      );
      // The SDK refuses bearer tokens over plain HTTP, but only once a request is under way; say so up front.
      if (options.use_managed_identity && this.endpoint.startsWith('http:')) {
        throw new ConfigError(
          `Azure remote uses managed identity over plain HTTP (${this.endpoint})`,
          { hint: 'tokens are only sent over https; use account_key for Azurite' },
        );
      }
    }

    const parsed = parseOptions(
      AZURE_OPTIONS,
      pickOptions(AZURE_OPTIONS, options),
      'an Azure remote',
    );
    this.singleShot = parsed.max_single_shot_size;
    this.blockSize = parsed.block_size;
    this.uploadConcurrency = parsed.upload_concurrency;
    this.hasConcurrency = parsed.has_concurrency;
    this.listPageSize = parsed.list_page_size;
    this.requestTimeoutMs = parsed.request_timeout_ms;
    this.description = `azure:${this.endpoint}/${this.containerName}${this.prefix ? `/${this.prefix.slice(0, -1)}` : ''}`;
  }

  private container(): Promise<ContainerClient> {
    if (!this.clientPromise) {
      this.clientPromise = this.connect();
      // A failed import or credential setup must not poison every later call.
      this.clientPromise.catch(() => {
        this.clientPromise = undefined;
      });
    }
    return this.clientPromise;
  }

  private async connect(): Promise<ContainerClient> {
    const sdk = await import('@azure/storage-blob');
    const pipeline: StoragePipelineOptions = {
      // The SDK's own per-try timer too, so a stalled request is cut even without the wrapper.
      retryOptions: { maxTries: 1, tryTimeoutInMs: this.requestTimeoutMs },
      userAgentOptions: { userAgentPrefix: 'mediagit' },
    };
    let service: BlobServiceClient;
    const o = this.options;
    if (o.connection_string !== undefined) {
      try {
        service = sdk.BlobServiceClient.fromConnectionString(o.connection_string, pipeline);
      } catch {
        // The SDK's message can quote the connection string, key included.
        throw new ConfigError('Azure connection_string is malformed', {
          hint: 'expected DefaultEndpointsProtocol=…;AccountName=…;AccountKey=…;(BlobEndpoint=…)',
        });
      }
    } else if (o.account_key !== undefined) {
      service = new sdk.BlobServiceClient(
        this.endpoint,
        new sdk.StorageSharedKeyCredential(o.account_name ?? '', o.account_key),
        pipeline,
      );
    } else {
      const { DefaultAzureCredential } = await import('@azure/identity');
      service = new sdk.BlobServiceClient(this.endpoint, new DefaultAzureCredential(), pipeline);
    }
    return service.getContainerClient(this.containerName);
  }

  private blobName(key: string): string {
    assertValidKey(key);
    return this.prefix + key;
  }

  private refBlobName(name: string): string {
    assertValidRefName(name);
    return this.prefix + name;
  }

  async get(key: string, options: OperationOptions = {}): Promise<Buffer> {
    const name = this.blobName(key);
    const container = await this.container();
    try {
      // One ranged-less GET: the bytes come from a single blob version even if it is replaced meanwhile.
      const res = await container
        .getBlobClient(name)
        .download(0, undefined, { abortSignal: options.signal, maxRetryRequests: 0 });
      return await readAll(res.readableStreamBody, res.contentLength);
    } catch (err) {
      throw this.fail(err, `get ${key}`, options, key);
    }
  }

  async put(key: string, data: Uint8Array, options: OperationOptions = {}): Promise<void> {
    await this.upload(key, data, options);
  }

  /** Upload with If-None-Match: * (put already never replaces); false when the blob existed. */
  async create(key: string, data: Uint8Array, options: OperationOptions = {}): Promise<boolean> {
    assertCreatableKey(key);
    return this.upload(key, data, options);
  }

  private async upload(key: string, data: Uint8Array, options: OperationOptions): Promise<boolean> {
    const name = this.blobName(key);
    const container = await this.container();
    const blob = container.getBlockBlobClient(name);
    // Probing first only pays off when it can save a multi-block upload.
    if (data.byteLength > this.singleShot && (await this.exists(name, key, options))) return false;
    try {
      await blob.uploadData(data, {
        blockSize: this.blockSize,
        concurrency: this.uploadConcurrency,
        maxSingleShotSize: this.singleShot,
        // Never replace: content-addressed keys hold the same bytes, and a lost race must not clobber.
        conditions: { ifNoneMatch: '*' },
        blobHTTPHeaders: { blobContentType: 'application/octet-stream' },
        abortSignal: options.signal,
      });
      return true;
    } catch (err) {
      if (alreadyExists(restErrorInfo(err))) return false;
      throw this.fail(err, `put ${key}`, options, key);
    }
  }

  async has(keys: readonly string[], options: OperationOptions = {}): Promise<boolean[]> {
    const names = keys.map((key) => this.blobName(key));
    return mapLimit(names, this.hasConcurrency, (name, i) => this.exists(name, keys[i]!, options));
  }

  private async exists(name: string, key: string, options: OperationOptions): Promise<boolean> {
    const container = await this.container();
    try {
      await container.getBlobClient(name).getProperties({ abortSignal: options.signal });
      return true;
    } catch (err) {
      const info = restErrorInfo(err);
      // BlobClient.exists() would also answer false for a missing container; that must be loud.
      if (info.status === 404 && info.errorCode !== 'ContainerNotFound') return false;
      throw this.fail(err, `has ${key}`, options);
    }
  }

  async *list(prefix: string, options: OperationOptions = {}): AsyncIterable<ListedKey> {
    const container = await this.container();
    const pages = container
      .listBlobsFlat({ prefix: this.prefix + prefix, abortSignal: options.signal })
      .byPage({ maxPageSize: this.listPageSize });
    try {
      for await (const page of pages) {
        for (const item of page.segment.blobItems) {
          const key = item.name.slice(this.prefix.length);
          // Refs and foreign blobs share the namespace; only store keys are listed.
          if (isValidKey(key)) yield { key, size: item.properties.contentLength ?? 0 };
        }
      }
    } catch (err) {
      throw this.fail(err, `list ${prefix}`, options);
    }
  }

  async delete(key: string, options: OperationOptions = {}): Promise<void> {
    const name = this.blobName(key);
    const container = await this.container();
    try {
      await container.getBlobClient(name).delete({ abortSignal: options.signal });
    } catch (err) {
      const info = restErrorInfo(err);
      if (info.status === 404 && info.errorCode !== 'ContainerNotFound') return;
      throw this.fail(err, `delete ${key}`, options);
    }
  }

  async readRef(name: string, options: OperationOptions = {}): Promise<RefValue | null> {
    const blobName = this.refBlobName(name);
    const container = await this.container();
    try {
      // Body and ETag come from the same response, so the version always matches the OID read.
      const res = await container
        .getBlobClient(blobName)
        .download(0, undefined, { abortSignal: options.signal, maxRetryRequests: 0 });
      const body = await readAll(res.readableStreamBody, res.contentLength);
      if (!res.etag)
        throw new StoreUnavailableError(
          `Azure returned no ETag for ref ${name} (${this.description})`,
        );
      return { oid: body.toString('utf8').trim(), version: bareEtag(res.etag) };
    } catch (err) {
      const info = restErrorInfo(err);
      if (info.status === 404 && info.errorCode !== 'ContainerNotFound') return null;
      throw this.fail(err, `read ref ${name}`, options);
    }
  }

  /** Azure's conditional headers, which the service evaluates atomically with the write. */
  private readonly refWrites: ConditionalRefWrites<RefValue> = {
    read: (name, signal) => this.readRef(name, { signal }),
    // An ETag is a precondition as it is; `{ oid, version: oid }` must be read first.
    pin: (expected) =>
      expected === null ? null : expected.version !== expected.oid ? expected : undefined,
    write: async (name, base, next, signal) => {
      const blob = (await this.container()).getBlockBlobClient(this.refBlobName(name));
      const ifMatch = base === null ? undefined : quotedEtag(base.version);
      try {
        if (next === null) {
          await blob.delete({ conditions: { ifMatch }, abortSignal: signal });
          return true;
        }
        const body = Buffer.from(`${next}\n`, 'utf8');
        await blob.upload(body, body.byteLength, {
          conditions: ifMatch === undefined ? { ifNoneMatch: '*' } : { ifMatch },
          metadata: { [REF_OID_METADATA]: next },
          blobHTTPHeaders: {
            blobContentType: 'text/plain; charset=utf-8',
            blobCacheControl: 'no-store',
          },
          abortSignal: signal,
        });
        return true;
      } catch (err) {
        if (this.lostRace(err)) return false;
        throw this.fail(err, `${next === null ? 'delete' : 'update'} ref ${name}`, { signal });
      }
    },
  };

  compareAndSwapRef(
    name: string,
    expected: RefValue | null,
    next: string | null,
    options: OperationOptions = {},
  ): Promise<boolean> {
    return compareAndSwapRef(this.refWrites, name, expected, next, options);
  }

  /** Create found the ref present, the ETag moved on, or the ref was deleted meanwhile. */
  private lostRace(err: unknown): boolean {
    const info = restErrorInfo(err);
    return (
      alreadyExists(info) ||
      (info.status === 412 && (info.errorCode ?? 'ConditionNotMet') === 'ConditionNotMet') ||
      (info.status === 404 && (info.errorCode ?? 'BlobNotFound') === 'BlobNotFound')
    );
  }

  async listRefs(prefix: string, options: OperationOptions = {}): Promise<Map<string, RefValue>> {
    const container = await this.container();
    const refs = new Map<string, RefValue>();
    const missingMetadata: string[] = [];
    const pages = container
      .listBlobsFlat({
        prefix: this.prefix + prefix,
        includeMetadata: true,
        abortSignal: options.signal,
      })
      .byPage({ maxPageSize: this.listPageSize });
    try {
      for await (const page of pages) {
        for (const item of page.segment.blobItems) {
          const name = item.name.slice(this.prefix.length);
          if (!isValidRefName(name) || !name.startsWith(prefix)) continue;
          const oid = item.metadata?.[REF_OID_METADATA];
          const etag = item.properties.etag;
          if (oid && etag) refs.set(name, { oid, version: bareEtag(etag) });
          else missingMetadata.push(name);
        }
      }
    } catch (err) {
      throw this.fail(err, `list refs ${prefix}`, options);
    }
    // Ref blobs written by other tools carry no metadata; their body is still authoritative.
    for (const name of missingMetadata) {
      const value = await this.readRef(name, options);
      if (value) refs.set(name, value);
    }
    return refs;
  }

  async close(): Promise<void> {
    this.clientPromise = undefined;
  }

  /**
   * Turns an SDK failure into the project's error classes (remote-service/failure.ts decides what
   * a failure means; only Azure's own cases are here). See docs/backends/azure.md.
   */
  private fail(err: unknown, what: string, options: OperationOptions, key?: string): Error {
    if (options.signal?.aborted)
      return options.signal.reason instanceof Error ? options.signal.reason : toError(err);
    if (err instanceof MediagitError) return err;
    const info = restErrorInfo(err);
    const sdkName = info.name === 'Error' || info.name === 'RestError' ? undefined : info.name;
    const facts: FailureFacts = {
      status: info.status,
      serviceCode: info.errorCode ?? sdkName,
      networkCode:
        networkCodeOf(err) ??
        (info.isRestError && info.status === undefined ? 'REQUEST_SEND_ERROR' : undefined),
      message: info.message,
    };
    const cause = plainCause(facts, info.message, this.secrets);
    let cls = classifyFailure(facts);
    // With the caller's signal untouched, these come from the SDK's download stream when the
    // connection drops mid-body (it retries nothing with maxRetryRequests: 0): a network failure.
    if (info.name === 'AbortError' || info.message.startsWith('Data corruption failure'))
      cls = 'connection-lost';
    if (info.status === 404 && info.errorCode === 'ContainerNotFound') {
      return new ConfigError(
        `Azure container '${this.containerName}' does not exist at ${this.endpoint}`,
        {
          hint: "create the container (az storage container create) or fix the remote's container setting",
          cause,
        },
      );
    }
    return failureError(
      facts,
      {
        service: 'Azure Blob Storage',
        endpoint: this.endpoint,
        location: this.description,
        action: what,
        key,
        authHint:
          info.status === undefined
            ? 'managed identity needs an identity on the host, or AZURE_* environment variables, or az login'
            : 'check account_name / account_key / connection_string, or the role assignment of the managed identity',
        retryAfterMs: info.retryAfterMs,
        secrets: this.secrets,
      },
      cause,
      cls,
    );
  }
}

interface RestErrorInfo {
  isRestError: boolean;
  name: string;
  message: string;
  status: number | undefined;
  code: string | undefined;
  errorCode: string | undefined;
  retryAfterMs: number | undefined;
}

/** Reads a RestError structurally: the SDK module is loaded lazily, so `instanceof` is not at hand. */
function restErrorInfo(err: unknown): RestErrorInfo {
  const e = isRecord(err) ? err : {};
  const response = isRecord(e.response) ? e.response : undefined;
  const headers = response && isRecord(response.headers) ? response.headers : undefined;
  const header = (name: string): string | undefined => {
    const get = headers?.get;
    if (typeof get !== 'function') return undefined;
    const value: unknown = get.call(headers, name);
    return typeof value === 'string' ? value : undefined;
  };
  const details = isRecord(e.details) ? e.details : undefined;
  const detailCode = typeof details?.errorCode === 'string' ? details.errorCode : undefined;
  return {
    isRestError: typeof e.name === 'string' && e.name === 'RestError',
    name: typeof e.name === 'string' ? e.name : 'Error',
    message: typeof e.message === 'string' ? e.message : String(err),
    status: typeof e.statusCode === 'number' ? e.statusCode : undefined,
    code: typeof e.code === 'string' ? e.code : undefined,
    // HEAD responses have no body, so the service's code survives only in x-ms-error-code.
    errorCode:
      detailCode ??
      header('x-ms-error-code') ??
      (typeof e.code === 'string' && /^[A-Z][A-Za-z]+$/.test(e.code) ? e.code : undefined),
    retryAfterMs: parseRetryAfter(header('retry-after')),
  };
}

/**
 * The answers to If-None-Match: * on an existing blob (Put Blob says 409 BlobAlreadyExists; some
 * front ends answer 412). Other 409s — a lease, a container being deleted — are real failures.
 */
function alreadyExists(info: RestErrorInfo): boolean {
  return (
    (info.status === 409 && info.errorCode === 'BlobAlreadyExists') ||
    (info.status === 412 && (info.errorCode ?? 'ConditionNotMet') === 'ConditionNotMet')
  );
}

/**
 * Response headers quote ETags but List Blobs returns them bare; versions are kept bare so a value
 * from listRefs and one from readRef compare equal, and quoted again for If-Match.
 */
function bareEtag(etag: string): string {
  return etag.replace(/^"(.*)"$/, '$1');
}

function quotedEtag(version: string): string {
  return `"${bareEtag(version)}"`;
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

async function readAll(
  stream: NodeJS.ReadableStream | undefined,
  expectedLength: number | undefined,
): Promise<Buffer> {
  if (!stream) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const chunk of stream)
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  const data = Buffer.concat(chunks);
  if (expectedLength !== undefined && data.byteLength !== expectedLength) {
    throw new StoreUnavailableError(
      `Azure download ended after ${data.byteLength} of ${expectedLength} bytes`,
    );
  }
  return data;
}

function normalizePrefix(prefix: string | undefined): string {
  const trimmed = (prefix ?? '').replace(/^\/+|\/+$/g, '');
  if (trimmed.includes('//') || /(^|\/)\.\.?(\/|$)/.test(trimmed))
    throw new ConfigError(`Azure prefix ${JSON.stringify(prefix)} is not a clean folder path`);
  return trimmed ? `${trimmed}/` : '';
}

function normalizeEndpoint(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new ConfigError(
      `Azure endpoint is not a URL: ${JSON.stringify(endpoint.replace(/\?.*/, '')).slice(0, 200)}`,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new ConfigError(`Azure endpoint must be http(s): ${url.protocol}`);
  if (url.username || url.password || url.search) {
    throw new ConfigError('Azure endpoint must not carry credentials or a query string', {
      hint: 'use account_key, connection_string or use_managed_identity',
    });
  }
  return url.toString().replace(/\/+$/, '');
}

function parseConnectionString(cs: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const part of cs.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  return fields;
}

function secretsInConnectionString(cs: string | undefined): string[] {
  if (cs === undefined) return [];
  const fields = parseConnectionString(cs);
  return [fields.get('accountkey'), fields.get('sharedaccesssignature')].filter(
    (s): s is string => s !== undefined,
  );
}

/** Only for messages and the description; the SDK does the real parsing. */
function endpointFromConnectionString(cs: string): string {
  const fields = parseConnectionString(cs);
  if (fields.get('usedevelopmentstorage')?.toLowerCase() === 'true')
    return 'http://127.0.0.1:10000/devstoreaccount1';
  const explicit = fields.get('blobendpoint');
  if (explicit) return normalizeEndpointLoose(explicit);
  const account = fields.get('accountname');
  if (!account)
    throw new ConfigError('Azure connection_string has neither BlobEndpoint nor AccountName');
  const protocol = fields.get('defaultendpointsprotocol') ?? 'https';
  const suffix = fields.get('endpointsuffix') ?? 'core.windows.net';
  return `${protocol}://${account}.blob.${suffix}`;
}

function normalizeEndpointLoose(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    url.search = '';
    url.username = '';
    url.password = '';
    return url.toString().replace(/\/+$/, '');
  } catch {
    throw new ConfigError('Azure connection_string has a BlobEndpoint that is not a URL');
  }
}

/** Azure's own rules, checked here because the service's 400 InvalidResourceName is far less clear. */
function validateContainerName(name: string): void {
  if (typeof name !== 'string' || !/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/.test(name)) {
    throw new ConfigError(`invalid Azure container name ${JSON.stringify(name)}`, {
      hint: '3-63 characters: lowercase letters, digits and single hyphens, starting and ending with a letter or digit',
    });
  }
}
