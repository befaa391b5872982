import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Cluster, LaunchOptions } from '@credfwd/coordinator';
import { AGENT_BIN, isolatedEnv, parseEnvOutput, runCredfwd } from './helpers/credfwd-cli.ts';
import type { Moto } from './helpers/moto.ts';
import { createIamUser } from './helpers/moto.ts';
import { actAsLauncher, launchRoleCluster } from './helpers/role-launches.ts';
import { startHostMoto } from './helpers/ssh-services.ts';
import { startSshHosts, type SshHosts } from './helpers/ssh-hosts.ts';
import { sshSuite } from './helpers/ssh-suite.ts';
import { startStsCounter, type StsCounter } from './helpers/sts-counter.ts';
import { createOtherUser } from './helpers/other-user.ts';

const run = promisify(execFile);
const suite = sshSuite<{ moto: Moto; counter: StsCounter; hosts: SshHosts }>();
const { test } = suite;

/** ECS's container-credentials address: one of the hosts every AWS SDK accepts over plain http. */
const CONTAINER_HOST = '169.254.170.2';
const ROLE = { roleArn: 'arn:aws:iam::123456789012:role/containers', durationSeconds: 900 };

const BOTO3_LOOP = fileURLToPath(new URL('./workloads/boto3_loop.py', import.meta.url));
const JS_SDK_LOOP = fileURLToPath(new URL('./workloads/js-sdk-loop.ts', import.meta.url));
const ASSUMED = /^arn:aws:sts::123456789012:assumed-role\/containers\/credfwd-c-/;

suite.base.before(async (t) => {
  if (suite.unavailable) return;
  // Two "containers" on this worker: network namespaces joined to it by veth pairs (the second also serves as an SSH host).
  const hosts = t.context.hosts = await startSshHosts([{}, {}]);
  // Where the namespaces reach it, so their SDK clients call STS with what they were served.
  const moto = t.context.moto = await startHostMoto(hosts);
  actAsLauncher(moto, await createIamUser(moto, 'container-launcher'));
  t.context.counter = await startStsCounter(moto.url);
  // As on an ECS host, the address lives on the worker, where every namespace routes it.
  const { stdout } = await run('ip', ['-o', '-4', 'addr', 'show', 'to', `${hosts.hosts[0]!.gateway}/32`]);
  const link = stdout.split(/\s+/)[1] ?? '';
  await run('ip', ['addr', 'add', `${CONTAINER_HOST}/32`, 'dev', link]);
  for (const host of hosts.hosts) {
    await run('ip', ['netns', 'exec', host.namespace, 'ip', 'route', 'add', `${CONTAINER_HOST}/32`, 'via', host.gateway, 'dev', 'e0']);
  }
});

suite.base.after.always(async (t) => {
  // Deleting the links takes the container address with them.
  await t.context.hosts?.stop();
  await t.context.counter?.stop();
  await t.context.moto?.stop();
});

function launch(t: { context: { moto: Moto }; teardown(fn: () => Promise<void>): void }, options: Partial<LaunchOptions> = {}): Promise<Cluster> {
  return launchRoleCluster(t, t.context.moto, { credentials: ROLE, delivery: 'endpoint', endpointListen: CONTAINER_HOST, ...options });
}

/** What `credfwd-agent container-env` prints inside one of the cluster's workloads. */
async function containerEnv(cluster: Cluster, format = 'env'): Promise<string> {
  const [result] = await cluster.run([process.execPath, AGENT_BIN, 'container-env', '--format', format]);
  if (result?.exitCode !== 0) throw new Error(`container-env failed: ${result?.stderr ?? 'no result'}`);
  return result.stdout;
}

/**
 * Runs argv in a namespace with only `vars` (and PATH, HOME for the pyenv shims): no AWS identity of
 * the test's. Asynchronously: the coordinator runs in this process and must go on pushing refreshes.
 */
