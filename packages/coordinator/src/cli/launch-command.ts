import { createLogger, type Logger } from '@credfwd/shared';
import { launchRemoteCluster } from '../client/index.ts';
import { openAuditLog, type AuditLog, type ClusterHandle, type OutputListener, type WorkerResult } from '../core/index.ts';
import { launchCluster } from '../embedded/index.ts';
import { reportCliError } from './cli-errors.ts';
import { coordinatorAccess } from './coordinator-access.ts';
import { exitStatusOf, watchLaunchInterrupts, type LaunchInterrupt, type LaunchInterrupts } from './launch-interrupts.ts';
import type { LaunchProgress } from '../backends/index.ts';
import { checkLaunchFlags, clusterOptionsFrom, leaseSecondsFrom, onRefreshOption, placementFrom, type LaunchFlags } from './launch-flags.ts';
import { createLinePrinter, printOutputs, printResults } from './output-printer.ts';

/** A cluster that is up, as `launch` uses it whichever deployment holds it. */
interface UpCluster {
  handle: ClusterHandle<unknown>;
  /** Where it is up, for the banner: nothing embedded, ` on URL` on a service. */
  where: string;
  /** The shell command that joins more workers: a secret, it holds the join token. */
  joinCommand: string;
  /** Runs argv; output streams through `onOutput` only where the cluster can stream it (embedded: a service answers at the end). */
  run(argv: string[], onOutput?: OutputListener): Promise<WorkerResult[]>;
  streams: boolean;
  /** Where the workers are, for the banner: `local workers`, `workers on 3 hosts`. */
  placed: string;
}

function placedOn(flags: LaunchFlags, hosts: number): string {
  return flags.hosts !== undefined || flags.hostsFile !== undefined ? `workers on ${hosts} hosts` : 'local workers';
}

/** Progress on a terminal: workers ready, and on SSH hosts the hosts whose workers all are. */
function progressFor(flags: LaunchFlags): (ready: number, total: number, progress: LaunchProgress) => void {
  const onHosts = flags.hosts !== undefined || flags.hostsFile !== undefined;
  return (ready, total, { hosts }) => {
    if (!process.stderr.isTTY || total === 0) return;
    const line = onHosts ? `host ${hosts.ready}/${hosts.total} ready (${ready}/${total} workers)` : `${ready}/${total} workers ready`;
    process.stderr.write(`\r${line}${ready === total ? '\n' : ''}`);
  };
}

/** What both launches take from the flags: where workers go, the cluster, and how start-up is shown and interrupted. */
function commonOptions(flags: LaunchFlags, logger: Logger, interrupts: LaunchInterrupts) {
  return {
    ...placementFrom(flags),
    ...clusterOptionsFrom(flags),
    logger,
    echoAgentLogs: logger.isLevelEnabled('info'),
    onProgress: progressFor(flags),
    signal: interrupts.signal,
  };
}

/** `credfwd launch --coordinator`: the cluster lives on a distributed service; workers start here or on SSH hosts, as in embedded mode. */
async function launchOnService(flags: LaunchFlags, coordinator: string, logger: Logger, leaseSeconds: number | null | undefined, interrupts: LaunchInterrupts): Promise<UpCluster> {
  const { pin, adminToken } = coordinatorAccess(coordinator, flags.coordinatorPin);
  const onRefresh = onRefreshOption(flags.onRefresh);
  const cluster = await launchRemoteCluster({
    coordinatorUrl: coordinator,
    coordinatorPin: pin,
    adminToken,
    ...commonOptions(flags, logger, interrupts),
    ...(leaseSeconds !== undefined ? { leaseSeconds } : {}),
  });
  return {
    handle: cluster,
    where: ` on ${coordinator}`,
    joinCommand: `CREDFWD_JOIN='${cluster.joinString}' credfwd-agent join`,
    run: (argv) => cluster.run(argv, onRefresh === 'none' ? {} : { onRefresh }),
    streams: false,
    placed: placedOn(flags, cluster.hosts.length),
  };
}

