import anyTest, { type TestFn } from 'ava';
import { Coordinator } from '@credfwd/coordinator';
import { agentReady, spawnAgent } from './helpers/agents.ts';
import { capturedLogger } from './helpers/captured-logger.ts';

const test = anyTest as TestFn<{ coordinator: Coordinator }>;
const LAUNCHER = async () => ({ accessKeyId: 'ASIAIMDSV1KEY0000001', secretAccessKey: 'imds-v1-secret', sessionToken: 'imds-v1-token', expiration: new Date(Date.now() + 3600_000) });
// An IMDSv1 request: a plain GET, no session token.
const V1_GET = 'curl -s -o /dev/null -w "%{http_code}" "${AWS_EC2_METADATA_SERVICE_ENDPOINT}latest/meta-data/iam/security-credentials/credfwd"';

test.before(async (t) => {
  t.context = { coordinator: await Coordinator.start({ logger: capturedLogger().logger }) };
});

test.after.always(async (t) => {
  await t.context.coordinator?.close();
});

for (const [args, expected] of [[[], '401'], [['--imds-v1'], '200']] as const) {
  test(`credfwd-agent join ${args.join(' ') || '(no flag)'}: an IMDSv1 request is answered ${expected}`, async (t) => {
    const { coordinator } = t.context;
    const cluster = await coordinator.createCluster({ credentials: 'forward', delivery: 'imds', region: 'us-east-1', launcher: LAUNCHER });
    const agentId = `imds-${expected}`;
    const agent = spawnAgent(cluster.joinString, agentId, {}, [...args]);
    await agentReady(coordinator, cluster.id, agentId);
    const [result] = await coordinator.run(cluster.id, ['sh', '-c', V1_GET]);
    t.is(result?.stdout, expected, result?.stderr);
    coordinator.closeCluster(cluster.id);
    t.is((await agent.result).code, 0);
  });
}
