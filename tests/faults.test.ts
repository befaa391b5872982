import test from 'ava';
import { spawn } from 'node:child_process';
import { Coordinator, launchCluster } from '@credfwd/coordinator';
import { MIN_REMAINING_SECONDS } from '@credfwd/shared';
import { agentReady, spawnAgent } from './helpers/agents.ts';
import { capturedLogger } from './helpers/captured-logger.ts';
import { CREDFWD_BIN, isolatedEnv } from './helpers/credfwd-cli.ts';
import { PRINT_ENDPOINT, askEndpoint, endpointFromOutput, type EndpointAccess, type EndpointAnswer } from './helpers/endpoint.ts';
import { freePort } from './helpers/free-port.ts';
import { createIamUser, startMoto } from './helpers/moto.ts';
import { collectOutput } from './helpers/processes.ts';
import { startTcpProxy } from './helpers/tcp-proxy.ts';

const ROLE = { roleArn: 'arn:aws:iam::123456789012:role/faulty', durationSeconds: 900 };

/** An endpoint answer is never an expired (or nearly expired) credential. */
function neverStale(answers: EndpointAnswer[], at: number[]): boolean {
  return answers.every((a, i) => a.status !== 200 || (a.expiration?.getTime() ?? 0) >= (at[i] ?? 0) + MIN_REMAINING_SECONDS * 1000 - 1000);
}

function once<T extends unknown[]>(subscribe: (listener: (...args: T) => void) => void, accept: (...args: T) => boolean): Promise<T> {
  return new Promise((resolve) => subscribe((...args) => { if (accept(...args)) resolve(args); }));
}

test.serial('coordinator unreachable: the endpoint keeps serving, and the agent gets fresh credentials when it is back', async (t) => {
  const moto = await startMoto();
  t.teardown(() => moto.stop());
  const launcher = await createIamUser(moto, 'outage');
  process.env.AWS_ACCESS_KEY_ID = launcher.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = launcher.secretAccessKey;
  process.env.AWS_ENDPOINT_URL_STS = moto.url;
  const port = await freePort();
  const link = await startTcpProxy(`127.0.0.1:${port}`);
  t.teardown(() => link.stop());
  const coordinator = await Coordinator.start({ logger: capturedLogger().logger, listen: `127.0.0.1:${port}`, publicAddress: link.address });
  t.teardown(() => coordinator.close());
  const cluster = await coordinator.createCluster({ credentials: ROLE, delivery: 'endpoint', refreshIntervalSeconds: 2, region: 'us-east-1' });
  const agent = spawnAgent(cluster.joinString, 'far-away');
  t.teardown(() => { agent.child.kill('SIGTERM'); });
  await agentReady(coordinator, cluster.id, 'far-away');
  const [printed] = await coordinator.run(cluster.id, ['sh', '-c', PRINT_ENDPOINT]);
  const endpoint = endpointFromOutput(printed?.stdout ?? '');

  await link.cut();
  const [, missedSeq] = await once<[string, number, Date]>((l) => coordinator.on('refreshed', l), (id) => id === cluster.id);
  const during = await askEndpoint(endpoint);
  t.is(during.status, 200, 'credentials still served while the coordinator is unreachable');
  t.true((during.expiration?.getTime() ?? 0) > Date.now());

  await link.restore();
  await once<[string, string, number]>((l) => coordinator.hub.on('agent-ready', l), (id, agentId, seq) => id === cluster.id && agentId === 'far-away' && seq >= missedSeq);
  const after = await askEndpoint(endpoint);
  t.is(after.status, 200);
  t.not(after.accessKeyId, during.accessKeyId, 'the agent holds credentials minted while it was away');
});

