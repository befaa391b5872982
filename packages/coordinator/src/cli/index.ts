import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { CredfwdError, createLogger, onRefreshSchema, parseDuration, type OnRefresh } from '@credfwd/shared';
import { DEFAULT_LEASE_SECONDS, MAX_LEASE_SECONDS, MIN_LEASE_SECONDS } from './admin-api.ts';
import { reportError } from './cli-errors.ts';
import type { ClusterOptions } from './coordinator.ts';
import type { CredentialsOption } from './credentials-spec.ts';
import { readEnvFile } from './env-file.ts';
import { launchCluster, type Cluster } from './launch-cluster.ts';
import { exitStatusOf, watchLaunchInterrupts, type LaunchInterrupt, type LaunchInterrupts } from './launch-interrupts.ts';
import { launchRemoteCluster } from './remote-launch.ts';
import { loadReplicaSecrets } from './replica-secrets.ts';
import { createLinePrinter, printOutputs, printResults } from './output-printer.ts';
import { fromPem } from './tls-identity.ts';

interface LaunchFlags {
  workers: number;
  credentials: string;
  env: string[];
  envFile?: string;
  region?: string;
  duration?: string;
  delivery?: string;
  refreshInterval?: string;
  onRefresh: string;
  json?: boolean;
  listen?: string;
  publicAddress?: string;
  coordinator?: string;
  coordinatorPin?: string;
  lease?: string;
  keep?: boolean;
  verbose?: boolean;
  debug?: boolean;
}

interface ServeFlags {
  listen: string;
  publicUrl?: string;
  redis?: string;
  redisPrefix: string;
  stateKeyFile?: string;
  adminTokenFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  verbose?: boolean;
  debug?: boolean;
}

function usage(message: string, hint: string): CredfwdError {
  return new CredfwdError('USAGE', message, hint);
}

function parseWorkers(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 0 || n > 1000) throw new InvalidArgumentError('expected a whole number from 0 to 1000');
  return n;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function credentialsOption(value: string): CredentialsOption {
  if (value === 'forward' || value === 'none') return value;
  if (value.startsWith('role:')) return value as `role:${string}`;
  throw usage(`--credentials ${JSON.stringify(value.slice(0, 100))} is not a mode`, 'use forward, none or role:<role ARN>');
}

function deliveryOption(value: string): 'env' | 'endpoint' {
  if (value === 'env' || value === 'endpoint') return value;
  throw usage(`--delivery ${JSON.stringify(value.slice(0, 40))} is not a delivery mode`, 'use env (AWS_* variables) or endpoint (a loopback credentials endpoint SDKs poll)');
}

function onRefreshOption(value: string): OnRefresh {
  const parsed = onRefreshSchema.safeParse(value);
  if (!parsed.success) throw usage(`--on-refresh ${JSON.stringify(value.slice(0, 40))} is not none, restart or signal:NAME`, 'for example --on-refresh restart or --on-refresh signal:SIGHUP');
  return parsed.data;
}

