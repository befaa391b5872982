import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseJoinString } from '@credfwd/shared';
import { CREDFWD_BIN, isolatedEnv } from './helpers/credfwd-cli.ts';
import { createIamUser, startMoto, type IamUser, type Moto } from './helpers/moto.ts';
import { collectOutput, descendantPids } from './helpers/processes.ts';
import { prefixFor, startRedis } from './helpers/redis.ts';
import { newServiceSecrets, startReplica } from './helpers/replicas.ts';

const test = anyTest as TestFn<{ moto: Moto; launcher: IamUser }>;

test.before(async (t) => {
  const moto = await startMoto();
  t.context = { moto, launcher: await createIamUser(moto, 'leak-check') };
});

test.after.always((t) => t.context.moto?.stop());

/**
 * Each worker writes the credentials it was handed (env or endpoint) to a
 * file of its own, never to its output, says `ready`, and finishes once the
 * test creates `release`: the test then knows every minted secret in play.
 */
const CAPTURE = String.raw`
set -e
out=$(mktemp "$SECRETS_DIR/worker.XXXXXX")
capture() {
  if [ -n "$AWS_CONTAINER_CREDENTIALS_FULL_URI" ]; then
    cat "$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE" >> "$out"; echo >> "$out"
    python3 -c 'import json, os, urllib.request as u
r = u.Request(os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"], headers={"Authorization": open(os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]).read()})
d = json.load(u.urlopen(r))
print(d["SecretAccessKey"]); print(d.get("Token", ""))' >> "$out"
  else
    printf '%s\n%s\n' "$AWS_SECRET_ACCESS_KEY" "$AWS_SESSION_TOKEN" >> "$out"
  fi
  printf '%s\n' "$DB_PASSWORD" >> "$out"
}
capture
echo ready
while [ ! -e "$SECRETS_DIR/release" ]; do sleep 0.05; done
capture
echo done
`;

interface Scenario {
  args: string[];
  /** Distinct secrets the run must have put in play, so the search is known to cover them. */
  minSecrets: number;
  /** Launcher environment beyond the isolated one. */
  env(context: { moto: Moto; launcher: IamUser }): Record<string, string>;
}

/** Every non-empty line the workers captured: secret keys, session tokens, endpoint tokens, environ secrets. */
function capturedSecrets(dir: string): string[] {
  const lines = readdirSync(dir).filter((f) => f.startsWith('worker.')).flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n'));
  return [...new Set(lines.map((l) => l.trim()).filter((l) => l.length >= 8))];
}

function commandLines(pids: number[]): string {
  return pids.map((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      return '';
    }
  }).join('\n');
}

/** Where the launcher's writes of join strings to its agents' stdin are recorded: the only place they appear. */
const JOIN_TAP = fileURLToPath(new URL('./helpers/join-string-tap.mjs', import.meta.url));

/** Environment that makes a launcher record the join strings it hands its local agents in `tapFile`. */
function joinTapEnv(tapFile: string): Record<string, string> {
  return { NODE_OPTIONS: `--import=${JOIN_TAP}`, CREDFWD_TEST_JOIN_TAP: tapFile };
}

/** The join tokens local agents were handed, as the launcher wrote them to their stdin. */
function joinTokens(tapFile: string): string[] {
  let written = '';
  try {
    written = readFileSync(tapFile, 'utf8');
  } catch {
    return [];
  }
  return [...new Set(written.split('\n').filter(Boolean).map((line) => parseJoinString(line).token))];
}

/** Fails the test for every secret found in any of the texts; names where, and only a prefix of the secret. */
function assertNothingLeaked(t: ExecutionContext, secrets: string[], texts: Record<string, string>): void {
  for (const [where, text] of Object.entries(texts)) {
    const leaked = secrets.filter((secret) => text.includes(secret));
    t.deepEqual(leaked.map((s) => `${s.slice(0, 4)}…`), [], `no secret in ${where}`);
  }
}

