import type { ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchCluster, type Cluster, type LaunchOptions } from '@credfwd/coordinator';
import { capturedLogger } from './helpers/captured-logger.ts';
import { parseEnvOutput } from './helpers/credfwd-cli.ts';
import { within } from './helpers/deadline.ts';
import type { IamUser } from './helpers/moto.ts';
import { hostProcesses, leftoverProcesses, localSshProcesses, pollUntil } from './helpers/ssh-hosts.ts';
import { sshHostsFixture, sshSuite, type SshHostsContext } from './helpers/ssh-suite.ts';

/*
 * Credential modes, environ and endpoint delivery on three SSH hosts
 * (network namespaces with their own sshd): the workloads run there and
 * reach moto on the hosts' service address; the coordinator stays on this
 * side's loopback, reached only through each agent's reverse tunnel.
 */

interface Context extends SshHostsContext {
  /** The launcher's own identity, in this test process's environment. */
  launcher: IamUser;
}

// Never a silent pass: without root or sshd every test is skipped with the reason in its title.
const suite = sshSuite<Context>();
const { test, title } = suite;
sshHostsFixture(suite, { scratch: 'credfwd-ssh-modes-', launcher: 'ssh-modes-launcher' });

const ROLE = { roleArn: 'arn:aws:iam::123456789012:role/analyst', durationSeconds: 900 };
const BOTO3_LOOP = fileURLToPath(new URL('./workloads/boto3_loop.py', import.meta.url));
const LEFTOVER_MS = 10_000;
const HELD_MS = 30_000;


/** One agent per host, moto as every workload's AWS endpoint; closed at teardown whatever happens. */
async function launch(t: ExecutionContext<Context>, options: Partial<LaunchOptions>): Promise<Cluster> {
  const { hosts, moto } = t.context;
  const cluster = await launchCluster({
    hosts: hosts.hosts.map((h) => h.alias),
    ssh: { configFile: hosts.configFile },
    region: 'us-east-1',
    logger: capturedLogger().logger,
    ...options,
    environ: { AWS_ENDPOINT_URL: moto.url, ...options.environ },
  });
  t.teardown(() => cluster.close());
  return cluster;
}

async function closeLeavingNothing(t: ExecutionContext<Context>, cluster: Cluster): Promise<void> {
  await cluster.close();
  t.deepEqual(await leftoverProcesses(t.context.hosts.hosts, LEFTOVER_MS), [], 'processes left on the hosts');
}

function hostsOf(results: ReadonlyArray<{ host?: string }>): string[] {
  return results.map((r) => r.host ?? '(none)').sort();
}

test(title('role mode across 3 hosts: aws sts get-caller-identity on each host is the assumed role session, one key for all'), async (t) => {
  const cluster = await launch(t, { credentials: ROLE });
  const results = await cluster.run(['sh', '-c', 'aws sts get-caller-identity --output json && echo ---ENV--- && env']);
  t.deepEqual(hostsOf(results), ['h1', 'h2', 'h3'], 'one result per host, each naming it');
  const keys = new Set<string | undefined>();
  for (const r of results) {
    t.is(r.exitCode, 0, r.stderr);
    const [identity = '', env = ''] = r.stdout.split('---ENV---');
    t.regex((JSON.parse(identity) as { Arn: string }).Arn, /^arn:aws:sts::123456789012:assumed-role\/analyst\/credfwd-c-[0-9a-f]+$/);
    const vars = parseEnvOutput(env);
    t.regex(vars.AWS_ACCESS_KEY_ID ?? '', /^ASIA/, 'a minted session key, not the launcher\'s AKIA key');
    keys.add(vars.AWS_ACCESS_KEY_ID);
    t.false(r.stdout.includes(t.context.launcher.secretAccessKey), `launcher secret in the output of ${r.host}`);
  }
  t.is(keys.size, 1, 'every host holds the one minted credential');
  await closeLeavingNothing(t, cluster);
});