async function inNamespace(namespace: string, vars: Record<string, string>, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...isolatedEnv(), ...vars };
  try {
    const { stdout, stderr } = await run('ip', ['netns', 'exec', namespace, ...argv], { env, encoding: 'utf8', timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const failed = err as { code?: unknown; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

/** curl's HTTP status for `url` from `namespace`, sending the token file's token (through stdin, never argv) when given. */
async function statusFrom(namespace: string, url: string, tokenFile?: string): Promise<string> {
  const header = tokenFile === undefined ? '' : `printf "Authorization: %s" "$(cat '${tokenFile}')" | `;
  const curl = `${header}curl -s -o /dev/null -w "%{http_code}" ${tokenFile === undefined ? '' : '-H @- '}'${url}'`;
  return (await inNamespace(namespace, {}, ['sh', '-c', curl])).stdout;
}

test(suite.title('boto3, the JS SDK v3 and the AWS CLI in a network namespace, given container-env\'s variables, use refreshed credentials; another namespace without the token is refused'), async (t) => {
  const cluster = await launch(t, { refreshIntervalSeconds: 2 });
  const vars = parseEnvOutput(await containerEnv(cluster));
  const url = vars.AWS_CONTAINER_CREDENTIALS_FULL_URI ?? '';
  const tokenFile = vars.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE ?? '';
  t.regex(url, /^http:\/\/169\.254\.170\.2:\d+\/credfwd\/v1\/credentials$/);
  t.regex(tokenFile, /\/credfwd-endpoint-[^/]+\/token$/);
  t.is(vars.AWS_REGION, 'us-east-1');
  t.is(vars.AWS_EC2_METADATA_DISABLED, 'true');
  const [withToken, without] = t.context.hosts.hosts;
  // The namespace shares the worker's files, as a container with the token file bind-mounted does.
  const inContainer = { ...vars, AWS_ENDPOINT_URL: t.context.moto.url };
  const [boto3, jsSdk, cli] = await Promise.all([
    inNamespace(withToken!.namespace, inContainer, ['python', BOTO3_LOOP, '3', '45']),
    inNamespace(withToken!.namespace, inContainer, [process.execPath, JS_SDK_LOOP, '3', '45']),
    inNamespace(withToken!.namespace, inContainer, ['aws', 'sts', 'get-caller-identity', '--output', 'text', '--query', 'Arn']),
  ]);
  for (const [client, job] of [['boto3', boto3], ['the JS SDK', jsSdk]] as const) {
    t.is(job.code, 0, `${client} saw fewer than three keys within 45 s: ${job.stdout}${job.stderr}`);
    const lines = job.stdout.trim().split('\n').map((line) => JSON.parse(line) as { key: string; arn: string; method?: string });
    t.is(new Set(lines.map((l) => l.key)).size, 3, `${client}: three keys, the first and two pushes, in one client`);
    t.true(lines.every((l) => ASSUMED.test(l.arn) && (l.method ?? 'container-role') === 'container-role'), JSON.stringify(lines));
  }
  t.regex(cli.stdout, ASSUMED, cli.stderr);
  t.is(await statusFrom(without!.namespace, url), '401', 'no token: refused');
  const wrongToken = join(mkdtempSync(join(tmpdir(), 'credfwd-wrong-')), 'token');
  writeFileSync(wrongToken, randomBytes(32).toString('hex'));
  t.is(await statusFrom(without!.namespace, url, wrongToken), '401', 'another token: refused');
  // The control: the same namespace with the token is answered, so the refusals above are the token's, not the network's.
  t.is(await statusFrom(without!.namespace, url, tokenFile), '200');
});

test(suite.title('container-env --format docker: arguments for docker run that mount the token file read-only at /run/credfwd/token'), async (t) => {
  const cluster = await launch(t);
  const args = (await containerEnv(cluster, 'docker')).trim().split('\n');
  t.regex(args[0] ?? '', /^--env AWS_CONTAINER_CREDENTIALS_FULL_URI=http:\/\/169\.254\.170\.2:\d+\/credfwd\/v1\/credentials$/);
  t.true(args.includes('--env AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/run/credfwd/token'));
  t.true(args.some((arg) => /^--volume \/\S+\/credfwd-endpoint-[^/]+\/token:\/run\/credfwd\/token:ro$/.test(arg)), args.join('\n'));
});

test(suite.title('another local user gets nothing from endpoint delivery: no token, and without one refused at loopback and at the container address'), async (t) => {
  const cluster = await launch(t);
  const [printed] = await cluster.run(['sh', '-c', 'echo "url=$AWS_CONTAINER_CREDENTIALS_FULL_URI" && echo "token=$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"']);
  const loopbackUrl = /url=(\S+)/.exec(printed?.stdout ?? '')?.[1] ?? '';
  const tokenFile = /token=(\S+)/.exec(printed?.stdout ?? '')?.[1] ?? '';
  t.regex(loopbackUrl, /^http:\/\/127\.0\.0\.1:\d+\//);
  const containerUrl = parseEnvOutput(await containerEnv(cluster)).AWS_CONTAINER_CREDENTIALS_FULL_URI ?? '';
  const other = await createOtherUser(t);
  const read = other.run(['cat', tokenFile]);
  t.not(read.status, 0);
  t.regex(read.stderr, /Permission denied/);
  for (const url of [loopbackUrl, containerUrl, new URL('/credfwd/v1/container-endpoint', loopbackUrl).href]) {
    t.is(other.run(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', url]).stdout, '401', url);
  }
});

test(suite.title('an --endpoint-listen address on no interface fails the launch with AGENT_START_FAILED and how to add it'), async (t) => {
  const error = await t.throwsAsync(launch(t, { endpointListen: '169.254.170.23' }), { code: 'AGENT_START_FAILED' });
  t.regex(error?.message ?? '', /--endpoint-listen 169\.254\.170\.23/);
  t.regex((error as { hint?: string } | undefined)?.hint ?? '', /ip addr add 169\.254\.170\.23\/32 dev/);
});

/** The SSH form of {@link launch}: one agent on the second namespace host. */
function launchOnHost(t: { context: { moto: Moto; hosts: SshHosts }; teardown(fn: () => Promise<void>): void }, options: Partial<LaunchOptions>): Promise<Cluster> {
  const { hosts } = t.context;
  return launch(t, { workers: 0, hosts: [hosts.hosts[1]!.alias], ssh: { configFile: hosts.configFile }, ...options });
}

test(suite.title('over SSH, launch hands --endpoint-listen to the remote agent: its workload reaches the endpoint at that address with container-env\'s variables'), async (t) => {
  const host = t.context.hosts.hosts[1]!;
  // Another of the SDKs' hosts, on that host's own loopback device: the first stays the worker's.
  await run('ip', ['netns', 'exec', host.namespace, 'ip', 'addr', 'add', '169.254.170.23/32', 'dev', 'lo']);
  t.teardown(async () => {
    await run('ip', ['netns', 'exec', host.namespace, 'ip', 'addr', 'del', '169.254.170.23/32', 'dev', 'lo']);
  });
  const cluster = await launchOnHost(t, { endpointListen: '169.254.170.23' });
  const script = [
    `vars=$('${process.execPath}' '${AGENT_BIN}' container-env)`,
    'echo "$vars"',
    'url=$(echo "$vars" | sed -n "s/^AWS_CONTAINER_CREDENTIALS_FULL_URI=//p")',
    'printf "Authorization: %s" "$(cat "$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")" | curl -s -o /dev/null -w "status=%{http_code}" -H @- "$url"',
  ].join(' && ');
  const [result] = await cluster.run(['sh', '-c', script]);
  t.is(result?.exitCode, 0, result?.stderr);
  t.regex(result?.stdout ?? '', /^AWS_CONTAINER_CREDENTIALS_FULL_URI=http:\/\/169\.254\.170\.23:\d+\/credfwd\/v1\/credentials$/m);
  t.regex(result?.stdout ?? '', /status=200$/);
});

test(suite.title('over SSH, launch hands --imds-v1 to the remote agent: its workload\'s IMDSv1 request is answered'), async (t) => {
  const v1Get = 'curl -s -o /dev/null -w "%{http_code}" "${AWS_EC2_METADATA_SERVICE_ENDPOINT}latest/meta-data/iam/security-credentials/"';
  const [plain] = await (await launchOnHost(t, { delivery: 'imds', endpointListen: undefined })).run(['sh', '-c', v1Get]);
  t.is(plain?.stdout, '401', 'the control: without the flag IMDSv1 is refused');
  const [v1] = await (await launchOnHost(t, { delivery: 'imds', endpointListen: undefined, imdsV1: true })).run(['sh', '-c', v1Get]);
  t.is(v1?.stdout, '200', v1?.stderr);
});

const refusals: Array<[title: string, args: string[], detail: RegExp]> = [
  ['--endpoint-listen without --delivery endpoint', ['--endpoint-listen', CONTAINER_HOST], /applies to --delivery endpoint, not env/],
  ['--endpoint-listen with --delivery imds', ['--delivery', 'imds', '--endpoint-listen', CONTAINER_HOST], /not imds/],
  ['--endpoint-listen 0.0.0.0', ['--delivery', 'endpoint', '--endpoint-listen', '0.0.0.0'], /every interface/],
  ['--endpoint-listen at a bridge address the SDKs refuse over http', ['--delivery', 'endpoint', '--endpoint-listen', '172.17.0.1'], /not an address the AWS SDKs/],
  ['--imds-v1 without --delivery imds', ['--imds-v1'], /--imds-v1 applies to --delivery imds, not env/],
  ['--imds-v1 with --delivery endpoint', ['--delivery', 'endpoint', '--imds-v1'], /not endpoint/],
];

for (const [title, args, detail] of refusals) {
  test(suite.title(`launch refuses ${title}: exit 2, a code and a hint, no STS call`), async (t) => {
    t.context.counter.reset();
    const env = isolatedEnv({ AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? '', AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? '', AWS_ENDPOINT_URL_STS: t.context.counter.url, AWS_REGION: 'us-east-1' });
    const result = await runCredfwd(['launch', ...args, '--', 'true'], env);
    t.is(result.code, 2, result.stderr);
    t.regex(result.stderr, /^error\[USAGE\]: .+\nhint: .+/m);
    t.regex(result.stderr, detail);
    t.notRegex(result.stderr, /\n\s+at /, 'no stack trace');
    t.deepEqual(t.context.counter.calls(), [], 'no STS call');
  });
}
