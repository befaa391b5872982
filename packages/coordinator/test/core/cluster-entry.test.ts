import test from 'ava';
import type { AgentSession } from '../../src/core/agent-session.ts';
import { readySessions, runnableSessions, type ClusterEntry } from '../../src/core/cluster-entry.ts';

/** The two things these choices read of a session: joined or not, and the highest seq it acknowledged. */
function session(agentId: string, ready: boolean, ackedSeq: number): AgentSession {
  return { agentId, ready, ackedSeq } as unknown as AgentSession;
}

function entry(delivery: ClusterEntry['delivery'], currentSeq: number | undefined, sessions: AgentSession[]): ClusterEntry {
  return {
    delivery,
    current: currentSeq === undefined ? undefined : { seq: currentSeq },
    sessions: new Map(sessions.map((s) => [s.agentId ?? '', s])),
  } as unknown as ClusterEntry;
}

const ids = (sessions: AgentSession[]): string[] => sessions.map((s) => s.agentId ?? '').sort();

test('a run goes to every joined agent holding credentials, also one still acknowledging the latest push (it was skipped, a worker missing from the results)', (t) => {
  const cluster = entry('env', 2, [session('current', true, 2), session('acking', true, 1), session('joining', false, -1), session('never-held', true, -1)]);
  t.deepEqual(ids(readySessions(cluster)), ['current'], 'ready: holds the current credentials');
  t.deepEqual(ids(runnableSessions(cluster)), ['acking', 'current']);
});

test('in null mode every joined agent is runnable, none of them holding credentials', (t) => {
  const cluster = entry('none', undefined, [session('a', true, -1), session('b', false, -1)]);
  t.deepEqual(ids(runnableSessions(cluster)), ['a']);
  t.deepEqual(runnableSessions(undefined), []);
});