test(title('null mode across 3 hosts: workloads get no credentials and act with the instance profile from moto\'s instance metadata, not as the launcher'), async (t) => {
  const { moto, launcher } = t.context;
  // The AWS CLI on each host finds no keys and falls back to instance metadata, which moto serves at /latest/meta-data/ on its own port.
  const cluster = await launch(t, { credentials: null, environ: { AWS_EC2_METADATA_SERVICE_ENDPOINT: `${moto.url}/` } });
  const results = await cluster.run(['sh', '-c', 'aws configure list && aws sts get-caller-identity --output json && echo ---ENV--- && env']);
  t.deepEqual(hostsOf(results), ['h1', 'h2', 'h3']);
  for (const r of results) {
    t.is(r.exitCode, 0, r.stderr);
    const [listing = '', env = ''] = r.stdout.split('---ENV---');
    // moto's instance role hands out the key "test-key"; the CLI shows its last four characters and where it came from.
    t.regex(listing, /access_key\s+\*+-key\s+iam-role/, `credentials on ${r.host} come from instance metadata`);
    const arn = (JSON.parse(listing.slice(listing.indexOf('{'))) as { Arn: string }).Arn;
    t.is(arn, 'arn:aws:sts::123456789012:user/moto', 'moto\'s identity for its instance-profile key');
    t.not(arn, launcher.arn);
    const vars = parseEnvOutput(env);
    for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_CONTAINER_CREDENTIALS_FULL_URI']) t.is(vars[name], undefined, `${name} on ${r.host}`);
    t.false(r.stdout.includes(launcher.accessKeyId), `launcher key id on ${r.host}`);
  }
  await closeLeavingNothing(t, cluster);
});

test(title('environ reaches the workloads on every host, and a secret-looking value is in no argv on any host or in any local ssh'), async (t) => {
  const token = `tok-${randomBytes(16).toString('hex')}`;
  const cluster = await launch(t, { credentials: ROLE, environ: { JOB_API_TOKEN: token, JOB_ZONE: 'zone a' } });
  const dir = await mkdtemp(join(t.context.scratch, 'held-'));
  // Each workload prints what it got, says it started (the hosts share this filesystem), then holds until released, so the scan sees it running.
  const running = cluster.run(['sh', '-c', `printf "%s|%s" "$JOB_API_TOKEN" "$JOB_ZONE"; mktemp ${dir}/started.XXXXXX >/dev/null; while [ ! -e ${dir}/release ]; do sleep 0.1; done`]);
  await pollUntil(async () => (await readdir(dir)).length >= 3, HELD_MS, 'three workloads never started');

  const scanned = await hostProcesses(t.context.hosts.hosts);
  t.true(scanned.filter((p) => p.environ.includes(`JOB_API_TOKEN=${token}`)).length >= 3, 'the scan saw the workloads holding the value');
  for (const p of scanned) t.false(p.cmdline.includes(token), `environ value in the argv of ${p.host} pid ${p.pid}`);
  for (const p of await localSshProcesses(t.context.hosts.configFile)) t.false(p.cmdline.includes(token) || p.environ.includes(token), `environ value in local ssh pid ${p.pid}`);

  await writeFile(join(dir, 'release'), '');
  const results = await within(running, HELD_MS, 'released workloads never finished');
  t.deepEqual(hostsOf(results), ['h1', 'h2', 'h3']);
  for (const r of results) t.is(r.stdout, `${token}|zone a`, `environ on ${r.host}`);
  await closeLeavingNothing(t, cluster);
});

test(title('endpoint delivery on 3 hosts: a long-lived boto3 client on each host keeps working across a refresh and sees the new key without restart'), async (t) => {
  const cluster = await launch(t, { credentials: ROLE, delivery: 'endpoint', refreshIntervalSeconds: 2 });
  // One boto3 client per host for its whole life, calling STS until it has seen two keys: the first and the refreshed one.
  const results = await cluster.run(['python3', BOTO3_LOOP, '2', '45']);
  t.deepEqual(hostsOf(results), ['h1', 'h2', 'h3']);
  for (const r of results) {
    t.is(r.exitCode, 0, `boto3 on ${r.host}: ${r.stderr}`);
    const lines = r.stdout.trim().split('\n').map((line) => JSON.parse(line) as { key: string; arn: string; calls: number });
    t.is(new Set(lines.map((l) => l.key)).size, 2, `the client on ${r.host} saw the refreshed key`);
    for (const l of lines) t.regex(l.arn, /^arn:aws:sts::123456789012:assumed-role\/analyst\/credfwd-c-/);
    t.true(lines.at(-1)!.calls > 1, 'the same client kept calling across the refresh');
  }
  await closeLeavingNothing(t, cluster);
});
