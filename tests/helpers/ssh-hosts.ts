import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

// Process inspection lives beside this file; re-exported so tests import hosts and their processes from one place.
export { hostProcesses, leftoverProcesses, localSshProcesses, pollUntil, processTexts, type HostProcess } from './ssh-host-processes.ts';

/** One test host: a network namespace with its own sshd, reached over a veth pair. */
export interface SshHost {
  /** The host's alias in {@link SshHosts.configFile}. */
  alias: string;
  /** The network namespace's name, for `ip netns pids`/`exec`. */
  namespace: string;
  /** sshd's address inside the namespace. */
  address: string;
  /** The test side of the veth pair: how the host reaches this machine. */
  gateway: string;
  /** The remote user's cache directory (sshd sets XDG_CACHE_HOME for every session). */
  cacheDir: string;
  /** The sshd listener's pid. */
  sshdPid: number;
  /** Every process in the namespace but the sshd listener: sessions, agents, workloads. */
  processes(): Promise<number[]>;
  /** Takes the test side of the host's veth down or up: the network to the host cut, or back. */
  setLink(up: boolean): Promise<void>;
}

export interface SshHostSpec {
  /** Whether the host's key is in the client's known_hosts (default true), or another key is, as after a key change. */
  knownHost?: boolean | 'changed';
  /** Whether the host accepts the test's key (default true). */
  authorized?: boolean;
  /** PATH of every session on the host, instead of sshd's default (e.g. one without node). */
  path?: string;
}

/** Hosts of one test, with the ssh_config that reaches them. */
export interface SshHosts {
  hosts: SshHost[];
  /** An ssh_config (`ssh -F`) with one alias per host: User root, the test's key and known_hosts, BatchMode. */
  configFile: string;
  /**
   * An address of this machine that every host can reach (the first host's
   * veth end here, routed from the others): where test services such as
   * moto listen. The coordinator stays on 127.0.0.1, which no host reaches.
   */
  serviceAddress: string;
  /** Kills every sshd and process left in the namespaces, deletes namespaces and links and the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** Why the SSH host tests cannot run here, or undefined when they can. */
export function sshHostsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'network namespaces need root (CI runs as root)';
  if (!existsSync('/usr/sbin/sshd')) return 'openssh-server is not installed (/usr/sbin/sshd; .ci/run installs it)';
  return undefined;
}

/** /30 blocks in 10.77.0.0/16; block 0 is left out so no host gets 10.77.0.x. */
const BLOCKS = 16_384;
const SSHD_READY_MS = 10_000;

/**
 * Starts one host per spec. Each claims a random /30 by creating its
 * namespace `cfwd-N` (atomic: a second `ip netns add` of the same name fails)
 * and checking no address of the block is in use, so parallel test files
 * never collide and need no lock. Tears down whatever started if any step fails.
 */
export async function startSshHosts(specs: SshHostSpec[]): Promise<SshHosts> {
  const dir = await mkdtemp(join(tmpdir(), 'credfwd-ssh-'));
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'credfwd-test', '-f', join(dir, 'userkey')]);
  await writeFile(join(dir, 'authorized_keys'), await readFile(join(dir, 'userkey.pub')));
  await mkdir('/run/sshd', { recursive: true });
  const started: Started[] = [];
  const stop = once(async () => {
    process.off('exit', lastResort);
    await Promise.all(started.map((host) => stopHost(host)));
    await rm(dir, { recursive: true, force: true });
  });
  // A test worker that dies without its teardown must not leave sshd listening or namespaces behind.
  const lastResort = (): void => {
    for (const host of started) {
      host.child.kill('SIGKILL');
      try { execFileSync('ip', ['netns', 'del', host.namespace], { stdio: 'ignore' }); } catch { /* already gone */ }
    }
  };
  process.once('exit', lastResort);
  try {
    for (const [i, spec] of specs.entries()) started.push(await startHost(dir, `h${i + 1}`, spec));
    const serviceAddress = started[0]!.gateway;
    for (const host of started.slice(1)) {
      await run('ip', ['netns', 'exec', host.namespace, 'ip', 'route', 'add', `${serviceAddress}/32`, 'via', host.gateway, 'dev', 'e0']);
    }
    const knownHosts = started.filter((h) => h.spec.knownHost !== false).map((h) => `${h.address} ${h.spec.knownHost === 'changed' ? h.otherKey : h.hostKey}\n`);
    await writeFile(join(dir, 'known_hosts'), knownHosts.join(''));
    const configFile = join(dir, 'ssh_config');
    await writeFile(configFile, started.map((h) => [
      `Host ${h.alias}`,
      `  HostName ${h.address}`,
      '  User root',
      `  IdentityFile ${join(dir, 'userkey')}`,
      '  IdentitiesOnly yes',
      '  IdentityAgent none',
      `  UserKnownHostsFile ${join(dir, 'known_hosts')}`,
      '  GlobalKnownHostsFile /dev/null',
      '  UpdateHostKeys no',
      '  BatchMode yes',
      '',
    ].join('\n')).join(''));
    return { hosts: started.map(publicView), configFile, serviceAddress, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

interface Started {
  alias: string;
  namespace: string;
  link: string;
  address: string;
  gateway: string;
  cacheDir: string;
  hostKey: string;
  /** A key the host does not have, for known_hosts after a "key change". */
  otherKey: string;
  spec: SshHostSpec;
  child: ChildProcess;
  exited: Promise<void>;
}

function publicView(host: Started): SshHost {
  const sshdPid = host.child.pid!;
  return {
    alias: host.alias,
    namespace: host.namespace,
    address: host.address,
    gateway: host.gateway,
    cacheDir: host.cacheDir,
    sshdPid,
    processes: async () => (await namespacePids(host.namespace)).filter((pid) => pid !== sshdPid),
    setLink: async (up) => { await run('ip', ['link', 'set', host.link, up ? 'up' : 'down']); },
  };
}

async function namespacePids(namespace: string): Promise<number[]> {
  const { stdout } = await run('ip', ['netns', 'pids', namespace]);
  return stdout.split('\n').filter(Boolean).map(Number);
}

async function claimBlock(): Promise<{ index: number; namespace: string }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const index = randomInt(1, BLOCKS);
    const namespace = `cfwd-${index}`;
    try {
      await run('ip', ['netns', 'add', namespace]);
    } catch {
      continue;
    }
    const { stdout } = await run('ip', ['-o', '-4', 'addr', 'show', 'to', `${blockAddress(index, 0)}/30`]);
    if (stdout.trim() === '') return { index, namespace };
    await run('ip', ['netns', 'del', namespace]);
  }
  throw new Error('no free /30 in 10.77.0.0/16 after 20 tries: stale cfwd-* namespaces? (`ip netns list`)');
}

