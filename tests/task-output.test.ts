import { createHash } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import test from 'ava';
import { launchCluster } from '@credfwd/coordinator';
import { capturedLogger } from './helpers/captured-logger.ts';
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
  const expected = createHash('sha256');
  for (let n = 1; n <= count; n += 100_000) {
    expected.update(Array.from({ length: Math.min(100_000, count - n + 1) }, (_, i) => `${n + i}\n`).join(''));
  }
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
  const want = expected.digest('hex');
  t.deepEqual(results.map((r) => [r.exitCode, r.stderr]), [[0, ''], [0, '']]);
  t.is(hashes.size, 2);
  for (const [worker, hash] of hashes) t.is(hash.digest('hex'), want, `${worker}'s output arrived byte for byte`);
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
