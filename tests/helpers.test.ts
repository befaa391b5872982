import { spawn } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import test from 'ava';
import { ephemeralRange, freePort } from './helpers/free-port.ts';
import { assumeRoleViaCli, createIamUser, startMoto, type AwsKeys, type Moto } from './helpers/moto.ts';
import { collectOutput, descendantPids } from './helpers/processes.ts';
import { prefixFor, startRedis } from './helpers/redis.ts';
import { startService } from './helpers/service.ts';
import { startStsCounter } from './helpers/sts-counter.ts';

const ACCOUNT = '123456789012';

function sts(endpoint: string, credentials: AwsKeys): STSClient {
  return new STSClient({ endpoint, region: 'us-east-1', credentials });
}

async function callerArn(endpoint: string, credentials: AwsKeys): Promise<string | undefined> {
  const client = sts(endpoint, credentials);
  try {
    return (await client.send(new GetCallerIdentityCommand({}))).Arn;
  } finally {
    client.destroy();
  }
}

/** Sends a raw RESP inline command and resolves with the first reply line. */
function redisCommand(url: string, command: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let reply = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (chunk: string) => {
      reply += chunk;
      const end = reply.indexOf('\r\n');
      if (end >= 0) {
        socket.destroy();
        resolve(reply.slice(0, end));
      }
    });
    socket.on('error', reject);
  });
}

/** Resolves with the error code of a refused connection, or 'connected'. */
function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

let moto: Moto;
test.before(async () => {
  moto = await startMoto();
});
test.after.always(async () => {
  await moto?.stop();
});

test('freePort returns a port this process can listen on, outside the range listen(0) and outgoing connections take from', async (t) => {
  const port = await freePort();
  const [low, high] = ephemeralRange();
  t.true(port > 0 && port < 65536);
  t.true(port < low || port > high, `${port} is outside ${low}-${high}`);
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  await new Promise<void>((resolve) => server.close(() => resolve()));
  t.pass();
});

test('startService names a command that is not on PATH', async (t) => {
  await t.throwsAsync(startService({ command: 'credfwd-no-such-command', args: [], ready: /never/ }), {
    message: /^credfwd-no-such-command is not on PATH/,
  });
});

test('startService quotes the last output of a peer that exits before it is ready', async (t) => {
  await t.throwsAsync(startService({ command: 'sh', args: ['-c', 'echo port in use >&2; exit 3'], ready: /never/ }), {
    message: /exited \(code 3, signal null\) before it was ready; its last output:\nport in use/,
  });
});

test('startMoto serves STS until stop, and stop is idempotent', async (t) => {
  const own = await startMoto();
  t.teardown(own.stop);
  t.is(own.url, `http://127.0.0.1:${own.port}`);
  t.is(await callerArn(own.url, { accessKeyId: 'testing', secretAccessKey: 'testing' }), `arn:aws:sts::${ACCOUNT}:user/moto`);
  await own.stop();
  await own.stop();
  t.is(await connectOutcome(own.port), 'ECONNREFUSED');
});

test('createIamUser makes a long-term key that moto knows as that user', async (t) => {
  const user = await createIamUser(moto, 'launcher-alice');
  t.is(user.arn, `arn:aws:iam::${ACCOUNT}:user/launcher-alice`);
  t.regex(user.accessKeyId, /^AKIA[A-Z0-9]{16}$/);
  t.is(await callerArn(moto.url, user), user.arn);
});

test('assumeRoleViaCli returns temporary credentials for the assumed role', async (t) => {
  const user = await createIamUser(moto, 'launcher-bob');
  const before = Date.now();
  const creds = await assumeRoleViaCli(moto, user, `arn:aws:iam::${ACCOUNT}:role/launcher-role`, 'ci-session', 900);
  t.regex(creds.accessKeyId, /^ASIA/);
  t.true(creds.sessionToken.length > 0);
  // Moto stamps expiry from its own reading of the same clock.
  t.true(Math.abs(creds.expiration.getTime() - (before + 900_000)) < 60_000);
  t.is(await callerArn(moto.url, creds), `arn:aws:sts::${ACCOUNT}:assumed-role/launcher-role/ci-session`);
});

