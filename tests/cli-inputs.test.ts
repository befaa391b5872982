import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { createLogger } from '@credfwd/shared';
import { launchCluster } from '@credfwd/coordinator';
import { createIamUser, startMoto, type IamUser, type Moto } from './helpers/moto.ts';
import { startStsCounter, type StsCounter } from './helpers/sts-counter.ts';
import { CREDFWD_BIN, isolatedEnv, parseJsonLines, runCredfwd } from './helpers/credfwd-cli.ts';
import { collectOutput } from './helpers/processes.ts';

const test = anyTest as TestFn<{ moto: Moto; counter: StsCounter; launcher: IamUser }>;

/** A refused input must be refused at once, not after a 60 s start-up timeout. */
const PROMPT_MS = 10_000;

test.before(async (t) => {
  const moto = await startMoto();
  const counter = await startStsCounter(moto.url);
  t.context = { moto, counter, launcher: await createIamUser(moto, 'input-checker') };
});

test.after.always(async (t) => {
  await t.context.counter?.stop();
  await t.context.moto?.stop();
});

/** A launcher with long-term keys whose every STS call goes through the counter: any call would show. */
function launcherEnv(t: { context: { counter: StsCounter; launcher: IamUser } }): Record<string, string> {
  const { counter, launcher } = t.context;
  return isolatedEnv({ AWS_ACCESS_KEY_ID: launcher.accessKeyId, AWS_SECRET_ACCESS_KEY: launcher.secretAccessKey, AWS_ENDPOINT_URL_STS: counter.url, AWS_REGION: 'us-east-1' });
}

function tempFile(name: string, content: string | Buffer): string {
  const file = join(mkdtempSync(join(tmpdir(), 'credfwd-inputs-')), name);
  writeFileSync(file, content);
  return file;
}

/** Every refusal: exit 2, `error[CODE]` and a hint, no stack trace, quickly, and not one STS call. */
const refusals: Array<[title: string, args: () => string[], code: string, detail?: RegExp]> = [
  ['an env file with one 200 KB value (issue 10: the agent looped on "Max payload size exceeded" for 60 s)', () => ['launch', '--env-file', tempFile('big.env', `BIG=${'v'.repeat(200_000)}\n`), '--', 'true'], 'ENV_TOO_LARGE', /hint: .*64 KiB/],
  ['an env file of a million lines', () => ['launch', '--env-file', tempFile('long.env', 'A=1\n'.repeat(1_000_000)), '--', 'true'], 'ENV_TOO_LARGE', /hint: .*256 KiB/],
  ['many --env values together over the limit', () => ['launch', ...Array.from({ length: 40 }, (_, i) => ['--env', `V${i}=${'x'.repeat(2000)}`]).flat(), '--', 'true'], 'ENV_TOO_LARGE'],
  ['an env file that is not UTF-8', () => ['launch', '--env-file', tempFile('latin1.env', Buffer.from('A=1\nB=caf\xe9\n', 'latin1')), '--', 'true'], 'ENV_FILE_INVALID', /line 2/],
  ['--workers 0 with a command (issue 10: exit 1, no output, an STS call)', () => ['launch', '--workers', '0', '--', 'echo', 'hi'], 'USAGE', /--workers 0/],
  ['--duration ""', () => ['launch', '--duration', '', '--', 'true'], 'USAGE', /--duration is empty/],
  ['--region ""', () => ['launch', '--region', '', '--', 'true'], 'USAGE', /--region is empty/],
  ['--refresh-interval ""', () => ['launch', '--refresh-interval', '', '--', 'true'], 'USAGE', /--refresh-interval is empty/],
  ['--env-file ""', () => ['launch', '--env-file', '', '--', 'true'], 'USAGE', /--env-file is empty/],
  ['--credentials ""', () => ['launch', '--credentials', '', '--', 'true'], 'USAGE'],
  ['--coordinator notaurl (issue 10: error[INTERNAL], exit 1)', () => ['launch', '--coordinator', 'notaurl', '--', 'true'], 'USAGE', /https:\/\/HOST:PORT/],
  ['--coordinator with http://', () => ['launch', '--coordinator', 'http://127.0.0.1:7443', '--', 'true'], 'USAGE'],
  ['--credentials none --delivery endpoint, a delivery that does not apply', () => ['launch', '--credentials', 'none', '--delivery', 'endpoint', '--', 'true'], 'CONFIG_INVALID', /does not apply/],
  ['--listen 0.0.0.0:0 without --public-address (issue 10: the join string named 127.0.0.1)', () => ['launch', '--listen', '0.0.0.0:0'], 'USAGE', /--public-address/],
  ['--listen [::]:0 without --public-address', () => ['launch', '--listen', '[::]:0'], 'USAGE', /--public-address/],
  ['--workers with --hosts', () => ['launch', '--workers', '2', '--hosts', 'h1', '--', 'true'], 'USAGE', /--workers-per-host/],
  ['--hosts with --hosts-file', () => ['launch', '--hosts', 'h1', '--hosts-file', tempFile('hosts', 'h2\n'), '--', 'true'], 'USAGE'],
  ['--hosts ","', () => ['launch', '--hosts', ',', '--', 'true'], 'USAGE', /names no host/],
  ['--hosts with an option-like name (it would reach ssh as a flag)', () => ['launch', '--hosts', '-oProxyCommand=touch /tmp/x', '--', 'true'], 'CONFIG_INVALID'],
  ['--hosts-file that does not exist', () => ['launch', '--hosts-file', '/nonexistent/hosts', '--', 'true'], 'CONFIG_INVALID', /--hosts-file/],
  ['--hosts-file of comments only', () => ['launch', '--hosts-file', tempFile('hosts', '# none yet\n\n'), '--', 'true'], 'CONFIG_INVALID', /names no host/],
  ['--ssh-option without hosts', () => ['launch', '--ssh-option', 'ProxyJump=bastion', '--', 'true'], 'USAGE', /SSH hosts only/],
  ['--workers-per-host without hosts', () => ['launch', '--workers-per-host', '2', '--', 'true'], 'USAGE', /SSH hosts only/],
  ['--workers-per-host 0', () => ['launch', '--hosts', 'h1', '--workers-per-host', '0', '--', 'true'], 'USAGE', /1 to 64/],
  ['--direct without an address the hosts can dial', () => ['launch', '--hosts', 'h1', '--direct', '--', 'true'], 'USAGE', /--public-address/],
  ['--give-up-after without hosts (local agents live as long as their launcher)', () => ['launch', '--give-up-after', '5m', '--', 'true'], 'USAGE', /SSH hosts only/],
  ['--give-up-after 0s on hosts', () => ['launch', '--hosts', 'h1', '--give-up-after', '0s', '--', 'true'], 'CONFIG_INVALID', /1 s or more/],
];

