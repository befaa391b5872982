import test from 'ava';
import { launchCluster } from '@credfwd/coordinator';
import { capturedLogger } from './helpers/captured-logger.ts';
import { isolatedEnv, parseEnvOutput, parseJsonLines, runCredfwd } from './helpers/credfwd-cli.ts';

test('launchCluster: every environ variable reaches every workload on every worker', async (t) => {
  const { logger, text } = capturedLogger();
  const environ = { DATASET: 's3://bucket/x', WITH_SPACES: 'a b  c', UNICODE: 'ünïcødé ✓', EMPTY: '', DB_PASSWORD: 'pw-9f8e7d6c5b4a' };
  const cluster = await launchCluster({ workers: 3, credentials: null, environ, logger });
  t.teardown(() => cluster.close());
  const results = await cluster.run(['env']);
  t.is(results.length, 3);
  t.deepEqual(results.map((r) => r.worker).sort(), [...cluster.workers].sort());
  for (const r of results) {
    t.is(r.exitCode, 0);
    const env = parseEnvOutput(r.stdout);
    for (const [name, value] of Object.entries(environ)) t.is(env[name], value, `${name} on ${r.worker}`);
  }
  t.regex(text(), /"DB_PASSWORD":"\[redacted\]"/, 'secret-looking environ names are logged redacted');
  t.false(text().includes(environ.DB_PASSWORD), 'secret-looking environ value logged');
  t.true(text().includes('s3://bucket/x'), 'ordinary environ values may be logged');
});

test('credfwd launch --env and --env-file reach workloads; --env wins over the file', async (t) => {
  const { writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const env = isolatedEnv({ CREDFWD_LOG_LEVEL: 'debug' });
  const file = join(env.HOME ?? '', 'workers.env');
  writeFileSync(file, '# comment\nexport FROM_FILE="hello world"\nSHARED=file\nAPI_TOKEN=tok-1234567890abcdef\n');
  const result = await runCredfwd(
    ['launch', '--workers', '2', '--json', '--credentials', 'none', '--verbose', '--env-file', file, '--env', 'SHARED=flag', '--', 'env'],
    env,
  );
  t.is(result.code, 0, result.stderr);
  const lines = parseJsonLines(result.stdout);
  t.is(lines.length, 2);
  for (const line of lines) {
    const workerEnv = parseEnvOutput(line.stdout);
    t.is(workerEnv.FROM_FILE, 'hello world');
    t.is(workerEnv.SHARED, 'flag');
    t.is(workerEnv.API_TOKEN, 'tok-1234567890abcdef');
  }
  t.false(result.stderr.includes('tok-1234567890abcdef'), 'secret-looking value in logs');
});

test('a bad environ name is ENV_NAME_INVALID (exit 2, hint, no stack)', async (t) => {
  const result = await runCredfwd(['launch', '--credentials', 'none', '--env', '1BAD=x', '--', 'true'], isolatedEnv());
  t.is(result.code, 2);
  t.regex(result.stderr, /^error\[ENV_NAME_INVALID\]: .+\nhint: .+/m);
  t.notRegex(result.stderr, /\n\s+at /);
});

test('launchCluster rejects a bad environ name with ENV_NAME_INVALID before starting anything', async (t) => {
  await t.throwsAsync(launchCluster({ workers: 1, credentials: null, environ: { 'BAD-NAME': 'x' } }), { code: 'ENV_NAME_INVALID' });
});

test('environ overriding forwarded credentials is ENV_CONFLICT in a forwarding mode, allowed in null mode', async (t) => {
  for (const name of ['AWS_SECRET_ACCESS_KEY', 'AWS_PROFILE', 'AWS_CONTAINER_CREDENTIALS_FULL_URI']) {
    const result = await runCredfwd(['launch', '--env', `${name}=x`, '--', 'true'], isolatedEnv());
    t.is(result.code, 2, name);
    t.regex(result.stderr, /^error\[ENV_CONFLICT\]: .+\nhint: .+/m);
    t.false(result.stderr.includes(`${name}=x`));
  }
  await t.throwsAsync(launchCluster({ workers: 1, credentials: 'forward', environ: { AWS_ACCESS_KEY_ID: 'AKIAXXXXXXXXXXXXXXXX' } }), { code: 'ENV_CONFLICT' });
  const result = await runCredfwd(['launch', '--json', '--credentials', 'none', '--env', 'AWS_PROFILE=worker-profile', '--', 'sh', '-c', 'echo $AWS_PROFILE'], isolatedEnv());
  t.is(result.code, 0, result.stderr);
  t.is(parseJsonLines(result.stdout)[0]?.stdout, 'worker-profile\n');
});
