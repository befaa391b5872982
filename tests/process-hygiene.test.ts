import test from 'ava';
import { spawn } from 'node:child_process';
import { Coordinator } from '@credfwd/coordinator';
import { agentReady, spawnAgent } from './helpers/agents.ts';
import { capturedLogger } from './helpers/captured-logger.ts';
import { CREDFWD_BIN, isolatedEnv } from './helpers/credfwd-cli.ts';
import { freePort } from './helpers/free-port.ts';
import { collectOutput, descendantPids, stillRunningAfter } from './helpers/processes.ts';
import { startTcpProxy } from './helpers/tcp-proxy.ts';

/** A workload that would outlive its agent if nobody stopped it: a shell with a child of its own. */
const STUBBORN = ['sh', '-c', 'sleep 300 & echo started; wait'];

function linesSeen(stream: NodeJS.ReadableStream | null, text: string, count: number): Promise<void> {
  let seen = '';
  return new Promise((resolve) => {
    stream?.on('data', (chunk: Buffer) => {
      seen += chunk.toString('utf8');
      if (seen.split(text).length - 1 >= count) resolve();
    });
  });
}

const signalledLauncher = test.macro({
  async exec(t, signal: 'SIGTERM' | 'SIGINT', exitCode: number) {
    const launcher = spawn(process.execPath, ['--', CREDFWD_BIN, 'launch', '--workers', '2', '--credentials', 'none', '--', ...STUBBORN], {
      env: isolatedEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const done = collectOutput(launcher);
    await linesSeen(launcher.stdout, 'started', 2);
    const spawned = descendantPids(launcher.pid ?? 0);
    t.true(spawned.length >= 2 + 2 * 2, 'agents, shells and sleeps run');
    launcher.kill(signal);
    const result = await done;
    t.is(result.code, exitCode, result.stderr);
    t.deepEqual(await stillRunningAfter(spawned), [], 'no agent or workload outlives the launcher');
  },
  title: (_provided, signal: string) => `${signal} on credfwd launch with a running command leaves no agent or workload behind`,
});

test(signalledLauncher, 'SIGTERM', 143);
test(signalledLauncher, 'SIGINT', 130);

test('an agent that loses its coordinator for good stops its workloads and exits with AGENT_UNREACHABLE', async (t) => {
  const port = await freePort();
  const link = await startTcpProxy(`127.0.0.1:${port}`);
  t.teardown(() => link.stop());
  const coordinator = await Coordinator.start({ logger: capturedLogger().logger, listen: `127.0.0.1:${port}`, publicAddress: link.address });
  t.teardown(() => coordinator.close());
  const cluster = await coordinator.createCluster({ credentials: null });
  const agent = spawnAgent(cluster.joinString, 'stranded', {}, ['--give-up-after', '1s']);
  t.teardown(() => { agent.child.kill('SIGKILL'); });
  await agentReady(coordinator, cluster.id, 'stranded');
  let started!: () => void;
  const workloadUp = new Promise<void>((resolve) => { started = resolve; });
  void coordinator.run(cluster.id, STUBBORN, { onOutput: (_worker, _stream, chunk) => { if (chunk.includes('started')) started(); } });
  await workloadUp;
  const workloads = descendantPids(agent.child.pid ?? 0);
  t.true(workloads.length >= 2, 'the shell and its sleep run');

  // The coordinator stays up, but this worker can never reach it again.
  await link.stop();
  const result = await agent.result;
  t.is(result.code, 1);
  t.regex(result.stderr, /^error\[AGENT_UNREACHABLE\]: .+\nhint: .+/m);
  t.deepEqual(await stillRunningAfter(workloads), [], 'no workload is orphaned');
});

test('credfwd-agent refuses --give-up-after 0 as a usage error', async (t) => {
  const agent = spawnAgent('credfwd://127.0.0.1:1/c-000000000000?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&pin=sha256:' + '0'.repeat(64), 'zero', {}, ['--give-up-after', '0']);
  const result = await agent.result;
  t.is(result.code, 2);
  t.regex(result.stderr, /^error\[USAGE\]: --give-up-after/m);
});