function environFrom(flags: LaunchFlags): Record<string, string> {
  const environ = flags.envFile ? readEnvFile(flags.envFile) : {};
  for (const pair of flags.env) {
    const eq = pair.indexOf('=');
    // The value is never echoed: it may be a secret.
    if (eq <= 0) throw usage(`--env ${JSON.stringify(pair.slice(0, Math.max(eq, 0)) || pair.slice(0, 40).split('=')[0])} is not NAME=VALUE`, 'write --env NAME=VALUE, or put variables in a file for --env-file');
    environ[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return environ;
}

/** Flags that take a value for which an empty string means nothing sensible. */
const NON_EMPTY_FLAGS = {
  credentials: '--credentials', envFile: '--env-file', region: '--region', duration: '--duration', delivery: '--delivery',
  refreshInterval: '--refresh-interval', onRefresh: '--on-refresh', listen: '--listen', publicAddress: '--public-address',
  coordinator: '--coordinator', coordinatorPin: '--coordinator-pin',
} as const satisfies Partial<Record<keyof LaunchFlags, string>>;

/** `https://HOST:PORT`, as the admin client dials it; anything else is a usage error before anything starts. */
function checkCoordinatorUrl(url: string): void {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (parsed?.protocol !== 'https:' || !parsed.port || (parsed.pathname !== '/' && parsed.pathname !== '')) {
    throw usage(`--coordinator ${JSON.stringify(url.slice(0, 100))} is not https://HOST:PORT`, 'for example --coordinator https://credfwd.internal:7443, as credfwd serve printed it');
  }
}

/** Checks what the flags say of each other, before anything starts (and so before any STS call). */
function checkLaunchFlags(command: string[], flags: LaunchFlags): void {
  for (const [key, flag] of Object.entries(NON_EMPTY_FLAGS)) {
    if (flags[key as keyof typeof NON_EMPTY_FLAGS]?.trim() === '') throw usage(`${flag} is empty`, `give ${flag} a value, or leave it out for the default`);
  }
  if (flags.workers === 0 && command.length > 0) {
    throw usage('--workers 0 leaves no worker to run the command on', 'use --workers 1 or more, or launch without a command to serve agents that join from elsewhere');
  }
  if (flags.coordinator !== undefined) checkCoordinatorUrl(flags.coordinator);
}

/** The cluster options both launches take from the flags: embedded and through a service. */
function clusterOptionsFrom(flags: LaunchFlags): ClusterOptions {
  return {
    credentials: credentialsOption(flags.credentials),
    environ: environFrom(flags),
    ...(flags.region !== undefined ? { region: flags.region } : {}),
    ...(flags.duration !== undefined ? { durationSeconds: parseDuration(flags.duration, '--duration') } : {}),
    ...(flags.delivery !== undefined ? { delivery: deliveryOption(flags.delivery) } : {}),
    ...(flags.refreshInterval !== undefined ? { refreshIntervalSeconds: parseDuration(flags.refreshInterval, '--refresh-interval') } : {}),
  };
}

function progress(ready: number, total: number): void {
  if (!process.stderr.isTTY || total === 0) return;
  process.stderr.write(`\r${ready}/${total} workers ready${ready === total ? '\n' : ''}`);
}

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
}

/**
 * `--lease` in seconds, null for `--keep`, undefined for the service's
 * default; both only mean something for a cluster on a service.
 */
function leaseSecondsFrom(flags: LaunchFlags): number | null | undefined {
  if ((flags.lease !== undefined || flags.keep) && !flags.coordinator) throw usage('--lease and --keep apply to clusters on a service', 'add --coordinator https://HOST:PORT, or drop them: a local cluster always ends with its launcher');
  if (flags.lease !== undefined && flags.keep) throw usage('--lease and --keep contradict each other', '--keep means no lease: the cluster stays until deleted');
  if (flags.keep) return null;
  if (flags.lease === undefined) return undefined;
  const seconds = parseDuration(flags.lease, '--lease');
  if (seconds < MIN_LEASE_SECONDS || seconds > MAX_LEASE_SECONDS) throw usage(`--lease ${JSON.stringify(flags.lease)} is out of range`, `give ${MIN_LEASE_SECONDS}s to ${MAX_LEASE_SECONDS / 86400}d; the launcher renews it every third of that`);
  return seconds;
}

/** `credfwd launch --coordinator`: the cluster lives on a distributed service; workers are local, as in embedded mode. */
async function launchOnService(command: string[], flags: LaunchFlags, coordinator: string, logger: ReturnType<typeof createLogger>, leaseSeconds: number | null | undefined, interrupts: LaunchInterrupts): Promise<number> {
  const pin = /^sha256:([0-9a-f]{64})$/.exec(flags.coordinatorPin ?? process.env.CREDFWD_COORDINATOR_PIN ?? '')?.[1];
  if (!pin) throw usage('--coordinator needs the service\'s certificate pin', 'pass --coordinator-pin sha256:… or set CREDFWD_COORDINATOR_PIN, as credfwd serve printed it');
  const adminToken = process.env.CREDFWD_ADMIN_TOKEN;
  if (!adminToken) throw usage('--coordinator needs the admin token', 'set CREDFWD_ADMIN_TOKEN; it is never taken on the command line');
  const onRefresh = onRefreshOption(flags.onRefresh);
  const cluster = await launchRemoteCluster({
    coordinatorUrl: coordinator,
    coordinatorPin: pin,
    adminToken,
    workers: flags.workers,
    ...clusterOptionsFrom(flags),
    ...(leaseSeconds !== undefined ? { leaseSeconds } : {}),
    logger,
    echoAgentLogs: logger.isLevelEnabled('info'),
    onProgress: progress,
    signal: interrupts.signal,
  });
  try {
    if (command.length === 0) {
      process.stdout.write(`cluster ${cluster.id} is up on ${coordinator} with ${cluster.workers.length} local workers`);
      process.stdout.write(cluster.expiresAt ? `; credentials expire ${cluster.expiresAt.toISOString()}\n` : '; no credentials forwarded\n');
      process.stdout.write(`join more workers with (keep it secret, it holds the join token):\n  CREDFWD_JOIN='${cluster.joinString}' credfwd-agent join\n`);
      process.stdout.write('serving until Ctrl-C\n');
      return servedUntil(await interrupts.interrupted);
    }
    const results = await Promise.race([
      cluster.run(command, onRefresh === 'none' ? {} : { onRefresh }),
      interrupts.interrupted,
    ]);
    if (typeof results === 'string') return exitStatusOf(results);
    if (!flags.json) printOutputs(results);
    printResults(results, Boolean(flags.json));
    return results.length > 0 && results.every((r) => r.exitCode === 0) ? 0 : 1;
  } finally {
    await cluster.close();
  }
}

/** `credfwd launch` on the embedded coordinator. */
async function launchEmbedded(command: string[], flags: LaunchFlags, logger: ReturnType<typeof createLogger>, interrupts: LaunchInterrupts): Promise<number> {
  const onRefresh = onRefreshOption(flags.onRefresh);
  const cluster: Cluster = await launchCluster({
    workers: flags.workers,
    ...clusterOptionsFrom(flags),
    ...(flags.listen ? { listen: flags.listen } : {}),
    ...(flags.publicAddress ? { publicAddress: flags.publicAddress } : {}),
    logger,
    echoAgentLogs: logger.isLevelEnabled('info'),
    onProgress: progress,
    signal: interrupts.signal,
  });
  try {
    if (command.length === 0) {
      process.stdout.write(`cluster ${cluster.id} is up with ${cluster.workers.length} local workers`);
      process.stdout.write(cluster.expiresAt ? `; credentials expire ${cluster.expiresAt.toISOString()}\n` : '; no credentials forwarded\n');
      process.stdout.write(`join more workers with (keep it secret, it holds the join token):\n  ${cluster.joinCommand}\n`);
      process.stdout.write('serving until Ctrl-C\n');
      return servedUntil(await interrupts.interrupted);
    }
    const printer = createLinePrinter();
    // Once interrupted nothing more is printed: the reader may be gone, and what follows is only the clean-up's noise.
    const onOutput: typeof printer.write = (worker, stream, chunk) => { if (!interrupts.signal.aborted) printer.write(worker, stream, chunk); };
    const results = await Promise.race([
      cluster.run(command, { onRefresh, ...(flags.json ? {} : { onOutput }) }),
      interrupts.interrupted,
    ]);
    if (!interrupts.signal.aborted) printer.flush();
    if (typeof results === 'string') return exitStatusOf(results);
    printResults(results, Boolean(flags.json));
    return results.length > 0 && results.every((r) => r.exitCode === 0) ? 0 : 1;
  } finally {
    await cluster.close();
  }
}

/** A cluster served without a command ends as asked by Ctrl-C or SIGTERM (exit 0); a closed terminal or pipe is not success. */
function servedUntil(interrupt: LaunchInterrupt): number {
  return interrupt === 'SIGINT' || interrupt === 'SIGTERM' ? 0 : exitStatusOf(interrupt);
}

/**
 * `credfwd launch`: checks every input, then launches with SIGINT, SIGTERM,
 * SIGHUP and a closed stdout or stderr all aborting start-up or the running
 * command and closing the cluster; the exit status then is the shell's for
 * that signal (130, 143, 129, 141).
 */
async function launch(command: string[], flags: LaunchFlags): Promise<number> {
  checkLaunchFlags(command, flags);
  const logger = createLogger({ name: 'credfwd', level: process.env.CREDFWD_LOG_LEVEL ?? (flags.debug ? 'debug' : flags.verbose ? 'info' : 'warn') });
  const leaseSeconds = leaseSecondsFrom(flags);
  const interrupts = watchLaunchInterrupts();
  try {
    const status = flags.coordinator !== undefined
      ? await launchOnService(command, flags, flags.coordinator, logger, leaseSeconds, interrupts)
      : await launchEmbedded(command, flags, logger, interrupts);
    // A reader that left while the results were printed means the output did not all arrive.
    return interrupts.received === 'SIGPIPE' ? exitStatusOf('SIGPIPE') : status;
  } catch (err) {
    if (interrupts.received === undefined) throw err;
    // Nothing is written where the reader is gone; otherwise say that start-up stopped, and why.
    if (interrupts.received !== 'SIGPIPE') reportError(err, Boolean(flags.debug));
    return exitStatusOf(interrupts.received);
  } finally {
    interrupts.close();
  }
}

/** `wss://HOST:PORT` (or `https://`, or bare `HOST:PORT`) as the `HOST:PORT` agents dial. */
function publicAddressOf(url: string): string {
  const bare = /^[a-z]+:\/\//.test(url) ? url : `wss://${url}`;
  let parsed: URL;
  try {
    parsed = new URL(bare);
  } catch {
    throw usage(`--public-url ${JSON.stringify(url.slice(0, 100))} is not a URL`, 'for example wss://credfwd.internal:7443');
  }
  if (!['wss:', 'https:'].includes(parsed.protocol) || !parsed.port || (parsed.pathname !== '/' && parsed.pathname !== '')) {
    throw usage(`--public-url ${JSON.stringify(url.slice(0, 100))} is not wss://HOST:PORT`, 'for example wss://credfwd.internal:7443');
  }
  return `${parsed.hostname}:${parsed.port}`;
}

function readPem(file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (cause) {
    throw new CredfwdError('CONFIG_INVALID', `cannot read ${flag} ${JSON.stringify(file)}`, 'check the file exists and is readable by this user', { cause });
  }
}

async function serve(flags: ServeFlags): Promise<number> {
  const logger = createLogger({ name: 'credfwd-replica', level: process.env.CREDFWD_LOG_LEVEL ?? (flags.debug ? 'debug' : flags.verbose ? 'info' : 'warn') });
  const redisUrl = flags.redis ?? process.env.REDIS_URL;
  if (!redisUrl) throw usage('no Redis to share state through', 'pass --redis redis://HOST:PORT or set REDIS_URL; without Redis, use credfwd launch (embedded mode)');
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) throw usage('--tls-cert and --tls-key go together', 'pass both, or neither to share one made by the first replica');
  const secrets = loadReplicaSecrets({
    ...(flags.stateKeyFile ? { stateKeyFile: flags.stateKeyFile } : {}),
    ...(flags.adminTokenFile ? { adminTokenFile: flags.adminTokenFile } : {}),
  });
  const interrupted = untilSignal();
  // Loaded here so that the embedded `launch` never pays for BullMQ and ioredis.
  const { Replica } = await import('./replica.ts');
  const replica = await Replica.start({
    logger,
    listen: flags.listen,
    ...(flags.publicUrl ? { publicAddress: publicAddressOf(flags.publicUrl) } : {}),
    redisUrl,
    redisPrefix: flags.redisPrefix,
    secrets,
    ...(flags.tlsCert && flags.tlsKey ? { tls: fromPem(readPem(flags.tlsCert, '--tls-cert'), readPem(flags.tlsKey, '--tls-key')) } : {}),
  });
  process.stdout.write(`credfwd replica ${replica.replicaId} serving on https://${replica.address} (agents: wss://${replica.address}/v1/agent)\n`);
  process.stdout.write(`pin sha256:${replica.pin}\n`);
  await interrupted;
  await replica.close();
  return 0;
}