function blockAddress(index: number, offset: number): string {
  return `10.77.${index >> 6}.${((index & 63) << 2) + offset}`;
}

async function startHost(dir: string, alias: string, spec: SshHostSpec): Promise<Started> {
  const { index, namespace } = await claimBlock();
  const link = `cfwd${index}`;
  const hostDir = join(dir, alias);
  const gateway = blockAddress(index, 1);
  const address = blockAddress(index, 2);
  const cacheDir = join(hostDir, 'cache');
  const netns = (...args: string[]): Promise<unknown> => run('ip', ['netns', 'exec', namespace, ...args]);
  let child: ChildProcess | undefined;
  try {
    await mkdir(hostDir);
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', alias, '-f', join(hostDir, 'hostkey')]);
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', alias, '-f', join(hostDir, 'otherkey')]);
    await run('ip', ['link', 'add', link, 'type', 'veth', 'peer', 'name', 'e0', 'netns', namespace]);
    await run('ip', ['addr', 'add', `${gateway}/30`, 'dev', link]);
    await run('ip', ['link', 'set', link, 'up']);
    await netns('ip', 'addr', 'add', `${address}/30`, 'dev', 'e0');
    await netns('ip', 'link', 'set', 'e0', 'up');
    await netns('ip', 'link', 'set', 'lo', 'up');
    // sshd has bash source the user's ~/.bashrc; root's on these machines runs `pyenv rehash`, which takes a lock that
    // sessions logging in at once (24 in a test) wait for, up to 60 s each: a wait of the machine's, not of credfwd's.
    const setEnv = [`XDG_CACHE_HOME=${cacheDir}`, 'PYENV_REHASH_TIMEOUT=0', ...(spec.path === undefined ? [] : [`PATH=${spec.path}`])];
    await writeFile(join(hostDir, 'sshd_config'), [
      'Port 22',
      `ListenAddress ${address}`,
      `HostKey ${join(hostDir, 'hostkey')}`,
      `PidFile ${join(hostDir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${spec.authorized === false ? '/dev/null' : join(dir, 'authorized_keys')}`,
      'StrictModes no',
      'UsePAM no',
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'AllowTcpForwarding yes',
      `SetEnv ${setEnv.join(' ')}`,
      '',
    ].join('\n'));
    // -D keeps sshd our child, so its pid is known at once and its exit observable.
    child = spawn('ip', ['netns', 'exec', namespace, '/usr/sbin/sshd', '-D', '-f', join(hostDir, 'sshd_config'), '-E', join(hostDir, 'sshd.log')], { stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => child!.once('exit', () => resolve()));
    await sshdReady(address, exited, join(hostDir, 'sshd.log'));
    return { alias, namespace, link, address, gateway, cacheDir, hostKey: await publicKey(join(hostDir, 'hostkey.pub')), otherKey: await publicKey(join(hostDir, 'otherkey.pub')), spec, child, exited };
  } catch (err) {
    child?.kill('SIGKILL');
    await run('ip', ['netns', 'del', namespace]).catch(() => {});
    await run('ip', ['link', 'del', link]).catch(() => {});
    throw err;
  }
}

/** `TYPE DATA` of a public key file, without its comment. */
async function publicKey(file: string): Promise<string> {
  const [type, data] = (await readFile(file, 'utf8')).split(' ');
  return `${type} ${data}`;
}

/** Polls a TCP connect to sshd until it accepts, sshd exits, or the deadline passes. */
async function sshdReady(address: string, exited: Promise<void>, log: string): Promise<void> {
  const deadline = Date.now() + SSHD_READY_MS;
  let gone = false;
  void exited.then(() => { gone = true; });
  while (!(await accepts(address, 22))) {
    if (gone) throw new Error(`sshd on ${address} exited during start-up: ${await readFile(log, 'utf8').catch(() => '(no log)')}`);
    if (Date.now() > deadline) throw new Error(`sshd on ${address} did not accept connections within ${SSHD_READY_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 1_000 });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => { socket.destroy(); resolve(false); });
  });
}

async function stopHost(host: Started): Promise<void> {
  host.child.kill('SIGTERM');
  const escalate = setTimeout(() => host.child.kill('SIGKILL'), 3_000);
  await host.exited;
  clearTimeout(escalate);
  // Whatever a failed test left running in the host goes with it, so namespaces can be deleted.
  for (const pid of await namespacePids(host.namespace).catch(() => [])) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  await run('ip', ['netns', 'del', host.namespace]).catch(() => {});
  // Deleting the namespace destroys the veth pair; this is for a pair that outlived it.
  await run('ip', ['link', 'del', host.link]).catch(() => {});
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= fn());
}
