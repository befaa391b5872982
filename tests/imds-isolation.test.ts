import { spawnSync } from 'node:child_process';
import anyTest, { type TestFn } from 'ava';
import type { Cluster, LaunchOptions } from '@credfwd/coordinator';
import { within } from './helpers/deadline.ts';
import type { Moto } from './helpers/moto.ts';
import { launchRoleCluster, startMotoAsLauncher } from './helpers/role-launches.ts';
import { createOtherUser } from './helpers/other-user.ts';

const test = anyTest as TestFn<{ moto: Moto }>;
const WHO = 'echo "endpoint=$AWS_EC2_METADATA_SERVICE_ENDPOINT" && aws sts get-caller-identity --output text --query Arn';

test.before(async (t) => {
  t.context = { moto: await startMotoAsLauncher('isolation-launcher') };
});

test.after.always(async (t) => {
  await t.context.moto?.stop();
});

function launch(t: { context: { moto: Moto }; teardown(fn: () => Promise<void>): void }, options: Partial<LaunchOptions>): Promise<Cluster> {
  return launchRoleCluster(t, t.context.moto, { credentials: { roleArn: 'arn:aws:iam::123456789012:role/a', durationSeconds: 900 }, ...options });
}

test('two clusters on one worker: each workload\'s instance metadata endpoint is its own agent\'s, serving its own cluster\'s role', async (t) => {
  const a = await launch(t, { delivery: 'imds' });
  const b = await launch(t, { delivery: 'imds', credentials: { roleArn: 'arn:aws:iam::123456789012:role/b', durationSeconds: 900 } });
  const [fromA, fromB] = await Promise.all([a.run(['sh', '-c', WHO]), b.run(['sh', '-c', WHO])]).then((all) => all.map(([r]) => r));
  t.is(fromA?.exitCode, 0, fromA?.stderr);
  t.is(fromB?.exitCode, 0, fromB?.stderr);
  const endpointA = /endpoint=(\S+)/.exec(fromA?.stdout ?? '')?.[1];
  const endpointB = /endpoint=(\S+)/.exec(fromB?.stdout ?? '')?.[1];
  t.truthy(endpointA);
  t.not(endpointA, endpointB);
  t.regex(fromA?.stdout ?? '', /assumed-role\/a\/credfwd-c-/);
  t.regex(fromB?.stdout ?? '', /assumed-role\/b\/credfwd-c-/);
});

test('env delivery: another local user cannot read a workload\'s environment, where its credentials are', async (t) => {
  const cluster = await launch(t, { delivery: 'env' });
  let reportPid: (pid: string) => void = () => undefined;
  const pid = new Promise<string>((resolve) => { reportPid = resolve; });
  const running = cluster.run(['sh', '-c', 'echo "pid=$$"; exec sleep 300'], {
    onOutput: (_worker, stream, chunk) => {
      const found = /pid=(\d+)/.exec(chunk.toString());
      if (stream === 'stdout' && found?.[1]) reportPid(found[1]);
    },
  });
  const workload = await within(pid, 20_000, 'the workload printed its pid');
  const other = await createOtherUser(t);
  const read = other.run(['cat', `/proc/${workload}/environ`]);
  t.not(read.status, 0);
  t.false(read.stdout.includes('AWS_SECRET_ACCESS_KEY'));
  t.regex(read.stderr, /Permission denied/);
  // The owner (the control) reads it: the refusal is the other user's, not a gone process.
  // A boolean, not a regex: a failing assertion must not print the environment it matched against.
  t.true(spawnSync('cat', [`/proc/${workload}/environ`], { encoding: 'utf8' }).stdout.includes('AWS_SECRET_ACCESS_KEY='));
  await cluster.close();
  await running;
});