for (const [title, args, code, detail] of refusals) {
  test.serial(`refused before anything starts, exit 2 and no STS call: ${title}`, async (t) => {
    t.context.counter.reset();
    const started = Date.now();
    const result = await runCredfwd(args(), launcherEnv(t));
    t.is(result.code, 2, result.stderr);
    t.regex(result.stderr, new RegExp(`^error\\[${code}\\]: .+\\nhint: .+`, 'm'));
    if (detail) t.regex(result.stderr, detail);
    t.notRegex(result.stderr, /\n\s+at /, 'no stack trace');
    t.false(result.stderr.includes('vvvvvvvvvv') || result.stderr.includes('xxxxxxxxxx'), 'values are never echoed');
    t.true(Date.now() - started < PROMPT_MS, 'refused promptly');
    t.deepEqual(t.context.counter.calls(), [], 'no STS call');
  });
}

test.serial('--env-file /dev/zero is refused with ENV_TOO_LARGE at once, in bounded memory (issue 10: 24 GB, then the OOM killer)', async (t) => {
  t.context.counter.reset();
  // GNU time reports the launcher's peak resident set in KiB as its last stderr line.
  const child = spawn('/usr/bin/time', ['-f', 'maxrss=%M', process.execPath, '--', CREDFWD_BIN, 'launch', '--env-file', '/dev/zero', '--', 'true'], { env: launcherEnv(t), stdio: ['ignore', 'pipe', 'pipe'] });
  const result = await collectOutput(child);
  t.regex(result.stderr, /^error\[ENV_TOO_LARGE\]: env file \/dev\/zero is larger than 256 KiB\nhint: /m);
  t.regex(result.stderr, /Command exited with non-zero status 2/);
  const maxRssKiB = Number(/maxrss=(\d+)/.exec(result.stderr)?.[1]);
  t.true(maxRssKiB > 0 && maxRssKiB < 512 * 1024, `peak memory ${maxRssKiB} KiB`);
  t.deepEqual(t.context.counter.calls(), [], 'no STS call');
});

