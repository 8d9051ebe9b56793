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

/** Creates `bucket` on the test server (the SDK loads only here) and returns the options to reach it. */
export async function createS3TestBucket(bucket: string): Promise<S3TestOptions> {
  const options = s3TestOptions();
  const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3');
  const client = new S3Client({
    endpoint: options.endpoint,
    region: options.region,
    forcePathStyle: true,
    credentials: { accessKeyId: options.access_key, secretAccessKey: options.secret_key },
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
  return options;
}
