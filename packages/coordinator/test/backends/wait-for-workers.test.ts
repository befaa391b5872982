import test from 'ava';
import { CredfwdError } from '@credfwd/shared';
import { waitForWorkers, type WorkerReadiness } from '../../src/backends/wait-for-workers.ts';
import type { LaunchedAgents } from '../../src/backends/launch-backend.ts';

function fakeAgents(ids: string[], hostOf: (id: string) => string = () => 'localhost'): LaunchedAgents & { exit(error: CredfwdError): void; terminated: boolean } {
  let listener: ((error: CredfwdError) => void) | undefined;
  return {
    workers: ids.map((agentId) => ({ agentId, host: hostOf(agentId) })),
    terminated: false,
    onUnexpectedExit(l) { listener = l; },
    exit(error) { listener?.(error); },
    stop: () => Promise.resolve(),
    terminate() { this.terminated = true; },
  };
}

/** A readiness the test drives by hand, recording whether it is still watched. */
function manualReadiness(): WorkerReadiness & { report(...ready: string[]): void; watching: boolean } {
  let report: (ready: ReadonlySet<string>) => void = () => undefined;
  const readiness = {
    watching: false,
    report: (...ready: string[]) => report(new Set(ready)),
    watch(_expected: ReadonlySet<string>, r: (ready: ReadonlySet<string>) => void) {
      report = r;
      readiness.watching = true;
      return () => { readiness.watching = false; };
    },
  };
  return readiness;
}

test('waitForWorkers resolves once every worker is ready, reporting progress, and stops watching', async (t) => {
  const readiness = manualReadiness();
  const progress: number[] = [];
  const done = waitForWorkers(fakeAgents(['w1', 'w2']), undefined, { readiness, onProgress: (ready) => progress.push(ready) });
  readiness.report('w1');
  readiness.report('w1', 'w2');
  await done;
  t.deepEqual(progress, [1, 2]);
  t.false(readiness.watching);
});

test('waitForWorkers counts a host ready once all its workers are', async (t) => {
  const readiness = manualReadiness();
  const hosts: string[] = [];
  const agents = fakeAgents(['a-w1', 'a-w2', 'b-w1'], (id) => id.slice(0, 1));
  const done = waitForWorkers(agents, undefined, { readiness, onProgress: (_ready, _total, p) => hosts.push(`${p.hosts.ready}/${p.hosts.total}`) });
  readiness.report('a-w1', 'b-w1');
  readiness.report('a-w1', 'a-w2', 'b-w1');
  await done;
  t.deepEqual(hosts, ['1/2', '2/2'], 'host a was not ready while one of its two workers was not');
});

test('waitForWorkers resolves at once with no workers to wait for', async (t) => {
  const readiness: WorkerReadiness = { watch: (_expected, report) => { report(new Set()); return () => undefined; } };
  await t.notThrowsAsync(waitForWorkers(fakeAgents([]), undefined, { readiness }));
});

test('waitForWorkers rejects with the error of an agent that died', async (t) => {
  const agents = fakeAgents(['w1']);
  const readiness = manualReadiness();
  const done = waitForWorkers(agents, undefined, { readiness });
  agents.exit(new CredfwdError('AGENT_START_FAILED', 'local agent w1 exited (1)', 'see the logs'));
  await t.throwsAsync(done, { code: 'AGENT_START_FAILED', message: /w1 exited/ });
  t.false(readiness.watching);
  t.false(agents.terminated);
});

test('waitForWorkers rejects with AGENT_START_FAILED naming how many were ready when time runs out', async (t) => {
  const readiness = manualReadiness();
  const done = waitForWorkers(fakeAgents(['w1', 'w2']), undefined, { readiness, readyTimeoutMs: 50 });
  readiness.report('w1');
  await t.throwsAsync(done, { code: 'AGENT_START_FAILED', message: 'only 1 of 2 workers were ready after 0 s' });
});

test('waitForWorkers rejects with ABORTED and signals the agents when the launch is aborted', async (t) => {
  const agents = fakeAgents(['w1']);
  const controller = new AbortController();
  const done = waitForWorkers(agents, controller.signal, { readiness: manualReadiness() });
  controller.abort('SIGINT');
  await t.throwsAsync(done, { code: 'ABORTED' });
  t.true(agents.terminated);
});

test('waitForWorkers rejects with what the readiness reports failing (the service unreachable)', async (t) => {
  const readiness: WorkerReadiness = { watch: (_expected, _report, fail) => { fail(new CredfwdError('COORDINATOR_UNREACHABLE', 'no answer', 'check')); return () => undefined; } };
  await t.throwsAsync(waitForWorkers(fakeAgents(['w1']), undefined, { readiness }), { code: 'COORDINATOR_UNREACHABLE' });
});
