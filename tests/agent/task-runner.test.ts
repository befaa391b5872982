import test from 'ava';
import { MAX_OUTPUT_CHUNK_BYTES, type Output } from '@credfwd/shared';
import type { TaskSpec } from '../../packages/worker-agent/src/supervised-task.ts';
import { TASK_MARK_VARIABLE } from '../../packages/worker-agent/src/task-processes.ts';
import type { TaskRunner } from '../../packages/worker-agent/src/task-runner.ts';
import { taskEnvironment } from '../../packages/worker-agent/src/task-environment.ts';
import { outputBytes, outputHas, taskHarness, type TaskHarness } from './helpers/task-harness.ts';

const NODE = process.execPath;
const BASE_ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

const runners: TaskRunner[] = [];

// Whatever a failing test left running dies with it.
test.after.always(() => Promise.all(runners.map((runner) => runner.killAll())));

const harness = (killGraceMs?: number): TaskHarness => taskHarness(runners, killGraceMs);

function spec(taskId: string, argv: string[], extra: Partial<TaskSpec> = {}): TaskSpec {
  return { taskId, argv, env: BASE_ENV, ...extra };
}

test('TaskRunner streams 100 KiB of output in chunks of at most 32 KiB, then the exit', async (t) => {
  const { runner, result } = harness();
  runner.run(spec('big', [NODE, '-e', 'process.stdout.write("x".repeat(100 * 1024)); process.stderr.write("done")']));
  const { frames, stdout, stderr, exit } = await result('big');
  t.is(stdout, 'x'.repeat(100 * 1024));
  t.is(stderr, 'done');
  const outputs = frames.filter((f): f is Output => f.type === 'output');
  t.true(outputs.length >= 4);
  for (const f of outputs) t.true(outputBytes(f).length <= MAX_OUTPUT_CHUNK_BYTES);
  t.is(frames.at(-1), exit, 'the exit frame comes after all output');
  t.deepEqual(exit, { type: 'exit', taskId: 'big', code: 0, signal: null });
});

test('TaskRunner carries output byte for byte, bytes that are not UTF-8 included (they became U+FFFD)', async (t) => {
  const { runner, result } = harness();
  // Every byte value, in writes that do not line up with pipe reads or chunk sizes.
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  runner.run(spec('bytes', [NODE, '-e', `const b = Buffer.from("${all.toString('base64')}", "base64"); for (let i = 0; i < 400; i++) process.stdout.write(b.subarray(0, 1 + (i % 256)))`]));
  const { stdoutBytes } = await result('bytes');
  const expected = Buffer.concat(Array.from({ length: 400 }, (_, i) => all.subarray(0, 1 + (i % 256))));
  t.true(stdoutBytes.equals(expected));
});

test('TaskRunner reports the exit code', async (t) => {
  const { runner, result } = harness();
  runner.run(spec('three', ['sh', '-c', 'echo out; echo err >&2; exit 3']));
  const { stdout, stderr, exit } = await result('three');
  t.is(stdout, 'out\n');
  t.is(stderr, 'err\n');
  t.is(exit.code, 3);
  t.is(exit.signal, null);
});

test('TaskRunner reports death by signal', async (t) => {
  const { runner, result } = harness();
  runner.run(spec('sig', ['sh', '-c', 'kill -TERM $$']));
  const { exit } = await result('sig');
  t.is(exit.code, null);
  t.is(exit.signal, 'SIGTERM');
});

test('TaskRunner answers a missing command with 127 and a stderr line naming it', async (t) => {
  const { runner, result } = harness();
  runner.run(spec('missing', ['credfwd-no-such-command', '--secret-looking-arg']));
  const { stderr, exit } = await result('missing');
  t.is(exit.code, 127);
  t.regex(stderr, /cannot start "credfwd-no-such-command": ENOENT/);
  t.false(stderr.includes('--secret-looking-arg'));
});

