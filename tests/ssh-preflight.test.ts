import anyTest, { type ExecutionContext } from 'ava';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Coordinator, CredfwdError, defaultAgentProgram, type AgentProgram, type ErrorCode } from '@credfwd/coordinator';
import { SshBackend, type SshBackendOptions, type SshAgents } from '../packages/coordinator/src/backends/ssh/index.ts';
import { capturedLogger } from './helpers/captured-logger.ts';
import { within } from './helpers/deadline.ts';
import { leftoverProcesses, startSshHosts, type SshHost, type SshHosts } from './helpers/ssh-hosts.ts';
import { sshSuite } from './helpers/ssh-suite.ts';

interface Context {
  hosts: SshHosts;
  coordinator: Coordinator;
  program: AgentProgram;
  scratch: string;
}

// Never a silent pass: without root or sshd these tests are skipped with the reason in their title.
const { base, unavailable, test, title } = sshSuite<Context>();

/** A `node` that only says it is Node 18: a host whose node is too old. */
const OLD_NODE = '#!/bin/sh\necho v18.19.0\n';

if (!unavailable) {
  base.before(async (t) => {
    // Filled in step by step, so the after hook tears down whatever started before a later step failed.
    const scratch = t.context.scratch = await mkdtemp(join(tmpdir(), 'credfwd-ssh-preflight-'));
    await mkdir(join(scratch, 'old-node'));
    await writeFile(join(scratch, 'old-node', 'node'), OLD_NODE);
    await chmod(join(scratch, 'old-node', 'node'), 0o755);
    t.context.hosts = await startSshHosts([
      {},
      { knownHost: false },
      { path: '/nonexistent' },
      { path: `${join(scratch, 'old-node')}:/usr/bin:/bin` },
      { authorized: false },
      { knownHost: 'changed' },
    ]);
    t.context.coordinator = await Coordinator.start({ logger: capturedLogger().logger, listen: '127.0.0.1:0' });
    // What `pnpm build` made and `credfwd launch --hosts` uploads: AGENT_BUNDLE_MISSING says to build first.
    t.context.program = defaultAgentProgram();
  });

  base.after.always(async (t) => {
    await t.context.coordinator?.close();
    await t.context.hosts?.stop();
    if (t.context.scratch) await rm(t.context.scratch, { recursive: true, force: true });
  });
}

function host(t: ExecutionContext<Context>, n: number): SshHost {
  return t.context.hosts.hosts[n - 1]!;
}

async function start(t: ExecutionContext<Context>, hosts: string[], options: Partial<SshBackendOptions> = {}): Promise<SshAgents> {
  const { coordinator } = t.context;
  const record = await coordinator.createCluster({ credentials: null });
  t.teardown(() => coordinator.closeCluster(record.id));
  return new SshBackend({
    hosts,
    ssh: { configFile: t.context.hosts.configFile, connectTimeoutSeconds: 5 },
    program: t.context.program,
    ...options,
  }).start({ clusterId: record.id, joinString: record.joinString, coordinatorAddress: coordinator.address, direct: false, logger: capturedLogger().logger });
}

async function refused(t: ExecutionContext<Context>, hosts: string[], code: ErrorCode): Promise<CredfwdError> {
  const error = await t.throwsAsync(start(t, hosts), { instanceOf: CredfwdError });
  t.is(error?.code, code, error?.message);
  return error!;
}

async function assertNothingStarted(t: ExecutionContext<Context>, good: SshHost): Promise<void> {
  t.deepEqual(await leftoverProcesses(t.context.hosts.hosts, 5_000), [], 'processes left on the hosts');
  t.false(existsSync(join(good.cacheDir, 'credfwd')), `the agent was uploaded to ${good.alias} although another host failed its checks`);
}

test(title('an unknown host key is refused with SSH_HOST_KEY_UNKNOWN naming the host, and nothing starts on the other hosts'), async (t) => {
  const error = await refused(t, [host(t, 1).alias, host(t, 2).alias], 'SSH_HOST_KEY_UNKNOWN');
  t.regex(error.message, /\bh2\b/);
  t.regex(error.hint, /ssh h2 true/);
  await assertNothingStarted(t, host(t, 1));
});

test(title('a changed host key is refused with SSH_HOST_KEY_UNKNOWN too'), async (t) => {
  const error = await refused(t, [host(t, 6).alias], 'SSH_HOST_KEY_UNKNOWN');
  t.regex(error.message, /^the host key of h6 differs from the one known_hosts holds/);
  t.regex(error.hint, /ssh-keygen -R/);
});