test.serial('STS down: refreshes back off, the current credentials stay in use, and refresh recovers when STS is back', async (t) => {
  const first = await startMoto();
  let moto = first;
  t.teardown(() => moto.stop());
  const launcher = await createIamUser(moto, 'sts-outage');
  process.env.AWS_ACCESS_KEY_ID = launcher.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = launcher.secretAccessKey;
  process.env.AWS_ENDPOINT_URL_STS = moto.url;
  const cluster = await launchCluster({
    workers: 1, credentials: ROLE, delivery: 'endpoint', refreshIntervalSeconds: 1, region: 'us-east-1', logger: capturedLogger().logger,
  });
  t.teardown(() => cluster.close());
  const [printed] = await cluster.run(['sh', '-c', PRINT_ENDPOINT]);
  const endpoint = endpointFromOutput(printed?.stdout ?? '');
  const answers: EndpointAnswer[] = [];
  const asked: number[] = [];
  const ask = async (): Promise<EndpointAnswer> => {
    asked.push(Date.now());
    const answer = await askEndpoint(endpoint);
    answers.push(answer);
    return answer;
  };
  const before = await ask();

  const failures: string[] = [];
  const twoFailures = once<[{ code: string }]>((l) => cluster.on('refresh-failed', l), (error) => failures.push(error.code) >= 2);
  await moto.stop();
  await twoFailures;
  t.is(cluster.status().refresh?.consecutiveFailures, 2);
  t.truthy(cluster.status().refresh?.lastError);
  const during = await ask();
  t.is(during.status, 200, 'old credentials still served');
  t.is(during.accessKeyId, (await ask()).accessKeyId, 'and they are the last good ones');

  moto = await startMoto(first.port);
  const [seq] = await once<[number, Date]>((l) => cluster.on('refreshed', l), () => true);
  await once<[string, number]>((l) => cluster.on('agent-ready', l), (_agent, acked) => acked >= seq);
  const after = await ask();
  t.is(after.status, 200);
  t.not(after.accessKeyId, before.accessKeyId);
  t.is(cluster.status().refresh?.lastError, undefined);
  t.true(neverStale(answers, asked), 'no workload was ever handed an expired credential');
});

test('coordinator killed: a joined agent serves its credentials until they near expiry, then answers 503', async (t) => {
  // A joined agent, not a local one: local agents end with their launcher by design (tests/launcher-death.test.ts).
  const expiration = new Date(Date.now() + (MIN_REMAINING_SECONDS + 8) * 1000);
  const launcher = spawn(process.execPath, ['--', CREDFWD_BIN, 'launch', '--workers', '0', '--delivery', 'endpoint'], {
    env: isolatedEnv({
      AWS_ACCESS_KEY_ID: 'ASIASHORTLIVED000001',
      AWS_SECRET_ACCESS_KEY: 'short-lived-secret',
      AWS_SESSION_TOKEN: 'short-lived-token',
      AWS_CREDENTIAL_EXPIRATION: expiration.toISOString(),
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => launcher.kill('SIGKILL'));
  const launcherDone = collectOutput(launcher);
  const joinString = await new Promise<string>((resolve, reject) => {
    let stdout = '';
    launcher.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      const found = /CREDFWD_JOIN='([^']+)'/.exec(stdout)?.[1];
      if (found) resolve(found);
    });
    void launcherDone.then(() => reject(new Error('the launcher exited before printing its join command')));
  });
  const agent = spawnAgent(joinString, 'joined', { CREDFWD_LOG_LEVEL: 'info' });
  t.teardown(() => agent.child.kill('SIGTERM'));
  const endpoint = await new Promise<EndpointAccess>((resolve, reject) => {
    let stderr = '';
    agent.child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      for (const line of stderr.split('\n')) {
        if (!line.includes('credentials endpoint listening')) continue;
        const { url, tokenFile } = JSON.parse(line) as EndpointAccess;
        resolve({ url, tokenFile });
      }
    });
    void agent.result.then(() => reject(new Error('the agent exited before its endpoint listened')));
  });
  // The endpoint listens from the welcome on; the credentials follow in the next frame.
  const heldBy = Date.now() + 10_000;
  while ((await askEndpoint(endpoint)).status !== 200) {
    if (Date.now() > heldBy) t.fail('the joined agent never held credentials');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  launcher.kill('SIGKILL');
  await launcherDone;

  const served = await askEndpoint(endpoint);
  t.is(served.status, 200, 'served after the coordinator died');
  t.is(served.accessKeyId, 'ASIASHORTLIVED000001');
  let last = served;
  // Expiry is a matter of time, not of an event: ask until the answer changes, bounded by the credential's life.
  while (last.status === 200 && Date.now() < expiration.getTime()) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    last = await askEndpoint(endpoint);
    if (last.status === 200) t.true((last.expiration?.getTime() ?? 0) - Date.now() >= (MIN_REMAINING_SECONDS - 1) * 1000);
  }
  t.is(last.status, 503);
  t.true(Date.now() >= expiration.getTime() - (MIN_REMAINING_SECONDS + 1) * 1000, 'not refused before its time');
});