test('TaskRunner runs in the given cwd with no stdin', async (t) => {
  const { runner, result } = harness();
  runner.run(spec('cwd', ['sh', '-c', 'pwd; cat; echo "stdin closed"'], { cwd: '/tmp' }));
  const { stdout, exit } = await result('cwd');
  t.is(stdout, '/tmp\nstdin closed\n');
  t.is(exit.code, 0);
});

test('TaskRunner terminates a task past its timeoutMs with SIGTERM', async (t) => {
  const { runner, result } = harness();
  runner.run(spec('slow', [NODE, '-e', 'setInterval(() => {}, 1000)'], { timeoutMs: 200 }));
  const { exit } = await result('slow');
  t.is(exit.signal, 'SIGTERM');
});

test('TaskRunner kills a task that ignores SIGTERM with SIGKILL after the grace period', async (t) => {
  const { runner, frame, result } = harness(200);
  runner.run(spec('stubborn', ['sh', '-c', 'trap "" TERM; echo armed; while :; do sleep 1; done']));
  // Only once the task says its trap is set can SIGTERM be known to be ignored.
  await frame((f) => outputHas(f, 'armed'));
  await runner.killAll();
  t.is((await result('stubborn')).exit.signal, 'SIGKILL');
});

test('TaskRunner.killAll kills the whole process group, grandchildren included', async (t) => {
  const { runner, frame, result } = harness();
  // The background sleep holds the output pipe: the task only ends once it is dead too.
  runner.run(spec('group', ['sh', '-c', 'sleep 1000 & echo started; wait']));
  await frame((f) => outputHas(f, 'started'));
  t.true(runner.has('group'));
  await runner.killAll();
  t.false(runner.has('group'));
  t.is((await result('group')).exit.signal, 'SIGTERM');
});

test('TaskRunner.refuse sends one stderr line and exit 125', async (t) => {
  const { runner, result } = harness();
  runner.refuse('nope', 'credfwd-agent: no unexpired credentials on this worker');
  const { stderr, exit } = await result('nope');
  t.is(stderr, 'credfwd-agent: no unexpired credentials on this worker\n');
  t.deepEqual(exit, { type: 'exit', taskId: 'nope', code: 125, signal: null });
});

test('taskEnvironment builds the env a task really sees: no overriding identity, no credfwd variables', async (t) => {
  const expiresAt = new Date(Date.now() + 3600_000);
  const prepared = taskEnvironment({
    baseEnv: { ...BASE_ENV, AWS_PROFILE: 'launcher', AWS_ROLE_ARN: 'arn:aws:iam::1:role/x', CREDFWD_JOIN: 'credfwd://must-not-leak', CREDFWD_AGENT_ID: 'a1', HOME: '/tmp' },
    settings: { delivery: 'env', region: 'eu-west-1', environ: { DATASET: 's3://bucket/x' } },
    credentials: { seq: 1, expiresAt, receivedAt: new Date(), value: { accessKeyId: 'ASIATESTKEY000000001', secretAccessKey: 'task-secret', sessionToken: 'task-token' } },
    taskEnv: { TASK_ONLY: 'yes' },
  });
  if (!('env' in prepared)) return t.fail(prepared.refusal);
  const { runner, result } = harness();
  runner.run(spec('env', [NODE, '-e', 'process.stdout.write(JSON.stringify(process.env))'], { env: prepared.env }));
  const seen = JSON.parse((await result('env')).stdout) as Record<string, string>;
  t.is(seen.AWS_PROFILE, undefined);
  t.is(seen.AWS_ROLE_ARN, undefined);
  // Only the run's mark, by which the agent finds its processes at stop.
  t.deepEqual(Object.keys(seen).filter((name) => name.startsWith('CREDFWD_')), [TASK_MARK_VARIABLE]);
  t.is(seen.AWS_ACCESS_KEY_ID, 'ASIATESTKEY000000001');
  t.is(seen.AWS_SECRET_ACCESS_KEY, 'task-secret');
  t.is(seen.AWS_SESSION_TOKEN, 'task-token');
  t.is(seen.AWS_CREDENTIAL_EXPIRATION, expiresAt.toISOString());
  t.is(seen.AWS_REGION, 'eu-west-1');
  t.is(seen.AWS_DEFAULT_REGION, 'eu-west-1');
  t.is(seen.DATASET, 's3://bucket/x');
  t.is(seen.TASK_ONLY, 'yes');
  t.is(seen.HOME, '/tmp');
});

