import test from 'ava';
import { launchCluster } from '@credfwd/coordinator';
import { clusterAgentReady, readyUnlessExited, spawnAgent } from './helpers/agents.ts';
import { capturedLogger } from './helpers/captured-logger.ts';
import { within } from './helpers/deadline.ts';
import { descendantPids } from './helpers/processes.ts';

test('close() revokes the cluster, stops running workloads and leaves no process behind', async (t) => {
  const before = new Set(descendantPids(process.pid));
  const progress: Array<[number, number]> = [];
  const cluster = await launchCluster({ workers: 3, credentials: null, logger: capturedLogger().logger, onProgress: (ready, total) => progress.push([ready, total]) });
  t.deepEqual(progress.at(-1), [3, 3]);
  const spawned = descendantPids(process.pid).filter((pid) => !before.has(pid));
  t.is(spawned.length, 3, 'one process per local agent');
  let started = 0;
  let allStarted: () => void = () => undefined;
  const workloadsUp = new Promise<void>((resolve) => { allStarted = resolve; });
  // A workload that would outlive everything if close() forgot it: it starts a child of its own too.
  const running = cluster.run(['sh', '-c', 'sleep 300 & echo started; wait'], {
    onOutput: (_worker, stream, chunk) => {
      if (stream === 'stdout' && chunk.includes('started') && ++started === 3) allStarted();
    },
  });
  await workloadsUp;
  t.true(descendantPids(process.pid).filter((pid) => !before.has(pid)).length >= 3 + 3 * 2, 'agents, shells and sleeps run');
  await cluster.close();
  const results = await running;
  t.is(results.length, 3);
  for (const r of results) t.not(r.exitCode, 0);
  t.deepEqual(descendantPids(process.pid).filter((pid) => !before.has(pid)), [], 'no agent or workload left');
  await cluster.close();
});

test('launchCluster with zero workers opens a cluster that remote agents can join', async (t) => {
  const cluster = await launchCluster({ workers: 0, credentials: null, logger: capturedLogger().logger });
  t.deepEqual(cluster.workers, []);
  t.regex(cluster.joinCommand, /^CREDFWD_JOIN='credfwd:\/\/127\.0\.0\.1:\d+\/c-[0-9a-f]+\?token=[\w-]{43}&pin=sha256:[0-9a-f]{64}' credfwd-agent join$/);
  t.deepEqual(await cluster.run(['true']), []);
  await cluster.close();
});

// Serial: its agent must be gone before the test above counts the processes it started.
test.serial('close() right after an agent joined still revokes it: the agent exits at once instead of reconnecting to a closed coordinator', async (t) => {
  const cluster = await launchCluster({ workers: 0, credentials: null, logger: capturedLogger().logger });
  t.teardown(() => cluster.close());
  const joined = clusterAgentReady(cluster, 'external');
  const agent = spawnAgent(cluster.joinString, 'external');
  t.teardown(() => { agent.child.kill('SIGKILL'); });
  await within(readyUnlessExited(joined, agent.result), 20_000, 'the agent joined');
  // Closing in the same tick as the join: the revocation frame must not be cut off by the connection's end.
  await cluster.close();
  const ended = await within(agent.result, 10_000, 'the revoked agent exited (a dropped link would have it reconnect for minutes)');
  t.is(ended.code, 0, ended.stderr);
  t.regex(ended.stderr, /revoked/);
  t.notRegex(ended.stderr, /reconnecting/);
});
