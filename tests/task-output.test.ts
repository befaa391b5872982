import { createHash } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import test from 'ava';
import { Coordinator, launchCluster } from '@credfwd/coordinator';
import { parseJoinString } from '@credfwd/shared';
import { startAgent } from '@credfwd/worker-agent';
import { peakRssKiB, writersBlocked } from './helpers/blocked-writers.ts';
import { capturedLogger } from './helpers/captured-logger.ts';
import { within } from './helpers/deadline.ts';
import { CREDFWD_BIN, isolatedEnv, spawnNode } from './helpers/credfwd-cli.ts';

/** A CLI run's exit and its exact output bytes. */
interface RawResult {
  code: number | null;
  stdout: Buffer;
  stderr: Buffer;
}

/** Runs `credfwd ARGS` to completion, keeping its output as bytes; killed at teardown if the test ends first. */
function runCredfwdRaw(t: { teardown(fn: () => void): void }, args: string[], onStdout?: (chunk: Buffer) => void): Promise<RawResult> {
  const child: ChildProcess = spawnNode(CREDFWD_BIN, args, isolatedEnv());
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout!.on('data', (chunk: Buffer) => (onStdout ? onStdout(chunk) : stdout.push(chunk)));
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr) }));
  });
}

/**
 * Checks `worker | N` lines as they stream by, without holding them: each
 * worker's lines must be 1, 2, 3… exactly, none lost, none out of order.
 */
class SeqLines {
  readonly next = new Map<string, number>();
  readonly problems: string[] = [];
  #partial = '';