test(title('the user\'s own ssh options pass through: only they can turn host key checking off'), async (t) => {
  const agents = await start(t, [host(t, 2).alias], { ssh: { configFile: t.context.hosts.configFile, options: ['StrictHostKeyChecking=no', 'UserKnownHostsFile=/dev/null'] } });
  t.teardown(() => agents.stop());
  t.deepEqual(agents.workers.map((w) => w.host), ['h2']);
  await agents.stop();
  t.deepEqual(await leftoverProcesses(t.context.hosts.hosts, 10_000), [], 'processes left on the hosts');
});

test(title('a host without node gives REMOTE_NODE_MISSING naming the host'), async (t) => {
  const error = await refused(t, [host(t, 1).alias, host(t, 3).alias], 'REMOTE_NODE_MISSING');
  t.regex(error.message, /^h3 has no node/);
  t.regex(error.hint, /Node\.js 20 or later on h3/);
  await assertNothingStarted(t, host(t, 1));
});

test(title('a host whose node is older than 20 gives REMOTE_NODE_MISSING naming the version found'), async (t) => {
  const error = await refused(t, [host(t, 4).alias], 'REMOTE_NODE_MISSING');
  t.regex(error.message, /h4 has node v18\.19\.0 .*older than 20/);
});

test(title('a host that refuses the key gives SSH_AUTH_FAILED naming the host'), async (t) => {
  const error = await refused(t, [host(t, 5).alias], 'SSH_AUTH_FAILED');
  t.regex(error.message, /^h5 refused/);
  t.regex(error.hint, /ssh h5 true/);
});

test(title('a closed port and an unknown name give SSH_UNREACHABLE naming the host'), async (t) => {
  const closed = await refused(t, [`root@${host(t, 1).address}:2222`], 'SSH_UNREACHABLE');
  t.regex(closed.message, new RegExp(`cannot reach root@${host(t, 1).address.replaceAll('.', '\\.')}:2222`));
  const unknown = await refused(t, ['nosuchhost.invalid'], 'SSH_UNREACHABLE');
  t.regex(unknown.message, /nosuchhost\.invalid/);
});

test(title('several failing hosts are named in one error, each with its code, before anything starts'), async (t) => {
  const error = await refused(t, [host(t, 1).alias, host(t, 2).alias, host(t, 3).alias, host(t, 5).alias], 'SSH_HOST_KEY_UNKNOWN');
  t.regex(error.message, /^3 of 4 hosts cannot run agents/);
  t.regex(error.message, /h2: \[SSH_HOST_KEY_UNKNOWN\]/);
  t.regex(error.message, /h3: \[REMOTE_NODE_MISSING\]/);
  t.regex(error.message, /h5: \[SSH_AUTH_FAILED\]/);
  t.regex(error.hint, /--allow-partial/);
  await assertNothingStarted(t, host(t, 1));
});

test(title('allowPartial starts agents on the hosts that work and names the ones that did not'), async (t) => {
  const agents = await start(t, [host(t, 1).alias, host(t, 2).alias, host(t, 3).alias], { allowPartial: true });
  t.teardown(() => agents.stop());
  t.deepEqual(agents.workers.map((w) => w.host), ['h1']);
  t.deepEqual(agents.failedHosts.map((f) => [f.host, f.error.code]), [['h2', 'SSH_HOST_KEY_UNKNOWN'], ['h3', 'REMOTE_NODE_MISSING']]);
  const { coordinator } = t.context;
  const [worker] = agents.workers;
  const clusterId = worker!.agentId.replace(/-h1-w1$/, '');
  await within(new Promise<void>((resolve) => {
    const onReady = (_cluster: string, agentId: string): void => {
      if (agentId !== worker!.agentId) return;
      coordinator.hub.off('agent-ready', onReady);
      resolve();
    };
    coordinator.hub.on('agent-ready', onReady);
    if (coordinator.hub.readyAgents(clusterId).includes(worker!.agentId)) onReady(clusterId, worker!.agentId);
  }), 30_000, 'the agent on h1 never joined');
  await agents.stop();
  t.deepEqual(await leftoverProcesses(t.context.hosts.hosts, 10_000), [], 'processes left on the hosts');
});

// Needs neither root nor sshd: refused before any ssh runs.
anyTest('a host name that ssh would read as an option is refused with CONFIG_INVALID', (t) => {
  for (const name of ['-oProxyCommand=touch /tmp/pwned', 'user@-oProxyCommand=x', 'a b', '']) {
    const error = t.throws(() => new SshBackend({ hosts: [name], program: { file: '/dev/null', nodeArgs: [] } }), { instanceOf: CredfwdError });
    t.is(error?.code, 'CONFIG_INVALID', name);
  }
});
