// A long-running AWS SDK for JavaScript v3 job: one STSClient for its whole
// life, calling STS until it has seen WANT different access keys or the
// deadline passes. Prints one JSON line per new key.
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';

const want = Number(process.argv[2]);
const deadline = Date.now() + Number(process.argv[3]) * 1000;
const client = new STSClient({});
const seen: string[] = [];
let calls = 0;
while (Date.now() < deadline && seen.length < want) {
  const { Arn } = await client.send(new GetCallerIdentityCommand({}));
  calls++;
  const { accessKeyId } = await client.config.credentials();
  if (seen.at(-1) !== accessKeyId) {
    seen.push(accessKeyId);
    process.stdout.write(`${JSON.stringify({ key: accessKeyId, arn: Arn, calls })}\n`);
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
}
client.destroy();
process.exitCode = seen.length >= want ? 0 : 1;
