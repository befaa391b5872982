import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';

// What a real job does first: ask AWS who it is, with whatever identity the worker was given.
const client = new STSClient({});
try {
  const identity = await client.send(new GetCallerIdentityCommand({}));
  const credentials = await client.config.credentials();
  process.stdout.write(JSON.stringify({
    arn: identity.Arn,
    accessKeyId: credentials.accessKeyId,
    expiration: process.env.AWS_CREDENTIAL_EXPIRATION ?? null,
    dataset: process.env.DATASET ?? null,
  }));
} catch (err) {
  process.stderr.write(`GetCallerIdentity failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
} finally {
  client.destroy();
}
