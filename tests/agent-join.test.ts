import anyTest, { type TestFn } from 'ava';
import { Coordinator } from '@credfwd/coordinator';
import { capturedLogger } from './helpers/captured-logger.ts';
import { agentReady, spawnAgent } from './helpers/agents.ts';
import { parseEnvOutput } from './helpers/credfwd-cli.ts';

const test = anyTest as TestFn<{ coordinator: Coordinator }>;

/** What a worker on EKS (IRSA, Pod Identity) or ECS has of its own. */
const PLATFORM_IDENTITY = {
  AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/worker-irsa',
  AWS_WEB_IDENTITY_TOKEN_FILE: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token',
  AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://169.254.170.23/v1/credentials',
  AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: '/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token',
  AWS_PROFILE: 'worker-default',
};

test.before(async (t) => {
  t.context = { coordinator: await Coordinator.start({ logger: capturedLogger().logger }) };
});

test.after.always(async (t) => {
  await t.context.coordinator?.close();
});

test('null mode keeps the worker\'s own platform identity variables and drops stray static keys', async (t) => {
  const { coordinator } = t.context;
  const cluster = await coordinator.createCluster({ credentials: null });
  const agent = spawnAgent(cluster.joinString, 'eks-node', { ...PLATFORM_IDENTITY, AWS_ACCESS_KEY_ID: 'AKIASTALESTALESTALE1', AWS_SECRET_ACCESS_KEY: 'stale' });
  await agentReady(coordinator, cluster.id, 'eks-node');
  const [result] = await coordinator.run(cluster.id, ['env']);
  const env = parseEnvOutput(result?.stdout ?? '');
  for (const [name, value] of Object.entries(PLATFORM_IDENTITY)) t.is(env[name], value, name);
  t.is(env.AWS_ACCESS_KEY_ID, undefined);
  t.is(env.AWS_SECRET_ACCESS_KEY, undefined);
  coordinator.closeCluster(cluster.id);
  t.is((await agent.result).code, 0, 'a revoked cluster stops its agents cleanly');
});

test('forward mode on the same worker removes every variable that would override the forwarded credentials', async (t) => {
  const { coordinator } = t.context;
  const expiration = new Date(Date.now() + 3600_000);
  const cluster = await coordinator.createCluster({
    credentials: 'forward',
    region: 'ap-southeast-2',
    launcher: async () => ({ accessKeyId: 'ASIAFORWARDEDKEY0001', secretAccessKey: 'forwarded-secret', sessionToken: 'forwarded-token', expiration }),
  });
  t.is(cluster.minted?.source, 'passthrough');
  const agent = spawnAgent(cluster.joinString, 'eks-node-2', PLATFORM_IDENTITY);
  await agentReady(coordinator, cluster.id, 'eks-node-2');
  const [result] = await coordinator.run(cluster.id, ['env']);
  const env = parseEnvOutput(result?.stdout ?? '');
  for (const name of Object.keys(PLATFORM_IDENTITY)) t.is(env[name], undefined, name);
  t.is(env.AWS_ACCESS_KEY_ID, 'ASIAFORWARDEDKEY0001');
  t.is(env.AWS_SECRET_ACCESS_KEY, 'forwarded-secret');
  t.is(env.AWS_SESSION_TOKEN, 'forwarded-token');
  t.is(env.AWS_REGION, 'ap-southeast-2');
  t.true(Math.abs(Date.parse(env.AWS_CREDENTIAL_EXPIRATION ?? '') - expiration.getTime()) <= 2_000);
  coordinator.closeCluster(cluster.id);
  await agent.result;
});

test('a closed cluster\'s join token is refused afterwards', async (t) => {
  const { coordinator } = t.context;
  const cluster = await coordinator.createCluster({ credentials: null });
  coordinator.closeCluster(cluster.id);
  const result = await spawnAgent(cluster.joinString, 'late').result;
  t.is(result.code, 1);
  t.regex(result.stderr, /error\[AGENT_AUTH_FAILED\]/);
});
