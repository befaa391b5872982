import test from 'ava';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectOutput, descendantPids, stillRunningAfter } from './helpers/processes.ts';
import { CREDFWD_BIN, isolatedEnv, parseJsonLines, runCredfwd } from './helpers/credfwd-cli.ts';

test('launch -- cmd prints each worker\'s output prefixed and exits 0 when all succeed', async (t) => {
  const result = await runCredfwd(['launch', '--workers', '2', '--credentials', 'none', '--', 'sh', '-c', 'echo out; echo err >&2'], isolatedEnv());
  t.is(result.code, 0, result.stderr);
  const out = result.stdout.trim().split('\n').sort();
  t.is(out.length, 2);
  for (const line of out) t.regex(line, /^c-[0-9a-f]+-w[12] \| out$/);
  t.regex(result.stderr, /-w1 \| err/);
  t.regex(result.stderr, /-w2 \| err/);
});

test('launch --json prints one object per worker and exits non-zero if any worker failed', async (t) => {
  const result = await runCredfwd(
    ['launch', '--workers', '3', '--json', '--credentials', 'none', '--', 'sh', '-c', 'echo hi; exit 3'],
    isolatedEnv(),
  );
  t.is(result.code, 1);
  const lines = parseJsonLines(result.stdout);
  t.is(lines.length, 3);
  for (const line of lines) {
    t.deepEqual(Object.keys(line).sort(), ['exitCode', 'host', 'signal', 'stderr', 'stdout', 'worker']);
    t.is(line.exitCode, 3);
    t.is(line.stdout, 'hi\n');
  }
});

test('a command that does not exist on the worker is exit 127 with a message, not a crash', async (t) => {
  const result = await runCredfwd(['launch', '--json', '--credentials', 'none', '--', 'no-such-command-credfwd'], isolatedEnv());
  t.is(result.code, 1);
  const [line] = parseJsonLines(result.stdout);
  t.is(line?.exitCode, 127);
  t.regex(line?.stderr ?? '', /no-such-command-credfwd/);
});

// One test per case: 27 CLI starts in one test outlasted ava's 60 s without a result on a loaded machine.
const usageHome = isolatedEnv().HOME ?? '';
writeFileSync(join(usageHome, 'bad.env'), 'GOOD=1\nthis line is wrong\n');
const usageCases: Array<[string[], string, RegExp?]> = [
  [['launch', '--workers', 'many'], 'USAGE'],
  [['launch', '--credentials', 'sometimes'], 'USAGE'],
  [['launch', '--credentials', 'role:not-an-arn'], 'CONFIG_INVALID'],
  [['launch', '--duration', 'soon'], 'USAGE'],
  [['launch', '--duration', '5m'], 'CONFIG_INVALID'],
  [['launch', '--env', 'NOEQUALS'], 'USAGE'],
  [['launch', '--env-file', join(usageHome, 'missing.env')], 'ENV_FILE_INVALID'],
  [['launch', '--env-file', join(usageHome, 'bad.env')], 'ENV_FILE_INVALID', /line 2/],
  [['launch', '--region', 'mars'], 'CONFIG_INVALID'],
  [['launch', '--bogus'], 'USAGE'],
  [['launch', '--workers', '-1'], 'USAGE'],
  [['launch', '--workers', '1001'], 'USAGE'],
  [['launch', '--credentials', 'role:arn:aws:iam::123456789012:user/not-a-role'], 'CONFIG_INVALID'],
  [['launch', '--credentials', 'role:arn:aws:iam::123456789012:role/ok', '--duration', '13h'], 'CONFIG_INVALID', /AssumeRole/],
  [['launch', '--duration', '37h'], 'CONFIG_INVALID', /GetSessionToken/],
  [['launch', '--duration', '0'], 'CONFIG_INVALID'],
  [['launch', '--delivery', 'carrier-pigeon'], 'USAGE'],
  [['launch', '--refresh-interval', 'often'], 'USAGE'],
  [['launch', '--refresh-interval', '0s'], 'CONFIG_INVALID'],
  [['launch', '--on-refresh', 'reboot'], 'USAGE'],
  [['launch', '--on-refresh', 'signal:HUP'], 'USAGE'],
  [['launch', '--listen', 'nowhere'], 'USAGE'],
  [['launch', '--listen', '127.0.0.1:70000'], 'USAGE'],
  [['launch', '--public-address', 'not a host'], 'USAGE'],
  [['launch', '--env', '1BAD=x'], 'ENV_NAME_INVALID'],
  [['launch', '--env', 'AWS_PROFILE=x'], 'ENV_CONFLICT'],
  [['fly'], 'USAGE'],
];

for (const [args, code, extra] of usageCases) {
  test.serial(`usage error: credfwd ${args.join(' ').replaceAll(`${usageHome}/`, '')} is error[${code}], a hint, exit 2, no stack trace`, async (t) => {
    const env = isolatedEnv();
    const result = await runCredfwd(args, { ...env, AWS_ACCESS_KEY_ID: 'AKIAEXAMPLEEXAMPLE12', AWS_SECRET_ACCESS_KEY: 'not-used' });
    t.is(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    t.regex(result.stderr, new RegExp(`^error\\[${code}\\]: .+\\nhint: .+`, 'm'), args.join(' '));
    if (extra) t.regex(result.stderr, extra);
    t.notRegex(result.stderr, /\n\s+at /, 'no stack trace');
  });
}

test('launch without a command prints the join command, serves until SIGINT, then leaves no process behind', async (t) => {
  const child = spawn(process.execPath, ['--', CREDFWD_BIN, 'launch', '--workers', '2', '--credentials', 'none'], { env: isolatedEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const done = collectOutput(child);
  let seen = '';
  await new Promise<void>((resolve) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      seen += chunk.toString('utf8');
      if (seen.includes('serving until Ctrl-C')) resolve();
    });
  });
  t.regex(seen, /CREDFWD_JOIN='credfwd:\/\/127\.0\.0\.1:\d+\/c-[0-9a-f]+\?token=[\w-]{43}&pin=sha256:[0-9a-f]{64}' credfwd-agent join/);
  const agents = descendantPids(child.pid ?? 0);
  t.is(agents.length, 2, 'two local agents run');
  child.kill('SIGINT');
  const result = await done;
  t.is(result.code, 0, result.stderr);
  t.deepEqual(await stillRunningAfter(agents), [], 'agents are gone');
});

test('on a terminal, launch shows start-up progress up to 3/3 workers ready; piped, it does not', async (t) => {
  const launch = [process.execPath, '--', CREDFWD_BIN, 'launch', '--workers', '3', '--credentials', 'none', '--', 'true'];
  // util-linux script(1) gives the launcher a pseudo-terminal, as a person's shell would.
  const quoted = launch.map((arg) => `'${arg.replaceAll("'", "'\\''")}'`).join(' ');
  const onTerminal = await collectOutput(spawn('script', ['-qefc', quoted, '/dev/null'], { env: isolatedEnv(), stdio: ['ignore', 'pipe', 'pipe'] }));
  t.is(onTerminal.code, 0, onTerminal.stderr);
  t.regex(onTerminal.stdout, /\r0\/3 workers ready.*\r3\/3 workers ready\r?\n/s);
  const piped = await runCredfwd(launch.slice(3), isolatedEnv());
  t.is(piped.code, 0, piped.stderr);
  t.notRegex(piped.stderr, /workers ready/);
});
