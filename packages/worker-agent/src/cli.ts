import { CredfwdError, createLogger, parseDuration, parseJoinString } from '@credfwd/shared';
import { resolveAgentId } from './agent-id.ts';
import { parseCommandLine, type JoinFlags } from './command-line.ts';
import { containerEnv } from './container-env.ts';
import { fetchProcessCredentials } from './credential-process.ts';
import { stdinBackoff, watchAgentStdin } from './agent-stdin.ts';
import { reportAgentError } from './report-error.ts';
import { startAgent } from './start-agent.ts';
import { takeJoinString } from './take-join-string.ts';

/** Runs `credfwd-agent` with the given arguments and returns the exit status. */
async function main(args: string[]): Promise<number> {
  const debug = args.includes('--debug');
  try {
    // Checked before parsing: a parser's error would echo an unknown argument, token and all.
    if (args.some((arg) => /credfwd:\/\//i.test(arg))) {
      throw new CredfwdError(
        'USAGE',
        'the join string must not be passed on the command line, where every user of this machine can read it',
        'set CREDFWD_JOIN, or write the join string to a file readable only by you and pass --join-file FILE',
      );
    }
    const commandLine = parseCommandLine(args);
    if (commandLine.command === 'help') {
      process.stdout.write(commandLine.text);
      return 0;
    }
    if (commandLine.command === 'credentials') {
      // stdout carries the credentials alone, as credential_process requires; every failure goes to stderr.
      process.stdout.write(`${JSON.stringify(await fetchProcessCredentials(commandLine.flags, process.env))}\n`);
      return 0;
    }
    if (commandLine.command === 'container-env') {
      process.stdout.write(await containerEnv(commandLine.flags, process.env));
      return 0;
    }
    return await join(commandLine.flags);
  } catch (err) {
    return reportAgentError(err, debug);
  }
}

async function join(flags: JoinFlags): Promise<number> {
  const giveUpAfterMs = parseDuration(flags.giveUpAfter, '--give-up-after') * 1000;
  if (giveUpAfterMs === 0) throw new CredfwdError('USAGE', '--give-up-after must be at least 1s', 'for example --give-up-after 10m');
  if (flags.stdin && flags.joinFile !== undefined) throw new CredfwdError('USAGE', '--stdin and --join-file exclude each other', 'pass one of them');
  if (flags.outliveStdin && !flags.stdin) throw new CredfwdError('USAGE', '--outlive-stdin applies to --stdin only', 'pass --stdin --outlive-stdin, as the SSH launcher does');
  const joinInfo = parseJoinString(await takeJoinString({ joinFile: flags.joinFile, stdin: flags.stdin ? process.stdin : undefined }, process.env));
  const agentId = resolveAgentId(flags.agentId, process.env);
  const logger = createLogger({ name: 'credfwd-agent', level: flags.debug ? (process.env.CREDFWD_LOG_LEVEL ?? 'debug') : undefined });
  logger.info({ agentId, clusterId: joinInfo.clusterId, addresses: joinInfo.addresses }, 'joining cluster');
  const backoff = stdinBackoff(flags);
  const agent = startAgent({ join: joinInfo, agentId, logger, giveUpAfterMs, imdsV1: flags.imdsV1, ...(flags.endpointListen ? { endpointListen: flags.endpointListen } : {}), ...(backoff ? { backoff } : {}) });
  const lifeline = watchAgentStdin(flags, () => void agent.close(), logger);
  const stop = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'stopping on signal');
    void agent.close();
  };
  // Handled on every delivery, not once: a second signal during the stop must not kill the agent by
  // default and orphan workloads, which run in process groups of their own. SIGHUP is what closing a
  // terminal sends the whole foreground group.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, stop);
  try {
    const end = await agent.done;
    logger.info({ reason: end.reason }, end.reason === 'revoked' ? 'cluster revoked; agent exiting' : 'agent stopped');
    return 0;
  } finally {
    lifeline?.close();
  }
}

// A launcher that died leaves the agent's stderr a pipe without a reader: its log lines are lost,
// but an EPIPE must not crash the agent before it has stopped its tasks.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
const status = await main(process.argv.slice(2));
process.exit(status);
