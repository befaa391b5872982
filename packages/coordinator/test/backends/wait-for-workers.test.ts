import test from 'ava';
import { CredfwdError } from '@credfwd/shared';
import { waitForWorkers, type WorkerReadiness } from '../../src/backends/wait-for-workers.ts';
import type { LaunchedAgents } from '../../src/backends/launch-backend.ts';

function fakeAgents(ids: string[]): LaunchedAgents & { exit(error: CredfwdError): void; terminated: boolean } {
  let listener: ((error: CredfwdError) => void) | undefined;
  return {
    workers: ids.map((agentId) => ({ agentId, host: 'localhost' })),
    terminated: false,
    onUnexpectedExit(l) { listener = l; },
    exit(error) { listener?.(error); },
    stop: () => Promise.resolve(),
    terminate() { this.terminated = true; },
  };
}

/** A readiness the test drives by hand, recording whether it is still watched. */
function manualReadiness(): WorkerReadiness & { report(ready: number): void; watching: boolean } {
  let report: (ready: number) => void = () => undefined;
  const readiness = {
    watching: false,
    report: (ready: number) => report(ready),
    watch(_expected: ReadonlySet<string>, r: (ready: number) => void) {
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
  readiness.report(1);
  readiness.report(2);
  await done;
  t.deepEqual(progress, [1, 2]);
  t.false(readiness.watching);
});

test('waitForWorkers resolves at once with no workers to wait for', async (t) => {
  const readiness: WorkerReadiness = { watch: (_expected, report) => { report(0); return () => undefined; } };
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
  readiness.report(1);
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
