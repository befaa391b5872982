import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { Coordinator, isCredfwdError, launchCluster, type CredfwdError, type ErrorCode, type RefreshError } from '@credfwd/coordinator';
import { capturedLogger } from './helpers/captured-logger.ts';
import { isolatedEnv, runCredfwd } from './helpers/credfwd-cli.ts';
import { createIamUser, startMoto, type IamUser, type Moto } from './helpers/moto.ts';
import { startStsCounter, type StsCounter, type StsFault } from './helpers/sts-counter.ts';
import { STS_FAULTS } from './helpers/sts-faults.ts';

const test = anyTest as TestFn<{ moto: Moto; counter: StsCounter; launcher: IamUser }>;
type Context = ExecutionContext<{ moto: Moto; counter: StsCounter; launcher: IamUser }>;

/** Every test assumes a role of its own, so the faults it injects reach only its own requests. */
function roleFor(name: string): string {
  return `arn:aws:iam::123456789012:role/${name}`;
}

function forRole(roleArn: string): (params: URLSearchParams) => boolean {
  return (params) => params.get('RoleArn') === roleArn;
}

function once<T extends unknown[]>(subscribe: (listener: (...args: T) => void) => void, accept: (...args: T) => boolean): Promise<T> {
  return new Promise((resolve) => subscribe((...args) => { if (accept(...args)) resolve(args); }));
}

test.before(async (t) => {
  const moto = await startMoto();
  const counter = await startStsCounter(moto.url);
  const launcher = await createIamUser(moto, 'faulty-launcher');
  process.env.AWS_ACCESS_KEY_ID = launcher.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = launcher.secretAccessKey;
  process.env.AWS_ENDPOINT_URL_STS = counter.url;
  t.context = { moto, counter, launcher };
});

test.after.always(async (t) => {
  await t.context.counter?.stop();
  await t.context.moto?.stop();
});

async function startCoordinator(t: Context): Promise<Coordinator> {
  const coordinator = await Coordinator.start({ logger: capturedLogger().logger });
  t.teardown(() => coordinator.close());
  return coordinator;
}

const refusedAtLaunch = test.macro({
  async exec(t, fault: StsFault, code: ErrorCode, retryable: boolean) {
    const roleArn = roleFor(`refused-${fault.code}`);
    t.context.counter.inject({ fault, when: forRole(roleArn) });
    const coordinator = await startCoordinator(t);
    const error = await t.throwsAsync(coordinator.createCluster({ credentials: { roleArn }, region: 'us-east-1' }));
    t.true(isCredfwdError(error));
    const refusal = error as CredfwdError;
    t.is(refusal.code, code);
    t.is(refusal.retryable, retryable);
    t.true(refusal.hint.length > 10, 'a hint says what to do');
    t.true(refusal.message.includes(fault.code), 'the STS error code is named');
    t.false(`${refusal.message} ${refusal.hint}`.includes(t.context.launcher.secretAccessKey));
    t.is(coordinator.hub.readyAgents('any').length, 0);
  },
  title: (_provided, fault: StsFault, code: ErrorCode) => `STS ${fault.code} (${fault.status}) at launch is ${code} with a hint`,
});

test(refusedAtLaunch, STS_FAULTS.accessDenied, 'STS_ACCESS_DENIED', false);
test(refusedAtLaunch, STS_FAULTS.expiredToken, 'STS_EXPIRED_TOKEN', false);
test(refusedAtLaunch, STS_FAULTS.invalidClientTokenId, 'STS_INVALID_TOKEN', false);
test(refusedAtLaunch, STS_FAULTS.regionDisabled, 'STS_REGION_DISABLED', false);
test(refusedAtLaunch, STS_FAULTS.throttling, 'STS_THROTTLED', true);
test(refusedAtLaunch, STS_FAULTS.serviceUnavailable, 'STS_FAILED', true);

test('GetSessionToken refused for a deactivated key is STS_INVALID_TOKEN in forward mode', async (t) => {
  const coordinator = await startCoordinator(t);
  // No other test of this file forwards, so this rule meets only this test's call.
  const remove = t.context.counter.inject({ fault: STS_FAULTS.invalidClientTokenId, when: (params) => params.get('Action') === 'GetSessionToken' });
  t.teardown(remove);
  await t.throwsAsync(coordinator.createCluster({ credentials: 'forward', region: 'us-east-1' }), { code: 'STS_INVALID_TOKEN' });
});

test('credfwd launch shows an STS refusal as error[CODE] and a hint, exit 1, no stack trace', async (t) => {
  const roleArn = roleFor('cli-denied');
  t.context.counter.inject({ fault: STS_FAULTS.accessDenied, when: forRole(roleArn) });
  const { launcher, counter } = t.context;
  const result = await runCredfwd(['launch', '--workers', '2', '--credentials', `role:${roleArn}`, '--region', 'us-east-1', '--', 'true'], isolatedEnv({
    AWS_ACCESS_KEY_ID: launcher.accessKeyId,
    AWS_SECRET_ACCESS_KEY: launcher.secretAccessKey,
    AWS_ENDPOINT_URL_STS: counter.url,
  }));
  t.is(result.code, 1);
  t.regex(result.stderr, /^error\[STS_ACCESS_DENIED\]: STS AssumeRole failed: AccessDenied: /m);
  t.regex(result.stderr, /^hint: .*trust policy/m);
  t.notRegex(result.stderr, /^\s+at /m);
  t.false(result.stderr.includes(launcher.secretAccessKey));
  t.is(result.stdout, '');
});

