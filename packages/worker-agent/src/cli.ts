import { Command, CommanderError } from 'commander';
import { CredfwdError, createLogger, parseDuration, parseJoinString } from '@credfwd/shared';
import { resolveAgentId } from './agent-id.ts';
import { LauncherLifeline } from './launcher-lifeline.ts';
import { reportError } from './report-error.ts';
import { startAgent } from './start-agent.ts';
import { takeJoinString } from './take-join-string.ts';

interface JoinFlags {
  joinFile?: string;
  stdin?: boolean;
  agentId?: string;
  giveUpAfter?: string;
  debug?: boolean;
}

/** Runs `credfwd-agent` with the given arguments and returns the exit status. */
async function main(args: string[]): Promise<number> {
  const debug = args.includes('--debug');
  try {
    // Checked before parsing: commander would echo an unknown argument, token and all.
    if (args.some((arg) => /credfwd:\/\//i.test(arg))) {
      throw new CredfwdError(
        'USAGE',
        'the join string must not be passed on the command line, where every user of this machine can read it',
        'set CREDFWD_JOIN, or write the join string to a file readable only by you and pass --join-file FILE',
      );
    }
    let status = 0;
    const program = new Command('credfwd-agent')
      .description('Join a credfwd cluster and run its tasks with the launcher\'s forwarded AWS credentials')
      .exitOverride()
      // Errors are printed by reportError, in the error[CODE] form.
      .configureOutput({ outputError: () => {} });
    program
      .command('join')
      .description('connect to the cluster named by the join string in CREDFWD_JOIN, --join-file or --stdin')
      .option('--join-file <file>', 'read the join string from this file (mode 600: refused if other users may read or write it) instead of CREDFWD_JOIN')
      .option('--stdin', 'read the join string from the first line of stdin, and stop, ending every task, when stdin closes: for launchers, which keep the pipe open while the agent should live')
      .option('--agent-id <id>', 'this worker\'s id (default: CREDFWD_AGENT_ID, else host name and a random suffix)')
      .option('--give-up-after <duration>', 'exit, stopping every task, after this long without a coordinator, whatever credentials are still held', '10m')
      .option('--debug', 'log at debug level and print stack traces on errors')
      .action(async (flags: JoinFlags) => {
        status = await join(flags);
      });
    await program.parseAsync(args, { from: 'user' });
    return status;
  } catch (err) {
    // --help: commander has printed the help and wants a clean exit.
    if (err instanceof CommanderError && err.exitCode === 0) return 0;
    return reportError(err instanceof CommanderError ? usageError(err) : err, debug);
  }
}

async function join(flags: JoinFlags): Promise<number> {
  const giveUpAfterMs = parseDuration(flags.giveUpAfter ?? '10m', '--give-up-after') * 1000;
  if (giveUpAfterMs === 0) throw new CredfwdError('USAGE', '--give-up-after must be at least 1s', 'for example --give-up-after 10m');
  if (flags.stdin && flags.joinFile !== undefined) throw new CredfwdError('USAGE', '--stdin and --join-file exclude each other', 'pass one of them');
  const joinInfo = parseJoinString(await takeJoinString({ joinFile: flags.joinFile, stdin: flags.stdin ? process.stdin : undefined }, process.env));
  const agentId = resolveAgentId(flags.agentId, process.env);
  const logger = createLogger({ name: 'credfwd-agent', level: flags.debug ? (process.env.CREDFWD_LOG_LEVEL ?? 'debug') : undefined });
  logger.info({ agentId, clusterId: joinInfo.clusterId, addresses: joinInfo.addresses }, 'joining cluster');
  const agent = startAgent({ join: joinInfo, agentId, logger, giveUpAfterMs });
  const lifeline = flags.stdin
    ? new LauncherLifeline({
      input: process.stdin,
      onLost: () => {
        logger.warn('stdin closed: the launcher is gone; stopping tasks and exiting');
        void agent.close();
      },
    })
    : undefined;
  lifeline?.start();
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

function usageError(err: CommanderError): CredfwdError {
  const message = err.code === 'commander.help' ? 'no command given' : err.message.replace(/^error: /, '');
  return new CredfwdError('USAGE', message, 'run credfwd-agent join --help');
}

// A launcher that died leaves the agent's stderr a pipe without a reader: its log lines are lost,
// but an EPIPE must not crash the agent before it has stopped its tasks.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
const status = await main(process.argv.slice(2));
process.exit(status);