test('startStsCounter forwards SDK calls to moto unchanged and counts them by Action', async (t) => {
  const counter = await startStsCounter(moto.url);
  t.teardown(counter.stop);
  const user = await createIamUser(moto, 'launcher-carol');
  const client = sts(counter.url, user);
  t.teardown(() => client.destroy());

  const identity = await client.send(new GetCallerIdentityCommand({}));
  t.is(identity.Arn, user.arn, 'the signed request reached moto intact');
  const assumed = await client.send(new AssumeRoleCommand({
    RoleArn: `arn:aws:iam::${ACCOUNT}:role/worker-role`,
    RoleSessionName: 'counted',
    DurationSeconds: 900,
  }));
  const creds = assumed.Credentials;
  if (!creds?.AccessKeyId || !creds.SecretAccessKey || !creds.SessionToken) return t.fail('AssumeRole through the counter returned no credentials');
  // Straight to moto, as workers do: not counted.
  t.is(
    await callerArn(moto.url, { accessKeyId: creds.AccessKeyId, secretAccessKey: creds.SecretAccessKey, sessionToken: creds.SessionToken }),
    `arn:aws:sts::${ACCOUNT}:assumed-role/worker-role/counted`,
  );

  t.is(counter.count('AssumeRole'), 1);
  t.is(counter.count('GetCallerIdentity'), 1);
  t.is(counter.count('GetSessionToken'), 0);
  t.is(counter.count(), 2);
  t.deepEqual(counter.calls(), ['GetCallerIdentity', 'AssumeRole']);

  counter.reset();
  t.is(counter.count(), 0);
  t.deepEqual(counter.calls(), []);
});

test('startStsCounter counts an Action given in the query string', async (t) => {
  const counter = await startStsCounter(moto.url);
  t.teardown(counter.stop);
  // Moto routes unsigned-looking requests by the credential scope's service name.
  const response = await fetch(`${counter.url}/?Action=GetCallerIdentity&Version=2011-06-15`, {
    headers: { authorization: 'AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00' },
  });
  t.is(response.status, 200);
  t.regex(await response.text(), /<GetCallerIdentityResponse[\s\S]*user\/moto/);
  t.deepEqual(counter.calls(), ['GetCallerIdentity']);
});

test('startStsCounter stop closes the proxy, and is idempotent', async (t) => {
  const counter = await startStsCounter(moto.url);
  const { port } = new URL(counter.url);
  await counter.stop();
  await counter.stop();
  t.is(await connectOutcome(Number(port)), 'ECONNREFUSED');
});

test('collectOutput gathers both streams and the exit code', async (t) => {
  const child = spawn(process.execPath, ['-e', 'process.stdout.write("out"); process.stderr.write("err"); process.exitCode = 3']);
  t.deepEqual(await collectOutput(child), { code: 3, signal: null, stdout: 'out', stderr: 'err' });
});

test('collectOutput reports the signal that ended a process', async (t) => {
  const child = spawn('sleep', ['60']);
  const result = collectOutput(child);
  child.kill('SIGTERM');
  t.like(await result, { code: null, signal: 'SIGTERM' });
});

test('collectOutput rejects when the command cannot be spawned', async (t) => {
  await t.throwsAsync(collectOutput(spawn('credfwd-no-such-command')), { code: 'ENOENT' });
});

test('descendantPids lists children and grandchildren until they exit', async (t) => {
  // sh → sleep, and sh → sh → sleep; each sleep's pid is printed once it runs.
  const child = spawn('sh', ['-c', "sleep 60 & echo $!; sh -c 'sleep 60 & echo $!; wait' & wait"], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    for (const pid of descendantPids(child.pid ?? -1)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
  const result = collectOutput(child);
  const sleeps = await new Promise<number[]>((resolve) => {
    let text = '';
    child.stdout.on('data', (chunk: string) => {
      text += chunk;
      const pids = text.split('\n').filter(Boolean).map(Number);
      if (pids.length === 2) resolve(pids);
    });
  });
  const pid = child.pid ?? -1;
  const descendants = descendantPids(pid);
  t.is(descendants.length, 3, 'two sleeps and the inner shell');
  for (const sleep of sleeps) t.true(descendants.includes(sleep));
  t.true(descendantPids(process.pid).includes(pid));

  for (const sleep of sleeps) process.kill(sleep, 'SIGTERM');
  t.is((await result).code, 0);
  t.deepEqual(descendantPids(pid), []);
  t.false(descendantPids(process.pid).includes(pid));
});

test('startRedis starts a private server that answers PING until stopped', async (t) => {
  const redis = await startRedis({});
  t.teardown(redis.stop);
  t.is(await redisCommand(redis.url, 'PING'), '+PONG');
  await redis.stop();
  await redis.stop();
  t.is(await connectOutcome(Number(new URL(redis.url).port)), 'ECONNREFUSED');
});

test('startRedis uses REDIS_URL as given and never stops that server', async (t) => {
  const owned = await startRedis({});
  t.teardown(owned.stop);
  const shared = await startRedis({ REDIS_URL: owned.url });
  t.is(shared.url, owned.url);
  await shared.stop();
  t.is(await redisCommand(shared.url, 'PING'), '+PONG');
});

test('prefixFor gives each call its own prefix, named after the test', (t) => {
  const a = prefixFor('Registry: keeps agents!');
  const b = prefixFor('Registry: keeps agents!');
  t.not(a, b);
  t.regex(a, /^credfwd-test:registry-keeps-agents:[0-9a-f-]{36}:$/);
  t.regex(prefixFor('x'.repeat(39) + ' y'), /^credfwd-test:x{39}:/, 'long titles are cut without a trailing dash');
});