test.serial('an --env value or a command argument that is not UTF-8 is refused, not carried as U+FFFD (issue 10: values became U+FFFD)', async (t) => {
  const bin = `${JSON.stringify(process.execPath)} -- ${JSON.stringify(CREDFWD_BIN)}`;
  // Only a shell can hand a program bytes that are not UTF-8: node's spawn encodes every argument as UTF-8.
  const cases: Array<[script: string, detail: RegExp]> = [
    [`exec ${bin} launch --workers 1 --env "SECRETISH=$(printf 'caf\\351')" -- true`, /argument 5 of the command line \(SECRETISH=…\) is not UTF-8 text/],
    [`exec ${bin} launch --workers 1 -- printf "$(printf '\\351')"`, /argument 6 of the command line is not UTF-8 text/],
  ];
  for (const [script, detail] of cases) {
    t.context.counter.reset();
    const result = await collectOutput(spawn('bash', ['-c', script], { env: launcherEnv(t), stdio: ['ignore', 'pipe', 'pipe'] }));
    t.is(result.code, 2, result.stderr);
    t.regex(result.stderr, /^error\[USAGE\]: .+\nhint: .+base64/m);
    t.regex(result.stderr, detail);
    t.false(result.stderr.includes('caf'), 'the value is never echoed');
    t.is(result.stdout, '', 'nothing ran');
    t.deepEqual(t.context.counter.calls(), [], 'no STS call');
  }
});

test.serial('the API refuses an oversized environ and a delivery that does not apply before resolving the launcher identity', async (t) => {
  let identityLookups = 0;
  const launcher = async (): Promise<never> => {
    identityLookups++;
    throw new Error('the launcher identity must not be needed');
  };
  const logger = createLogger({ name: 'credfwd', level: 'silent' });
  await t.throwsAsync(launchCluster({ workers: 1, environ: { BIG: 'v'.repeat(200_000) }, launcher, logger }), { code: 'ENV_TOO_LARGE' });
  await t.throwsAsync(launchCluster({ workers: 1, credentials: null, delivery: 'endpoint', logger }), { code: 'CONFIG_INVALID', message: /does not apply/ });
  t.is(identityLookups, 0);
});

test.serial('cluster.run refuses a per-run env over the limit with ENV_TOO_LARGE before sending it to any agent', async (t) => {
  const cluster = await launchCluster({ workers: 1, credentials: null, logger: createLogger({ name: 'credfwd', level: 'silent' }) });
  t.teardown(() => cluster.close());
  await t.throwsAsync(cluster.run(['true'], { env: { BIG: 'v'.repeat(200_000) } }), { code: 'ENV_TOO_LARGE', message: /^the task env holds/ });
  const [result] = await cluster.run(['sh', '-c', 'printf %s "$SMALL"'], { env: { SMALL: 'fits' } });
  t.is(result?.stdout, 'fits', 'the cluster still runs commands');
});

test('credfwd with no arguments prints help on stdout and exits 0 (issue 10: it printed nothing)', async (t) => {
  const result = await runCredfwd([], isolatedEnv());
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /^Usage: credfwd \[options\] \[command\]/);
  t.regex(result.stdout, /\n {2}launch \[options\]/);
  t.regex(result.stdout, /--version/);
  t.is(result.stderr, '');
});

test('credfwd --version prints the version of package.json (issue 10: a usage error)', async (t) => {
  const { version } = JSON.parse(readFileSync(new URL('../packages/coordinator/package.json', import.meta.url), 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const result = await runCredfwd([flag], isolatedEnv());
    t.is(result.code, 0, result.stderr);
    t.is(result.stdout, `${version}\n`);
  }
});

test('an env file\'s inline comments are dropped as dotenv drops them; quoted # is kept (issue 10: C=v # comment kept the comment)', async (t) => {
  const file = tempFile('vars.env', 'C=v # comment\nHASH="a # b" # note\nTIGHT=x#y\n');
  const result = await runCredfwd(['launch', '--workers', '1', '--credentials', 'none', '--json', '--env-file', file, '--', 'sh', '-c', 'printf "%s|%s|%s" "$C" "$HASH" "$TIGHT"'], isolatedEnv());
  t.is(result.code, 0, result.stderr);
  t.is(parseJsonLines(result.stdout)[0]?.stdout, 'v|a # b|x');
});