function program(): Command {
  const cli = new Command('credfwd')
    .description('Launch workers that act with your AWS identity, without copying your long-term keys')
    .version(packageVersion(), '-V, --version', 'print the version of credfwd')
    .exitOverride()
    .configureOutput({ writeErr: () => undefined });
  cli.command('launch')
    .description('launch a cluster of local workers; with `-- cmd …` run cmd on every worker and exit')
    .addOption(new Option('-w, --workers <n>', 'local workers to start').argParser(parseWorkers).default(1))
    .option('-c, --credentials <mode>', 'forward | none | role:<role ARN>', 'forward')
    .option('-e, --env <NAME=VALUE>', 'variable for every workload (repeatable)', collect, [])
    .option('--env-file <file>', 'file of NAME=VALUE lines for every workload')
    .option('--region <region>', 'AWS region for STS and workers')
    .option('--duration <duration>', 'credential lifetime, e.g. 15m, 1h, 12h')
    // No default here: with credentials none a delivery does not apply, and asking for one is an error.
    .option('--delivery <mode>', 'env (AWS_* variables) | endpoint (loopback credentials endpoint); default env')
    .option('--refresh-interval <duration>', 'refresh at least this often (default: at half life)')
    .option('--on-refresh <action>', 'none | restart | signal:NAME, for a long-running command', 'none')
    .option('--json', 'print one JSON object per worker')
    .option('--listen <host:port>', 'address agents connect to', '127.0.0.1:0')
    .option('--public-address <host:port>', 'address remote agents dial, if not the listen address')
    .option('--coordinator <url>', 'https://HOST:PORT of a distributed coordinator service (admin token in CREDFWD_ADMIN_TOKEN)')
    .option('--coordinator-pin <pin>', 'sha256:… of the service certificate (default: CREDFWD_COORDINATOR_PIN)')
    .option('--lease <duration>', `with --coordinator: the service deletes the cluster this long after the launcher stops renewing it (default ${DEFAULT_LEASE_SECONDS / 60}m)`)
    .option('--keep', 'with --coordinator: no lease; the cluster outlives the launcher until deleted (DELETE /v1/clusters/ID)')
    .option('-v, --verbose', 'log progress to stderr')
    .option('--debug', 'debug logs and stack traces')
    .argument('[command...]', 'command to run on every worker, after --')
    .action(async (command: string[], flags: LaunchFlags) => {
      process.exitCode = await launch(command, flags);
    });
  cli.command('serve')
    .description('run one replica of a distributed coordinator service sharing Redis (admin API, agents, /metrics, /healthz)')
    .option('--listen <host:port>', 'address to listen on', '127.0.0.1:7443')
    .option('--public-url <wss://host:port>', 'URL agents dial, if not the listen address')
    .option('--redis <url>', 'Redis URL (default: REDIS_URL)')
    .option('--redis-prefix <prefix>', 'prefix of every Redis key', 'credfwd')
    .option('--state-key-file <file>', 'file holding the state key (default: CREDFWD_STATE_KEY)')
    .option('--admin-token-file <file>', 'file holding the admin token (default: CREDFWD_ADMIN_TOKEN)')
    .option('--tls-cert <file>', 'PEM certificate for every replica (default: one made by the first replica, kept in Redis)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('-v, --verbose', 'log progress to stderr')
    .option('--debug', 'debug logs and stack traces')
    .action(async (flags: ServeFlags) => {
      process.exitCode = await serve(flags);
    });
  return cli;
}

/** The version in this package's package.json, from the source tree or a build beside it alike. */
function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  // As docker and kubectl do: asked for nothing, show what can be asked, on stdout, and succeed.
  if (argv.length === 0) {
    process.stdout.write(program().helpInformation());
    return 0;
  }
  try {
    await program().parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return reportError(usage(err.message.replace(/^error: /, ''), 'see credfwd launch --help'), debug);
    }
    return reportError(err, debug);
  }
}

process.exitCode = await main(process.argv.slice(2));
