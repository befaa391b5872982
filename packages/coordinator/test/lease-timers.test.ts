import { Writable } from 'node:stream';
import test from 'ava';
import { CredfwdError, createLogger, type Logger } from '@credfwd/shared';
import { LeaseRenewal } from '../src/client/lease-renewal.ts';
import { LeaseSweep } from '../src/service/lease-sweep.ts';

interface Line { level: number; msg: string; clusterId?: string; reason?: string; sinceRenewalSeconds?: number }

function logged(): { logger: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _encoding, done) => { lines.push(JSON.parse(chunk.toString('utf8')) as Line); done(); } });
  return { logger: createLogger({ name: 'test', level: 'debug', destination: sink }), lines };
}

/** Polls until `done()` holds, failing with `what` after 5 s: a bound, not a wait. */
async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within 5000 ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test('LeaseRenewal renews every third of the lease until closed', async (t) => {
  const { logger, lines } = logged();
  const timeouts: number[] = [];
  // A 0.06 s lease: a renewal every 20 ms.
  const renewal = new LeaseRenewal({ clusterId: 'c-1', leaseSeconds: 0.06, logger, renew: async (timeoutMs) => { timeouts.push(timeoutMs); } });
  renewal.start();
  await until(() => timeouts.length >= 3, 'three renewals');
  renewal.close();
  const count = timeouts.length;
  t.true(timeouts.every((ms) => ms === 20), 'a renewal may take no longer than the interval');
  // Closed: no renewal comes in the time several would have.
  const later = Date.now() + 100;
  await until(() => Date.now() >= later, 'time passing');
  t.is(timeouts.length, count);
  t.deepEqual(lines, []);
});

test('LeaseRenewal logs a failed renewal and retries; a cluster already gone is said once and ends the renewals', async (t) => {
  const { logger, lines } = logged();
  let calls = 0;
  const renewal = new LeaseRenewal({
    clusterId: 'c-2',
    leaseSeconds: 0.06,
    logger,
    renew: async () => {
      calls += 1;
      if (calls === 1) throw new CredfwdError('COORDINATOR_UNREACHABLE', 'cannot reach the coordinator', 'check it');
      if (calls === 3) throw new CredfwdError('CLUSTER_NOT_FOUND', 'coordinator answered 404', 'gone');
    },
  });
  t.teardown(() => renewal.close());
  renewal.start();
  await until(() => lines.length >= 2, 'two warnings');
  const after = Date.now() + 100;
  await until(() => Date.now() >= after, 'time passing');
  t.is(calls, 3, 'retried after the failure, stopped after the refusal');
  t.deepEqual(lines.map((l) => [l.level, l.clusterId, l.msg.split(':')[0]]), [
    [40, 'c-2', 'could not renew the cluster\'s lease; retrying'],
    [40, 'c-2', 'the service no longer has this cluster'],
  ]);
});

test('LeaseSweep deletes lapsed clusters and logs at warn only those it deleted; a failed sweep is retried', async (t) => {
  const { logger, lines } = logged();
  let sweeps = 0;
  const deleted: string[] = [];
  const sweep = new LeaseSweep({
    logger,
    lapsed: async () => {
      sweeps += 1;
      if (sweeps === 1) throw new Error('Redis is away');
      return sweeps === 2 ? ['c-mine', 'c-theirs'] : [];
    },
    deleteIfLapsed: async (id) => {
      if (id !== 'c-mine') return undefined; // another replica (or a renewal) came first
      deleted.push(id);
      return { seq: 4, leaseSeconds: 60, leaseExpiredAt: new Date(Date.now() - 5_000) };
    },
  }, 5);
  t.teardown(() => sweep.close());
  sweep.start();
  await until(() => sweeps >= 3, 'three sweeps');
  sweep.close();
  t.deepEqual(deleted, ['c-mine']);
  t.deepEqual(lines.map((l) => [l.level, l.msg.split(';')[0]]), [[40, 'lease sweep failed'], [40, 'cluster deleted: its lease lapsed (its launcher stopped renewing it)']]);
  t.is(lines[1]?.clusterId, 'c-mine');
  t.is(lines[1]?.sinceRenewalSeconds, 65, 'lapsed 5 s ago, on a 60 s lease');
});