  take(chunk: Buffer): void {
    const lines = (this.#partial + chunk.toString('latin1')).split('\n');
    this.#partial = lines.pop() ?? '';
    for (const line of lines) {
      const bar = line.indexOf(' | ');
      const worker = line.slice(0, bar);
      const expected = this.next.get(worker) ?? 1;
      if (bar < 0 || line.slice(bar + 3) !== String(expected)) {
        if (this.problems.length < 5) this.problems.push(`${JSON.stringify(line.slice(0, 80))} where ${worker} line ${expected} belonged`);
        continue;
      }
      this.next.set(worker, expected + 1);
    }
  }

  get partial(): string {
    return this.#partial;
  }
}

/** SHA-256 of `seq 1 COUNT`'s output, built in slices so the whole text is never held. */
function seqHash(count: number): string {
  const hash = createHash('sha256');
  for (let n = 1; n <= count; n += 100_000) {
    hash.update(Array.from({ length: Math.min(100_000, count - n + 1) }, (_, i) => `${n + i}\n`).join(''));
  }
  return hash.digest('hex');
}

// Serial, every test here: the two heavy ones must not starve each other's agents of CPU on 2 cores.

// The issue's own command: 6.5 million lines per worker (45 MB) took about 10 s here, whole, on 2 cores.
test.serial('seq 1 6500000 on two workers arrives whole through the CLI (230,000 lines were lost and an agent was called disconnected)', async (t) => {
  t.timeout(120_000);
  const count = 6_500_000;
  const seq = new SeqLines();
  const result = await runCredfwdRaw(t, ['launch', '--workers', '2', '--credentials', 'none', '--', 'seq', '1', String(count)], (chunk) => seq.take(chunk));
  t.is(result.code, 0, result.stderr.toString());
  t.deepEqual(seq.problems, []);
  t.is(seq.partial, '');
  t.is(seq.next.size, 2, 'two workers');
  for (const [worker, next] of seq.next) t.is(next, count + 1, `${worker} printed every line`);
  t.false(result.stderr.includes('disconnected'), result.stderr.toString());
});

test.serial('output faster than the coordinator reads it never starves the heartbeat (the agent was terminated mid-output)', async (t) => {
  t.timeout(60_000);
  const count = 2_000_000;
  // A 200 ms heartbeat: the old backlog outlived two intervals within a fraction of the output.
  const cluster = await launchCluster({ workers: 2, credentials: null, heartbeatIntervalMs: 200, logger: capturedLogger().logger });
  t.teardown(() => cluster.close());
  const hashes = new Map<string, ReturnType<typeof createHash>>();
  const results = await cluster.run(['seq', '1', String(count)], {
    onOutput: (worker, stream, chunk) => {
      if (stream !== 'stdout') return;
      const hash = hashes.get(worker) ?? createHash('sha256');
      hash.update(chunk);
      hashes.set(worker, hash);
    },
  });
  const want = seqHash(count);
  t.deepEqual(results.map((r) => [r.exitCode, r.stderr]), [[0, ''], [0, '']]);
  t.is(hashes.size, 2);
  for (const [worker, hash] of hashes) t.is(hash.digest('hex'), want, `${worker}'s output arrived byte for byte`);
});

// Before: the launcher read on regardless and queued the output for its stdout: 359 MiB with the reader stalled 12 s, and all of it (over 400 MiB) for a reader stalled to the end.
const LAUNCHER_PEAK_BOUND_KIB = 280 * 1024;

test.serial('a reader of credfwd\'s stdout that stalls holds the workers back: bounded memory, every line, exit 0 (the launcher kept all the output)', async (t) => {
  t.timeout(180_000);
  const count = 6_500_000;
  const child = spawnNode(CREDFWD_BIN, ['launch', '--workers', '2', '--credentials', 'none', '--', 'seq', '1', String(count)], isolatedEnv());
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const stderr: Buffer[] = [];
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
  const closed = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  // Nothing reads the launcher's stdout yet: once every buffer on the way is full, both workloads must stop writing.
  await writersBlocked(child.pid!, 'seq', 2, 'both workloads held back while nobody read the launcher\'s stdout');
  let peakKiB = peakRssKiB(child.pid!);
  const stalledPeakKiB = peakKiB;
  const seq = new SeqLines();
  child.stdout!.on('data', (chunk: Buffer) => {
    seq.take(chunk);
    peakKiB = Math.max(peakKiB, peakRssKiB(child.pid!));
  });
  const code = await closed;
  t.log(`launcher peak RSS ${Math.round(stalledPeakKiB / 1024)} MiB while its reader stalled, ${Math.round(peakKiB / 1024)} MiB over the run`);
  t.is(code, 0, Buffer.concat(stderr).toString());
  t.deepEqual(seq.problems, []);
  t.is(seq.partial, '');
  t.is(seq.next.size, 2, 'two workers');
  for (const [worker, next] of seq.next) t.is(next, count + 1, `${worker} printed every line`);
  t.false(Buffer.concat(stderr).includes('disconnected'), Buffer.concat(stderr).toString());
  t.true(peakKiB > 0 && peakKiB < LAUNCHER_PEAK_BOUND_KIB, `launcher peak RSS ${peakKiB} KiB`);
});

test.serial('an onOutput that holds output back for many heartbeats: the agent is not read meanwhile, neither end drops the link, nothing is lost', async (t) => {
  t.timeout(120_000);
  const count = 6_500_000;
  const heartbeatMs = 200;
  const coordinatorLog = capturedLogger();
  const coordinator = await Coordinator.start({ logger: coordinatorLog.logger, heartbeatIntervalMs: heartbeatMs });
  t.teardown(() => coordinator.close());
  const cluster = await coordinator.createCluster({ credentials: null });
  const agentLog = capturedLogger();
  const agent = startAgent({
    join: parseJoinString(cluster.joinString),
    agentId: 'held',
    logger: agentLog.logger,
    baseEnv: { PATH: process.env.PATH },
    heartbeatIntervalMs: heartbeatMs,
  });
  t.teardown(() => agent.close());
  await agent.ready;
  const gone: string[] = [];
  coordinator.hub.on('agent-gone', (_cluster, agentId) => gone.push(agentId));

  const hash = createHash('sha256');
  let received = 0;
  let hold: Promise<void> | undefined;
  let released = false;
  let arrivedWhileHeld = 0;
  let holdFailure: unknown;
  const stallMs = 15 * heartbeatMs;
  const holdBack = async (): Promise<void> => {
    const heldAt = received;
    const stallEnds = Date.now() + stallMs;
    try {
      await writersBlocked(process.pid, 'seq', 1, 'the workload held back while onOutput\'s promise was pending');
      // The reader stalls on for well over two heartbeats, whenever the workload blocked.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, stallEnds - Date.now())));
    } catch (err) {
      holdFailure = err;
    }
    arrivedWhileHeld = received - heldAt;
    released = true;
  };
  const results = await coordinator.run(cluster.id, ['seq', '1', String(count)], {
    onOutput: (_worker, stream, chunk) => {
      if (stream !== 'stdout') return undefined;
      hash.update(chunk);
      received += chunk.length;
      if (released) return undefined;
      hold ??= holdBack();
      return hold;
    },
  });
  t.is(holdFailure, undefined);
  // Which end dropped the link, should one: the agent logs a missed heartbeat, the coordinator the agent's going.
  const logs = `coordinator:\n${coordinatorLog.text().slice(-1500)}\nagent:\n${agentLog.text().slice(-1500)}`;
  t.deepEqual(results.map((r) => [r.worker, r.exitCode, r.stderr]), [['held', 0, '']], logs);
  t.is(hash.digest('hex'), seqHash(count), 'the output arrived byte for byte');
  t.deepEqual(gone, []);
  t.notRegex(agentLog.text(), /no heartbeat/);
  // Only frames already read off the socket when the hold began may arrive during it; the rest waited in the network.
  t.true(arrivedWhileHeld < 1024 * 1024, `${arrivedWhileHeld} bytes arrived while output was held back`);
});

test.serial('closing a cluster whose output is held back revokes its agent at once: the close handshake does not wait behind the held output', async (t) => {
  t.timeout(60_000);
  const coordinator = await Coordinator.start({ logger: capturedLogger().logger });
  t.teardown(() => coordinator.close());
  const cluster = await coordinator.createCluster({ credentials: null });
  const agent = startAgent({ join: parseJoinString(cluster.joinString), agentId: 'held', logger: capturedLogger().logger, baseEnv: { PATH: process.env.PATH } });
  t.teardown(() => agent.close());
  await agent.ready;
  const never = new Promise<void>(() => {});
  const run = coordinator.run(cluster.id, ['seq', '1', '65000000'], { onOutput: () => never });
  await writersBlocked(process.pid, 'seq', 1, 'the workload held back while onOutput\'s promise was pending');
  coordinator.closeCluster(cluster.id);
  t.like(await within(agent.done, 3_000, 'the agent ended'), { reason: 'revoked' });
  t.deepEqual((await within(run, 3_000, 'the run ended')).map((r) => r.exitCode), [null]);
});

test.serial('a last line without a newline is printed, on stdout and on stderr (printf abc printed nothing)', async (t) => {
  const result = await runCredfwdRaw(t, ['launch', '--workers', '1', '--credentials', 'none', '--', 'sh', '-c', 'printf abc; printf def >&2']);
  t.is(result.code, 0, result.stderr.toString());
  const worker = /^(c-[0-9a-f]+-w1) \| /.exec(result.stdout.toString())?.[1];
  t.truthy(worker, result.stdout.toString());
  t.is(result.stdout.toString(), `${worker} | abc\n`);
  t.true(result.stderr.toString().includes(`${worker} | def\n`), result.stderr.toString());
});

const NOT_UTF8 = Buffer.from([0xff, 0xfe]);

test.serial('bytes that are not UTF-8 arrive exact through the API (they became U+FFFD)', async (t) => {
  const cluster = await launchCluster({ workers: 1, credentials: null, logger: capturedLogger().logger });
  t.teardown(() => cluster.close());
  const streamed: Buffer[] = [];
  const [result] = await cluster.run(['sh', '-c', 'printf \'\\377\\376\'; printf \'\\377\' >&2'], {
    onOutput: (_worker, stream, chunk) => {
      if (stream === 'stdout') streamed.push(chunk);
    },
  });
  t.is(result?.exitCode, 0);
  t.deepEqual(result?.stdoutBytes, NOT_UTF8);
  t.deepEqual(result?.stderrBytes, Buffer.from([0xff]));
  t.deepEqual(Buffer.concat(streamed), NOT_UTF8);
});

test.serial('bytes that are not UTF-8 arrive exact in the CLI\'s lines', async (t) => {
  const result = await runCredfwdRaw(t, ['launch', '--workers', '1', '--credentials', 'none', '--', 'sh', '-c', 'printf \'\\377\\376\\n\\377\'']);
  t.is(result.code, 0, result.stderr.toString());
  const worker = /^(c-[0-9a-f]+-w1) \| /.exec(result.stdout.toString('latin1'))?.[1] ?? 'no worker';
  const line = (bytes: Buffer): Buffer => Buffer.concat([Buffer.from(`${worker} | `), bytes, Buffer.from('\n')]);
  t.deepEqual(result.stdout, Buffer.concat([line(NOT_UTF8), line(Buffer.from([0xff]))]));
});

test.serial('--json gives stdout as text when it is UTF-8, as stdoutBase64 when it is not', async (t) => {
  const result = await runCredfwdRaw(t, ['launch', '--workers', '1', '--json', '--credentials', 'none', '--', 'sh', '-c', 'printf \'\\377\\376\'; printf \'€ ok\' >&2']);
  t.is(result.code, 0, result.stderr.toString());
  const [line, ...more] = result.stdout.toString().trim().split('\n').map((text) => JSON.parse(text) as Record<string, unknown>);
  t.deepEqual(more, []);
  t.like(line, { exitCode: 0, signal: null, stdoutBase64: NOT_UTF8.toString('base64'), stderr: '€ ok' });
  t.false('stdout' in line!);
  t.false('stderrBase64' in line!);
});
