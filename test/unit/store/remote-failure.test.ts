/**
 * The one failure classifier and Retry-After parser the S3, Azure, GCS and mediagit-server
 * backends share: statuses, service codes and network codes → the project's typed errors.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  AuthError,
  ConfigError,
  MediagitError,
  NotFoundError,
  StoreUnavailableError,
  isRetriable,
} from '../../../src/errors/index.js';
import {
  classifyFailure,
  failureError,
  isRetriableClass,
  networkCodeOf,
  parseRetryAfter,
  plainCause,
  scrub,
  type FailureClass,
  type FailureFacts,
} from '../../../src/store/remote-service/failure.js';
import { sanitize } from '../../../src/store/http/errors.js';

describe('classifyFailure', () => {
  const cases: [FailureFacts, FailureClass][] = [
    [{ status: 404 }, 'not-found'],
    [{ status: 400, serviceCode: 'NoSuchKey' }, 'not-found'],
    [{ status: 401 }, 'auth'],
    [{ status: 403, serviceCode: 'AuthorizationFailure' }, 'auth'],
    [{ status: 400, serviceCode: 'ExpiredToken' }, 'auth'],
    [{ serviceCode: 'CredentialsProviderError' }, 'auth'],
    [{ serviceCode: 'CredentialUnavailableError' }, 'auth'],
    [{ credentialFailure: true, serviceCode: 'invalid_grant' }, 'auth'],
    [{ status: 429 }, 'throttled'],
    [{ status: 503, serviceCode: 'SlowDown' }, 'throttled'],
    [{ status: 408 }, 'unavailable'],
    [{ status: 500 }, 'unavailable'],
    [{ status: 503 }, 'unavailable'],
    [{ status: 507 }, 'full'],
    [{ status: 400, serviceCode: 'RequestTimeout' }, 'unavailable'],
    [{ networkCode: 'ECONNREFUSED' }, 'unreachable'],
    [{ networkCode: 'ENOTFOUND' }, 'unreachable'],
    [{ networkCode: 'EAI_AGAIN' }, 'unreachable'],
    [{ networkCode: 'UND_ERR_CONNECT_TIMEOUT' }, 'unreachable'],
    [{ networkCode: 'ECONNRESET' }, 'connection-lost'],
    [{ networkCode: 'ETIMEDOUT' }, 'connection-lost'],
    [{ networkCode: 'EPIPE' }, 'connection-lost'],
    [{ networkCode: 'UND_ERR_SOCKET' }, 'connection-lost'],
    [{ networkCode: 'UND_ERR_HEADERS_TIMEOUT' }, 'connection-lost'],
    [{ networkCode: 'ERR_STREAM_PREMATURE_CLOSE' }, 'connection-lost'],
    [
      { networkCode: 'REQUEST_SEND_ERROR', message: 'connect ECONNREFUSED 127.0.0.1:9' },
      'unreachable',
    ],
    [{ networkCode: 'REQUEST_SEND_ERROR', message: 'socket closed' }, 'connection-lost'],
    [{ serviceCode: 'TimeoutError' }, 'connection-lost'],
    [{ message: 'socket hang up' }, 'connection-lost'],
    [{ networkCode: 'UND_ERR_ABORTED' }, 'unknown'],
    [{ networkCode: 'ERR_INVALID_ARG_TYPE' }, 'unknown'],
    [{ networkCode: 'DEPTH_ZERO_SELF_SIGNED_CERT' }, 'certificate'],
    [{ networkCode: 'ERR_TLS_CERT_ALTNAME_INVALID' }, 'certificate'],
    [{ status: 400 }, 'rejected'],
    [{ status: 409, serviceCode: 'LeaseIdMissing' }, 'rejected'],
    [{}, 'unknown'],
  ];
  for (const [facts, expected] of cases)
    test(`${JSON.stringify(facts)} → ${expected}`, () => {
      assert.equal(classifyFailure(facts), expected);
    });

  test('only throttling, 408/5xx and the network are worth a retry', () => {
    const retriable = cases.filter(([f]) => isRetriableClass(classifyFailure(f)));
    for (const [facts] of retriable) {
      const err = failureError(facts, ctx, new Error('x'));
      assert.ok(isRetriable(err), `${JSON.stringify(facts)} should map to a retriable error`);
    }
    for (const [facts] of cases.filter(([f]) => !isRetriableClass(classifyFailure(f))))
      assert.ok(!isRetriable(failureError(facts, ctx, new Error('x'))), JSON.stringify(facts));
  });
});

const ctx = {
  service: 'S3',
  endpoint: 'http://127.0.0.1:9',
  location: 'bucket "b" at http://127.0.0.1:9',
  action: 'GetObject chunks/x',
  authHint: 'check the keys',
  secrets: ['s3cr3t-value'],
};

describe('failureError', () => {
  test('maps each class to its typed error, naming the endpoint and never a secret', () => {
    assert.ok(
      failureError({ status: 404 }, { ...ctx, key: 'chunks/x' }, new Error('c')) instanceof
        NotFoundError,
    );
    const auth = failureError({ status: 403, serviceCode: 'AccessDenied' }, ctx, new Error('c'));
    assert.ok(auth instanceof AuthError);
    assert.equal((auth as AuthError).hint, 'check the keys');
    assert.match(auth.message, /HTTP 403 AccessDenied/);
    const down = failureError({ networkCode: 'ECONNREFUSED' }, ctx, new Error('c'));
    assert.ok(down instanceof StoreUnavailableError);
    assert.match(down.message, /cannot reach S3 at http:\/\/127\.0\.0\.1:9 \(ECONNREFUSED\)/);
    const cert = failureError({ networkCode: 'CERT_HAS_EXPIRED' }, ctx, new Error('c'));
    assert.ok(cert instanceof ConfigError);
    const rejected = failureError(
      { status: 400, serviceCode: 'InvalidArgument' },
      { ...ctx, detail: 'bad header s3cr3t-value' },
      new Error('c'),
    );
    assert.ok(rejected instanceof MediagitError && !isRetriable(rejected));
    assert.ok(!rejected.message.includes('s3cr3t-value'), rejected.message);
  });

  test('Retry-After travels on throttling and unavailability', () => {
    for (const status of [429, 503]) {
      const err = failureError({ status }, { ...ctx, retryAfterMs: 1500 }, new Error('c'));
      assert.ok(err instanceof StoreUnavailableError);
      assert.equal(err.retryAfterMs, 1500);
    }
  });

  test('redaction never garbles text: short secrets only as whole tokens, tiny ones never, long ones anywhere', () => {
    for (const redact of [scrub, sanitize]) {
      const text = "bucket 'ucke-media' refused account ucke: bucket";
      assert.equal(redact('no such bucket', ['b']), 'no such bucket');
      assert.equal(redact('no such bucket', ['ucke']), 'no such bucket');
      assert.equal(redact(text, ['ucke']), "bucket '***-media' refused account ***: bucket");
      assert.equal(
        redact('Authorization: SharedKey acct:abcdefghijklmnop==', ['abcdefghijklmnop']),
        'Authorization: SharedKey acct:***==',
      );
      assert.equal(redact('token xAbcdefghijklmnopx', ['Abcdefghijklmnop']), 'token x***x');
    }
  });

  test('plainCause keeps the code and first line only, scrubbed', () => {
    const cause = plainCause(
      { status: 403, serviceCode: 'AuthenticationFailed' },
      'Server failed to authenticate s3cr3t-value\nAuthorization: SharedKey acct:abcdef',
      ['s3cr3t-value'],
    );
    assert.equal(cause.message, 'AuthenticationFailed: Server failed to authenticate ***');
  });
});

describe('networkCodeOf', () => {
  test('finds the errno under wrappers, causes and AggregateError members', () => {
    const errno = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    assert.equal(networkCodeOf(errno), 'ECONNREFUSED');
    assert.equal(networkCodeOf(new TypeError('fetch failed', { cause: errno })), 'ECONNREFUSED');
    const undici = Object.assign(new Error('other side closed'), {
      code: 'UND_ERR_SOCKET',
      cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
    });
    assert.equal(networkCodeOf(undici), 'ECONNRESET', 'the errno beats the wrapper code');
    assert.equal(
      networkCodeOf(Object.assign(new Error('x'), { code: 'UND_ERR_SOCKET' })),
      'UND_ERR_SOCKET',
    );
    assert.equal(networkCodeOf(new AggregateError([errno], 'all attempts failed')), 'ECONNREFUSED');
    // Numeric codes (GCS ApiError: code = HTTP status) and service codes are not network codes.
    assert.equal(networkCodeOf(Object.assign(new Error('x'), { code: 404 })), undefined);
    assert.equal(networkCodeOf(Object.assign(new Error('x'), { code: 'BlobNotFound' })), undefined);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  test('delay-seconds, fractional seconds and HTTP dates', () => {
    assert.equal(parseRetryAfter('5', now), 5000);
    assert.equal(parseRetryAfter(' 0.25 ', now), 250);
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:03 GMT', now), 3000);
    assert.equal(parseRetryAfter(['2', '9'], now), 2000);
  });
  test('a past date is 0; absent or garbage is undefined', () => {
    assert.equal(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', now), 0);
    assert.equal(parseRetryAfter(undefined, now), undefined);
    assert.equal(parseRetryAfter('', now), undefined);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter('-5', now), undefined);
  });
});
