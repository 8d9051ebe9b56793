/**
 * The S3 test server (radosgw, `test/servers/radosgw.sh`) as tests reach it: the store options
 * the CLI and `openStore` take, and a fresh bucket per suite so suites never see each other's keys.
 */
const env = process.env;

/** Options for an `s3://` remote on the test server, in the names the CLI's config uses. */
export type S3TestOptions = {
  endpoint: string;
  region: string;
  access_key: string;
  secret_key: string;
  force_path_style: true;
};

export function s3TestOptions(): S3TestOptions {
  return {
    endpoint: env['MEDIAGIT_TEST_S3_ENDPOINT'] ?? '',
    region: env['MEDIAGIT_TEST_S3_REGION'] ?? 'us-east-1',
    access_key: env['MEDIAGIT_TEST_S3_ACCESS_KEY'] ?? '',
    secret_key: env['MEDIAGIT_TEST_S3_SECRET_KEY'] ?? '',
    force_path_style: true,
  };
}

/** Buckets this process created, removed with their contents when it is about to exit. */
const created = new Set<string>();

/**
 * Creates `bucket` on the test server (the SDK loads only here) and returns the options to reach
 * it. The bucket and everything in it go when the test process is about to exit: the test server
 * keeps objects in a RAM-backed store of a few GiB, and suites that left theirs behind filled it
 * (OSD full) after a few runs of the suite against one server.
 */
export async function createS3TestBucket(bucket: string): Promise<S3TestOptions> {
  const options = s3TestOptions();
  const { client, sdk } = await adminClient(options);
  try {
    await client.send(new sdk.CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
  if (created.size === 0) process.once('beforeExit', () => void removeCreatedBuckets(options));
  created.add(bucket);
  return options;
}

async function adminClient(options: S3TestOptions) {
  const sdk = await import('@aws-sdk/client-s3');
  const client = new sdk.S3Client({
    endpoint: options.endpoint,
    region: options.region,
    forcePathStyle: true,
    credentials: { accessKeyId: options.access_key, secretAccessKey: options.secret_key },
  });
  return { client, sdk };
}

/** Best effort: a bucket that cannot be removed is named on stderr, never fails the suite. */
async function removeCreatedBuckets(options: S3TestOptions): Promise<void> {
  const { client, sdk } = await adminClient(options);
  try {
    for (const bucket of created) {
      try {
        let token: string | undefined;
        do {
          const page = await client.send(
            new sdk.ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }),
          );
          const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
          if (keys.length > 0)
            await client.send(
              new sdk.DeleteObjectsCommand({
                Bucket: bucket,
                Delete: { Objects: keys, Quiet: true },
              }),
            );
          token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
        await client.send(new sdk.DeleteBucketCommand({ Bucket: bucket }));
      } catch (err) {
        process.stderr.write(`test bucket ${bucket} left on the S3 test server: ${String(err)}\n`);
      }
    }
    created.clear();
  } finally {
    client.destroy();
  }
}