/** `credfwd launch` on the embedded coordinator. */
async function launchEmbedded(flags: LaunchFlags, logger: Logger, interrupts: LaunchInterrupts, audit: AuditLog | undefined): Promise<UpCluster> {
  const onRefresh = onRefreshOption(flags.onRefresh);
  const cluster = await launchCluster({
    ...commonOptions(flags, logger, interrupts),
    ...(audit ? { audit } : {}),
    ...(flags.listen ? { listen: flags.listen } : {}),
    ...(flags.publicAddress ? { publicAddress: flags.publicAddress } : {}),
    ...(flags.direct ? { direct: true } : {}),
  });
  return {
    handle: cluster,
    where: '',
    joinCommand: cluster.joinCommand,
    run: (argv, onOutput) => cluster.run(argv, { onRefresh, ...(onOutput ? { onOutput } : {}) }),
    streams: true,
    placed: placedOn(flags, cluster.hosts.length),
  };
}

/** Serves the cluster until interrupted, or runs the command on it and prints the results; closes it either way. */
async function serveOrRun(up: UpCluster, command: string[], flags: LaunchFlags, interrupts: LaunchInterrupts): Promise<number> {
  const cluster = up.handle;
  try {
    if (command.length === 0) {
      process.stdout.write(`cluster ${cluster.id} is up${up.where} with ${cluster.workers.length} ${up.placed}`);
      process.stdout.write(cluster.expiresAt ? `; credentials expire ${cluster.expiresAt.toISOString()}\n` : '; no credentials forwarded\n');
      process.stdout.write(`join more workers with (keep it secret, it holds the join token):\n  ${up.joinCommand}\n`);
      process.stdout.write('serving until Ctrl-C\n');
      return servedUntil(await interrupts.interrupted);
    }
    const printer = up.streams && !flags.json ? createLinePrinter() : undefined;
    // Once interrupted nothing more is printed: the reader may be gone, and what follows is only the clean-up's noise.
    // The printer's promise, while our own reader is slow, holds the agents back: the workloads slow down instead of the output piling up here.
    const onOutput: OutputListener | undefined = printer && ((worker, stream, chunk) => (interrupts.signal.aborted ? undefined : printer.write(worker, stream, chunk)));
    const results = await Promise.race([up.run(command, onOutput), interrupts.interrupted]);
    if (printer && !interrupts.signal.aborted) printer.flush();
    if (typeof results === 'string') return exitStatusOf(results);
    if (!up.streams && !flags.json) printOutputs(results);
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
export async function launch(command: string[], flags: LaunchFlags): Promise<number> {
  checkLaunchFlags(command, flags);
  const logger = createLogger({ name: 'credfwd', level: process.env.CREDFWD_LOG_LEVEL ?? (flags.debug ? 'debug' : flags.verbose ? 'info' : 'warn') });
  const leaseSeconds = leaseSecondsFrom(flags);
  const audit = flags.auditLog !== undefined ? openAuditLog(flags.auditLog) : undefined;
  const interrupts = watchLaunchInterrupts();
  try {
    const up = flags.coordinator !== undefined
      ? await launchOnService(flags, flags.coordinator, logger, leaseSeconds, interrupts)
      : await launchEmbedded(flags, logger, interrupts, audit);
    const status = await serveOrRun(up, command, flags, interrupts);
    // A reader that left while the results were printed means the output did not all arrive.
    return interrupts.received === 'SIGPIPE' ? exitStatusOf('SIGPIPE') : status;
  } catch (err) {
    if (interrupts.received === undefined) throw err;
    // Nothing is written where the reader is gone; otherwise say that start-up stopped, and why.
    if (interrupts.received !== 'SIGPIPE') reportCliError(err, Boolean(flags.debug));
    return exitStatusOf(interrupts.received);
  } finally {
    interrupts.close();
    audit?.close();
  }
}
