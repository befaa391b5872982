import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { machineMs } from './clock.ts';

/** An STS that answers AssumeRole at once, from {@link startStubSts}. */
export interface StubSts {
  /** `http://127.0.0.1:PORT`, for AWS_ENDPOINT_URL_STS. */
  url: string;
  /** When each AssumeRole arrived ({@link machineMs}), in order: the mints. */
  mints(): number[];
  /** Closes the server and its connections. Idempotent. */
  stop(): Promise<void>;
}

/** About the size of a real STS session token once base64-encoded, as the single-coordinator benchmark's launcher uses. */
const SESSION_TOKEN_BYTES = 600;
/** Lifetime of the credentials handed out: long enough that only the cluster's refresh interval decides when it refreshes. */
const LIFETIME_MS = 3_600_000;

function assumeRoleAnswer(): string {
  const expiration = new Date(Date.now() + LIFETIME_MS).toISOString();
  return `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>ASIA${randomBytes(8).toString('hex').toUpperCase()}</AccessKeyId>
      <SecretAccessKey>${randomBytes(30).toString('base64')}</SecretAccessKey>
      <SessionToken>${randomBytes(SESSION_TOKEN_BYTES).toString('base64')}</SessionToken>
      <Expiration>${expiration}</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <AssumedRoleId>AROABENCHMARK:credfwd</AssumedRoleId>
      <Arn>arn:aws:sts::123456789012:assumed-role/credfwd-bench/credfwd</Arn>
    </AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata>
</AssumeRoleResponse>
`;
}

/**
 * A stand-in for STS that answers every request as AssumeRole with fresh
 * synthetic credentials, at once, and notes when each arrived. Replicas mint
 * role clusters with their own identity through STS, so this is where a
 * refresh's mint can be seen from outside them, and answering at once makes
 * a mint as cheap as the single-coordinator benchmark's passthrough launcher:
 * what is timed is the fan-out, not STS. Signatures are not checked.
 */
export async function startStubSts(): Promise<StubSts> {
  const arrivals: number[] = [];
  const server = createServer((req, res) => {
    arrivals.push(machineMs());
    // The form body (Action, RoleArn…) is not needed: drain it and answer.
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/xml', 'x-amzn-requestid': randomUUID() }).end(assumeRoleAnswer());
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  let stopping: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    mints: () => [...arrivals],
    stop: () => {
      stopping ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // SDK clients keep connections alive; close() alone would wait for them.
        server.closeAllConnections();
      });
      return stopping;
    },
  };
}