const retriedOnRefresh = test.macro({
  async exec(t, fault: StsFault, code: ErrorCode) {
    const roleArn = roleFor(`retried-${fault.code}`);
    const cluster = await launchCluster({
      workers: 1, credentials: { roleArn, durationSeconds: 900 }, refreshIntervalSeconds: 1, region: 'us-east-1', logger: capturedLogger().logger,
    });
    t.teardown(() => cluster.close());

    const firstFailure = once<[RefreshError]>((l) => cluster.on('refresh-failed', l), () => true);
    const remove = t.context.counter.inject({ fault, when: forRole(roleArn) });
    t.teardown(remove);
    await firstFailure;
    // From the first failure on, nothing new is minted (one refresh at a time): what is held now must stay.
    const [held] = await cluster.run(['sh', '-c', 'echo "$AWS_ACCESS_KEY_ID"']);
    const firstKey = held?.stdout.trim();
    const firstSeq = cluster.status().agents[0]?.ackedSeq;
    let more = 0;
    await once<[RefreshError]>((l) => cluster.on('refresh-failed', l), () => ++more >= 2);
    const during = cluster.status();
    t.is(during.refresh?.state, 'backing-off');
    t.is(during.refresh?.lastError?.code, code);
    t.true(during.refresh?.lastError?.retryable);
    t.truthy(during.refresh?.nextRefreshAt, 'another attempt is planned');
    t.is(during.agents[0]?.ackedSeq, firstSeq, 'the agent keeps the credentials it holds');
    const [meanwhile] = await cluster.run(['sh', '-c', 'echo "$AWS_ACCESS_KEY_ID"']);
    t.is(meanwhile?.stdout.trim(), firstKey, 'workloads still get the current credentials');

    const recovered = once<[number, Date]>((l) => cluster.on('refreshed', l), () => true);
    remove();
    await recovered;
    t.is(cluster.status().refresh?.state, 'scheduled');
    t.is(cluster.status().refresh?.consecutiveFailures, 0);
  },
  title: (_provided, fault: StsFault) => `STS ${fault.code} (${fault.status}) on refresh is retried with backoff while the current credentials stay in use`,
});

test(retriedOnRefresh, STS_FAULTS.throttling, 'STS_THROTTLED');
test(retriedOnRefresh, STS_FAULTS.serviceUnavailable, 'STS_FAILED');

const stoppedOnRefresh = test.macro({
  async exec(t, fault: StsFault, code: ErrorCode) {
    const { counter } = t.context;
    const coordinator = await startCoordinator(t);
    const stuckRole = roleFor(`stopped-${fault.code}`);
    const stuck = await coordinator.createCluster({ credentials: { roleArn: stuckRole, durationSeconds: 900 }, refreshIntervalSeconds: 1, region: 'us-east-1' });
    const control = await coordinator.createCluster({ credentials: { roleArn: roleFor(`control-${fault.code}`), durationSeconds: 900 }, refreshIntervalSeconds: 1, region: 'us-east-1' });

    const failed = once<[string, RefreshError]>((l) => coordinator.on('refresh-failed', l), (id) => id === stuck.id);
    const remove = counter.inject({ fault, when: forRole(stuckRole) });
    t.teardown(remove);
    const [, error] = await failed;
    t.is(error.code, code);
    t.false(error.retryable);
    const shown = coordinator.status(stuck.id).refresh;
    t.is(shown?.state, 'needs-attention');
    t.is(shown?.nextRefreshAt, undefined, 'no retry is planned');
    t.is(shown?.lastError?.code, code);
    t.true((shown?.lastError?.hint.length ?? 0) > 10);

    // Time passes, measured by the control cluster's own refreshes: the stuck one asks STS no more.
    const callsAfterFailure = counter.count('AssumeRole', forRole(stuckRole));
    let controlRefreshes = 0;
    await once<[string, number, Date]>((l) => coordinator.on('refreshed', l), (id) => id === control.id && ++controlRefreshes >= 3);
    t.is(counter.count('AssumeRole', forRole(stuckRole)), callsAfterFailure, 'not retried in a loop');

    await t.throwsAsync(coordinator.refresh(stuck.id), { code });
    remove();
    await coordinator.refresh(stuck.id);
    t.is(coordinator.status(stuck.id).refresh?.state, 'scheduled');
    t.truthy(coordinator.status(stuck.id).refresh?.nextRefreshAt, 'refreshing resumes on its schedule');
  },
  title: (_provided, fault: StsFault) => `STS ${fault.code} on refresh is not retried in a loop; the cluster shows it until refresh() succeeds`,
});

test(stoppedOnRefresh, STS_FAULTS.accessDenied, 'STS_ACCESS_DENIED');
test(stoppedOnRefresh, STS_FAULTS.expiredToken, 'STS_EXPIRED_TOKEN');
