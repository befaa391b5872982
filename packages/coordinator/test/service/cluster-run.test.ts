import test from 'ava';
import { ClusterRun, DISPATCH_REPORT_MS, LOST_AGENT_MS } from '../../src/service/cluster-run.ts';

const exit = (taskId: string, code: number) => ({ type: 'exit' as const, taskId, code, signal: null });
const output = (taskId: string, chunk: string | Buffer) => ({ type: 'output' as const, taskId, stream: 'stdout' as const, data: Buffer.from(chunk).toString('base64') });

test('ClusterRun resolves once every live replica reported and every task exited, sorted by worker', async (t) => {
  const run = new ClusterRun('req', 'c1', ['r1', 'r2'], 0);
  run.dispatched('r1', [{ agentId: 'w10', taskId: 't10' }], 0);
  t.true(run.frame('c1', 'w10', output('t10', 'a')));
  t.true(run.frame('c1', 'w10', exit('t10', 0)));
  run.dispatched('r2', [{ agentId: 'w2', taskId: 't2' }], 0);
  t.true(run.frame('c1', 'w2', exit('t2', 3)));
  t.deepEqual((await run.done).map((r) => [r.worker, r.exitCode, r.stdout]), [['w2', 3, ''], ['w10', 0, 'a']]);
});

test('ClusterRun keeps output bytes exact, bytes that are not UTF-8 included', async (t) => {
  const run = new ClusterRun('req', 'c1', ['r1'], 0);
  run.dispatched('r1', [{ agentId: 'w1', taskId: 't1' }], 0);
  // A character cut between two frames, then bytes that are no UTF-8 at all.
  run.frame('c1', 'w1', output('t1', Buffer.from([0xe2, 0x82])));
  run.frame('c1', 'w1', output('t1', Buffer.from([0xac, 0xff, 0xfe])));
  run.frame('c1', 'w1', exit('t1', 0));
  const [result] = await run.done;
  t.deepEqual(result?.stdoutBytes, Buffer.from([0xe2, 0x82, 0xac, 0xff, 0xfe]));
  t.is(result?.stdout, '€\uFFFD\uFFFD');
});

test('ClusterRun ignores frames for another cluster, another agent or an unknown task', (t) => {
  const run = new ClusterRun('req', 'c1', ['r1'], 0);
  run.dispatched('r1', [{ agentId: 'w1', taskId: 't1' }], 0);
  t.false(run.frame('c2', 'w1', exit('t1', 0)));
  t.false(run.frame('c1', 'w2', exit('t1', 0)), 'an agent cannot report on another agent\'s task');
  t.false(run.frame('c1', 'w1', exit('t9', 0)));
});

test('ClusterRun stops waiting for a dead replica, or a silent one after DISPATCH_REPORT_MS', async (t) => {
  const dead = new ClusterRun('req', 'c1', ['r1', 'r2'], 0);
  dead.dispatched('r1', [], 0);
  dead.check(new Set(['r1']), new Set(), 1);
  t.deepEqual(await dead.done, []);
  const silent = new ClusterRun('req', 'c1', ['r1'], 0);
  silent.check(new Set(['r1']), new Set(), DISPATCH_REPORT_MS + 1);
  t.deepEqual(await silent.done, []);
});

test('ClusterRun keeps a task whose agent is failing over, and ends it once the agent is gone for LOST_AGENT_MS', async (t) => {
  const run = new ClusterRun('req', 'c1', ['r1'], 0);
  run.dispatched('r1', [{ agentId: 'w1', taskId: 't1' }], 0);
  run.check(new Set(['r1']), new Set(), LOST_AGENT_MS - 1);
  run.check(new Set(['r1']), new Set(['w1']), LOST_AGENT_MS);
  run.check(new Set(['r1']), new Set(), 2 * LOST_AGENT_MS);
  t.true(run.frame('c1', 'w1', exit('t1', 0)), 'still pending: seen again before the limit');
  const lost = new ClusterRun('req', 'c1', ['r1'], 0);
  lost.dispatched('r1', [{ agentId: 'w1', taskId: 't1' }], 0);
  lost.check(new Set(['r1']), new Set(), LOST_AGENT_MS + 1);
  const [result] = await lost.done;
  t.is(result?.exitCode, null);
  t.regex(result?.stderr ?? '', /agent disconnected before the command finished/);
});

test('ClusterRun of a deleted cluster ends a task at the first check that finds its agent gone, not after LOST_AGENT_MS (issue 10: Ctrl-C on launch --coordinator waited 30 s)', async (t) => {
  const run = new ClusterRun('req', 'c1', ['r1'], 0);
  run.dispatched('r1', [{ agentId: 'w1', taskId: 't1' }, { agentId: 'w2', taskId: 't2' }], 0);
  run.revoked();
  // w1 sent its exit before it closed; w2 is still registered, closing.
  t.true(run.frame('c1', 'w1', exit('t1', 143)));
  run.check(new Set(['r1']), new Set(['w2']), 1);
  let settled = false;
  void run.done.then(() => { settled = true; });
  await Promise.resolve();
  t.false(settled, 'an agent still registered is waited for');
  run.check(new Set(['r1']), new Set(), 2);
  const results = await run.done;
  t.deepEqual(results.map((r) => [r.worker, r.exitCode]), [['w1', 143], ['w2', null]]);
  t.regex(results[1]?.stderr ?? '', /the cluster was deleted before the command finished/);
});