test('taskEnvironment refuses env and endpoint mode without unexpired credentials, and endpoint mode without an endpoint', (t) => {
  const settings = { region: null, environ: {} };
  const refusal = { refusal: 'credfwd-agent: no unexpired credentials on this worker\n' };
  const endpoint = { url: 'http://127.0.0.1:1/credfwd/v1/credentials', tokenFile: '/nonexistent/token' };
  t.deepEqual(taskEnvironment({ baseEnv: BASE_ENV, settings: { ...settings, delivery: 'env' }, credentials: undefined }), refusal);
  t.deepEqual(taskEnvironment({ baseEnv: BASE_ENV, settings: { ...settings, delivery: 'endpoint' }, credentials: undefined, endpoint }), refusal);
  const credentials = { seq: 1, expiresAt: new Date(Date.now() + 3600_000), receivedAt: new Date(), value: { accessKeyId: 'ASIATESTKEY000000001', secretAccessKey: 's' } };
  t.deepEqual(taskEnvironment({ baseEnv: BASE_ENV, settings: { ...settings, delivery: 'endpoint' }, credentials }), {
    refusal: 'credfwd-agent: the credentials endpoint is not running\n',
  });
});

test('taskEnvironment in endpoint mode points at the endpoint and carries no static credentials', (t) => {
  const endpoint = { url: 'http://127.0.0.1:1/credfwd/v1/credentials', tokenFile: '/nonexistent/token' };
  const credentials = { seq: 1, expiresAt: new Date(Date.now() + 3600_000), receivedAt: new Date(), value: { accessKeyId: 'ASIATESTKEY000000001', secretAccessKey: 's' } };
  const prepared = taskEnvironment({
    baseEnv: { ...BASE_ENV, AWS_ACCESS_KEY_ID: 'AKIASTALE', AWS_PROFILE: 'launcher' },
    settings: { delivery: 'endpoint', region: 'eu-west-1', environ: {} },
    credentials,
    endpoint,
  });
  t.deepEqual(prepared, {
    env: {
      ...BASE_ENV,
      AWS_REGION: 'eu-west-1',
      AWS_DEFAULT_REGION: 'eu-west-1',
      AWS_CONTAINER_CREDENTIALS_FULL_URI: endpoint.url,
      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: endpoint.tokenFile,
      AWS_EC2_METADATA_DISABLED: 'true',
    },
  });
});

test('taskEnvironment keeps the worker\'s own identity in none mode', (t) => {
  const prepared = taskEnvironment({
    baseEnv: { ...BASE_ENV, AWS_ROLE_ARN: 'arn:aws:iam::1:role/irsa', AWS_ACCESS_KEY_ID: 'AKIASTALE', CREDFWD_JOIN: 'x' },
    settings: { delivery: 'none', region: null, environ: {} },
    credentials: undefined,
  });
  t.deepEqual(prepared, { env: { ...BASE_ENV, AWS_ROLE_ARN: 'arn:aws:iam::1:role/irsa' } });
});

test('taskEnvironment refuses a task env that would override the forwarded credentials', (t) => {
  const prepared = taskEnvironment({
    baseEnv: BASE_ENV,
    settings: { delivery: 'env', region: null, environ: {} },
    credentials: { seq: 1, expiresAt: new Date(Date.now() + 60_000), receivedAt: new Date(), value: { accessKeyId: 'ASIATESTKEY000000001', secretAccessKey: 's' } },
    taskEnv: { AWS_PROFILE: 'other' },
  });
  t.regex('refusal' in prepared ? prepared.refusal : '', /task env refused: .*AWS_PROFILE/);
});

/** A command that prints the generation it was started with, then waits to be stopped. */
const PRINT_GENERATION = ['sh', '-c', 'echo "gen=$GENERATION"; exec sleep 300'];