/** Resolves once `count` workers have captured their credentials; bounded, as a hung launch would never get there. */
async function workersCaptured(dir: string, count: number, deadlineMs = 30_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (readdirSync(dir).filter((f) => f.startsWith('worker.') && readFileSync(join(dir, f), 'utf8').length > 0).length < count) {
    if (Date.now() > deadline) throw new Error(`${count} workers did not capture their credentials within ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function jobEnvFile(dir: string): { envFile: string; dbPassword: string } {
  const dbPassword = `pw-${randomBytes(12).toString('hex')}`;
  const envFile = join(dir, 'job.env');
  writeFileSync(envFile, `DB_PASSWORD=${dbPassword}\nSECRETS_DIR=${dir}\n`, { mode: 0o600 });
  return { envFile, dbPassword };
}

const leaksNothing = test.macro({
  async exec(t, scenario: Scenario) {
    const dir = mkdtempSync(join(tmpdir(), 'credfwd-secrets-'));
    const { envFile, dbPassword } = jobEnvFile(dir);
    const child = spawn(process.execPath, ['--', CREDFWD_BIN, 'launch', '--debug', '--workers', '2', '--env-file', envFile, ...scenario.args, '--', 'sh', '-c', CAPTURE], {
      env: isolatedEnv({ ...scenario.env(t.context), CREDFWD_LOG_LEVEL: 'debug', ...joinTapEnv(join(dir, 'join-tap')) }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const done = collectOutput(child);
    let stdout = '';
    await new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`both workloads were not ready within 30 s; the launcher printed: ${stdout.slice(-2000)}`)), 30_000);
      child.stdout?.on('data', (chunk: Buffer) => {
        stdout += chunk.toString('utf8');
        if (stdout.split('| ready').length - 1 >= 2) {
          clearTimeout(deadline);
          resolve();
        }
      });
      void done.then((result) => {
        clearTimeout(deadline);
        reject(new Error(`the launcher exited ${result.code} before both workloads were ready: ${result.stderr.slice(-2000)}`));
      });
    }).catch(async (err: unknown) => {
      // Release a workload that is waiting, so the launcher ends and its stderr tells why the other never got ready.
      writeFileSync(join(dir, 'release'), '');
      const result = await done;
      throw new Error(`${err instanceof Error ? err.message : String(err)}\nlauncher stderr: ${result.stderr.slice(-3000)}`);
    });
    const running = descendantPids(child.pid ?? 0);
    const argv = commandLines([child.pid ?? 0, ...running]);
    const tokens = joinTokens(join(dir, 'join-tap'));
    writeFileSync(join(dir, 'release'), '');
    const result = await done;
    t.is(result.code, 0, result.stderr.slice(-2000));

    const secrets = [...new Set([t.context.launcher.secretAccessKey, dbPassword, ...tokens, ...capturedSecrets(dir)])];
    t.true(tokens.length >= 1, 'the join token is among the secrets searched for');
    t.true(secrets.length >= scenario.minSecrets, `secrets in play: ${secrets.length}`);
    assertNothingLeaked(t, secrets, { 'launcher output and logs': result.stdout + result.stderr, 'argv and process titles': argv });
    t.true(result.stderr.includes('"level":20') || result.stderr.includes('"level":"debug"'), 'debug logs were on');
  },
  title: (name) => `no secret in any log, output, argv or process title: ${name ?? ''}`,
});

test.serial('forward with an IAM-user launcher, env delivery', leaksNothing, {
  args: ['--credentials', 'forward', '--region', 'us-east-1'],
  // launcher secret, environ secret, join token, minted secret key and session token
  minSecrets: 5,
  env: ({ moto, launcher }) => ({ AWS_ACCESS_KEY_ID: launcher.accessKeyId, AWS_SECRET_ACCESS_KEY: launcher.secretAccessKey, AWS_ENDPOINT_URL_STS: moto.url }),
});

test.serial('role mode, endpoint delivery, refreshing every second', leaksNothing, {
  args: ['--credentials', 'role:arn:aws:iam::123456789012:role/leaky', '--delivery', 'endpoint', '--refresh-interval', '1s', '--region', 'us-east-1'],
  // as forward, plus each worker's endpoint token
  minSecrets: 7,
  env: ({ moto, launcher }) => ({ AWS_ACCESS_KEY_ID: launcher.accessKeyId, AWS_SECRET_ACCESS_KEY: launcher.secretAccessKey, AWS_ENDPOINT_URL_STS: moto.url }),
});

test.serial('null mode with the launcher\'s keys present', leaksNothing, {
  args: ['--credentials', 'none'],
  // launcher secret, environ secret, join token
  minSecrets: 3,
  env: ({ launcher }) => ({ AWS_ACCESS_KEY_ID: launcher.accessKeyId, AWS_SECRET_ACCESS_KEY: launcher.secretAccessKey }),
});

test.serial('no secret in any log, output, argv or process title: a replica on Redis, launch --coordinator, role mode, endpoint delivery', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const secrets = newServiceSecrets();
  const replicaIdentity = { AWS_ACCESS_KEY_ID: 'AKIAREPLICALEAKCHECK', AWS_SECRET_ACCESS_KEY: `replica-${randomBytes(12).toString('hex')}` };
  const replica = await startReplica({
    redisUrl: redis.url,
    prefix: prefixFor(t.title).slice(0, -1),
    secrets,
    env: { ...replicaIdentity, AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_STS: t.context.moto.url, CREDFWD_LOG_LEVEL: 'debug' },
  });
  t.teardown(() => replica.kill());
  const dir = mkdtempSync(join(tmpdir(), 'credfwd-secrets-'));
  const { envFile, dbPassword } = jobEnvFile(dir);
  const launcher = spawn(process.execPath, [
    '--', CREDFWD_BIN, 'launch', '--coordinator', replica.url, '--debug', '--workers', '2', '--env-file', envFile,
    '--credentials', 'role:arn:aws:iam::123456789012:role/leaky-service', '--delivery', 'endpoint', '--refresh-interval', '1s', '--region', 'us-east-1',
    '--', 'sh', '-c', CAPTURE,
  ], {
    env: isolatedEnv({ CREDFWD_ADMIN_TOKEN: secrets.adminToken, CREDFWD_COORDINATOR_PIN: `sha256:${replica.pin}`, CREDFWD_LOG_LEVEL: 'debug', ...joinTapEnv(join(dir, 'join-tap')) }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const done = collectOutput(launcher);
  await workersCaptured(dir, 2);
  const running = descendantPids(launcher.pid ?? 0);
  const argv = commandLines([launcher.pid ?? 0, replica.service.child.pid ?? 0, ...running]);
  const tokens = joinTokens(join(dir, 'join-tap'));
  writeFileSync(join(dir, 'release'), '');
  const result = await done;
  t.is(result.code, 0, result.stderr.slice(-2000));

  const inPlay = [...new Set([secrets.adminToken, secrets.stateKey, replicaIdentity.AWS_SECRET_ACCESS_KEY, dbPassword, ...tokens, ...capturedSecrets(dir)])];
  t.true(tokens.length >= 1, 'the join token is among the secrets searched for');
  // admin token, state key, replica identity, environ secret, join token, minted key and token, two endpoint tokens
  t.true(inPlay.length >= 9, `secrets in play: ${inPlay.length}`);
  assertNothingLeaked(t, inPlay, {
    'launcher output and logs': result.stdout + result.stderr,
    'replica output and logs': replica.service.output(),
    'argv and process titles': argv,
  });
  t.regex(replica.service.output(), /"level":20/, 'the replica logged at debug');
});
