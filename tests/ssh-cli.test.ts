import { launchCluster } from '@credfwd/coordinator';
import { capturedLogger } from './helpers/captured-logger.ts';
import { isolatedEnv, parseJsonLines, runCredfwd } from './helpers/credfwd-cli.ts';
import { assumeRoleViaCli, createIamUser } from './helpers/moto.ts';
import { leftoverProcesses } from './helpers/ssh-hosts.ts';
import { sshHostsFixture, sshSuite, type SshHostsContext } from './helpers/ssh-suite.ts';

type Context = SshHostsContext;

// Never a silent pass: without root or sshd every test is skipped with the reason in its title.
const suite = sshSuite<Context>();
const { test, title } = suite;
sshHostsFixture(suite, { scratch: 'credfwd-ssh-cli-' });
const LEFTOVER_MS = 10_000;


test(title('credfwd launch --hosts runs the command on every host as the launcher, names each result\'s host, and leaves nothing behind'), async (t) => {
  const { hosts, moto } = t.context;
  const user = await createIamUser(moto, 'ssh-cli-carol');
  const session = await assumeRoleViaCli(moto, user, 'arn:aws:iam::123456789012:role/launcher', 'carol-laptop', 3600);
  const aliases = hosts.hosts.map((h) => h.alias);
  const env = isolatedEnv({
    AWS_ACCESS_KEY_ID: session.accessKeyId, AWS_SECRET_ACCESS_KEY: session.secretAccessKey, AWS_SESSION_TOKEN: session.sessionToken,
    AWS_ENDPOINT_URL_STS: moto.url, AWS_REGION: 'us-east-1',
  });
  const result = await runCredfwd([
    'launch', '--hosts', aliases.join(','), '--ssh-config', hosts.configFile, '--json',
    '--env', `AWS_ENDPOINT_URL=${moto.url}`, '--', 'aws', 'sts', 'get-caller-identity', '--output', 'json',
  ], env);
  t.is(result.code, 0, result.stderr);
  const lines = parseJsonLines(result.stdout) as Array<ReturnType<typeof parseJsonLines>[number] & { host?: string }>;
  t.deepEqual(lines.map((l) => l.host).sort(), aliases, 'one result per host, each naming its host');
  for (const line of lines) {
    t.is(line.exitCode, 0, line.stderr);
    t.is((JSON.parse(line.stdout) as { Arn: string }).Arn, 'arn:aws:sts::123456789012:assumed-role/launcher/carol-laptop');
  }
  t.false(result.stdout.includes(session.secretAccessKey) || result.stderr.includes(session.secretAccessKey), 'no secret in the output');
  t.deepEqual(await leftoverProcesses(hosts.hosts, LEFTOVER_MS), [], 'processes left on the hosts');
});

test(title('launchCluster({ hosts, workersPerHost, ssh }) places two workers on each host, reports host progress, and close() stops them all'), async (t) => {
  const { hosts } = t.context;
  const aliases = hosts.hosts.map((h) => h.alias);
  const hostProgress: string[] = [];
  const cluster = await launchCluster({
    hosts: aliases,
    workersPerHost: 2,
    ssh: { configFile: hosts.configFile },
    credentials: null,
    logger: capturedLogger().logger,
    onProgress: (_ready, _total, progress) => hostProgress.push(`${progress.hosts.ready}/${progress.hosts.total}`),
  });
  t.teardown(() => cluster.close());
  t.deepEqual(cluster.hosts, aliases);
  t.is(cluster.workers.length, 6);
  t.is(hostProgress.at(-1), '3/3');
  const results = await cluster.run(['sh', '-c', 'echo "$CREDFWD_AGENT_ID"']);
  t.is(results.length, 6);
  for (const r of results) {
    t.is(r.exitCode, 0, r.stderr);
    t.truthy(r.host && aliases.includes(r.host), `result of ${r.worker} names its host`);
    t.true(r.worker.includes(`-${r.host}-w`), `${r.worker} runs on ${r.host}`);
  }
  await cluster.close();
  t.deepEqual(await leftoverProcesses(hosts.hosts, LEFTOVER_MS), [], 'processes left on the hosts');
});