test('TaskRunner.refresh restarts a restart-supervised task with the fresh environment, under the same task id', async (t) => {
  const h = harness(1_000);
  let generation = 1;
  const freshEnv = (): Record<string, string> => ({ ...BASE_ENV, GENERATION: String(generation) });
  h.runner.run(spec('restart', PRINT_GENERATION, { env: freshEnv(), onRefresh: { kind: 'restart', freshEnv } }));
  await h.frame((f) => outputHas(f, 'gen=1'));
  generation = 2;
  h.runner.refresh();
  await h.frame((f) => outputHas(f, 'gen=2'));
  t.true(h.runner.has('restart'), 'a restart is not an exit');
  t.false(h.frames.some((f) => f.type === 'exit'));
  await h.runner.killAll();
  const { exit } = await h.result('restart');
  t.is(exit.signal, 'SIGTERM');
});

test('TaskRunner never restarts a task into expired credentials: it waits stopped until fresh ones arrive', async (t) => {
  const h = harness(1_000);
  let usable: Record<string, string> | undefined = { ...BASE_ENV, GENERATION: '1' };
  h.runner.run(spec('waits', PRINT_GENERATION, { env: usable, onRefresh: { kind: 'restart', freshEnv: () => usable } }));
  await h.frame((f) => outputHas(f, 'gen=1'));
  usable = undefined;
  h.runner.refresh();
  // Logged once the old run is gone and no usable credentials were found for the next.
  await new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      if (h.logs().includes('task stays stopped until fresh credentials arrive')) {
        clearInterval(poll);
        resolve();
      }
    }, 10);
  });
  t.true(h.runner.has('waits'));
  t.false(h.frames.some((f) => outputHas(f, 'gen=undefined')));
  usable = { ...BASE_ENV, GENERATION: '2' };
  h.runner.refresh();
  await h.frame((f) => outputHas(f, 'gen=2'));
  const outputs = Buffer.concat(h.frames.filter((f): f is Output => f.type === 'output').map(outputBytes)).toString();
  t.is(outputs, 'gen=1\ngen=2\n', 'exactly two runs: none in between without credentials');
  await h.runner.killAll();
});

test('TaskRunner.refresh sends a signal-supervised task its signal and keeps it running', async (t) => {
  const h = harness();
  h.runner.run(spec('hup', ['sh', '-c', 'trap "echo got-hup" HUP; echo ready; while :; do sleep 0.05; done'], { onRefresh: { kind: 'signal', signal: 'SIGHUP' } }));
  await h.frame((f) => outputHas(f, 'ready'));
  h.runner.refresh();
  await h.frame((f) => outputHas(f, 'got-hup'));
  t.true(h.runner.has('hup'));
  await h.runner.killAll();
});

test('TaskRunner stops reading a task\'s output while the sink has a backlog, then carries all of it (it was buffered without bound)', async (t) => {
  let release!: () => void;
  const drained = new Promise<void>((resolve) => {
    release = resolve;
  });
  let held = true;
  const { runner, frames, frame, result } = taskHarness(runners, undefined, () => (held ? drained : undefined));
  const size = 4 * 1024 * 1024;
  runner.run(spec('slowed', [NODE, '-e', `process.stdout.write(Buffer.alloc(${size}, 0x61))`]));
  await frame((f) => f.type === 'output');
  // The writer blocks on its full pipe: within this window nothing more may be read, and it cannot finish.
  const deadline = Date.now() + 300;
  while (Date.now() < deadline) {
    const read = frames.filter((f): f is Output => f.type === 'output').reduce((sum, f) => sum + outputBytes(f).length, 0);
    t.true(read <= 128 * 1024, `${read} bytes read while the sink had a backlog`);
    t.false(frames.some((f) => f.type === 'exit'));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  held = false;
  release();
  const { stdoutBytes, exit } = await result('slowed');
  t.is(exit.code, 0);
  t.true(stdoutBytes.equals(Buffer.alloc(size, 0x61)));
});
