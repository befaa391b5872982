import { parseArgs } from 'node:util';
import { CredfwdError } from '@credfwd/shared';

/** Options of `credfwd-agent join`. */
export interface JoinFlags {
  joinFile?: string;
  stdin?: boolean;
  /** With `stdin`: stdin carries the join string and `stop`, and its end is not the launcher's death (SSH). */
  outliveStdin?: boolean;
  agentId?: string;
  giveUpAfter: string;
  debug?: boolean;
  /** In imds delivery, also answer instance metadata requests without a session token; present only when given. */
  imdsV1?: boolean;
}

/** Options of `credfwd-agent credentials`: where the agent on this worker serves them (default: the container endpoint variables). */
export interface CredentialsFlags {
  url?: string;
  tokenFile?: string;
}

/** What the command line asks for. */
export type CommandLine = { command: 'help'; text: string } | { command: 'join'; flags: JoinFlags } | { command: 'credentials'; flags: CredentialsFlags };

const JOIN_OPTIONS = {
  'join-file': { type: 'string' },
  stdin: { type: 'boolean' },
  'outlive-stdin': { type: 'boolean' },
  'agent-id': { type: 'string' },
  'give-up-after': { type: 'string', default: '10m' },
  debug: { type: 'boolean' },
  'imds-v1': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const CREDENTIALS_OPTIONS = {
  url: { type: 'string' },
  'token-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const CREDENTIALS_HELP = `Usage: credfwd-agent credentials [--url URL --token-file FILE]

Print the credentials the agent on this worker holds, in the AWS
credential_process format (Version 1, with Expiration), for a profile's
credential_process. Exits non-zero with a message, printing nothing on
stdout, when the agent has no unexpired credentials or refuses the caller.

Options:
  --url <url>          the agent's credentials endpoint (default:
                       AWS_CONTAINER_CREDENTIALS_FULL_URI)
  --token-file <file>  the file holding its token, readable only by the
                       agent's user (default: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)
  -h, --help           display this help
`;

const HELP = `Usage: credfwd-agent join [options]

Join a credfwd cluster and run its tasks with the launcher's forwarded AWS
credentials. The join string is read from CREDFWD_JOIN, --join-file or
--stdin, never from the command line.

Options:
  --join-file <file>          read the join string from this file (mode 600:
                              refused if other users may read or write it)
                              instead of CREDFWD_JOIN
  --stdin                     read the join string from the first line of
                              stdin, and stop, ending every task, when stdin
                              closes: for launchers, which keep the pipe open
                              while the agent should live
  --outlive-stdin             with --stdin: keep running when stdin closes
                              (a dropped SSH link ends it); stop on a line
                              "stop" on stdin, on revocation, or after
                              --give-up-after without a coordinator
  --agent-id <id>             this worker's id (default: CREDFWD_AGENT_ID, else
                              host name and a random suffix)
  --give-up-after <duration>  exit, stopping every task, after this long
                              without a coordinator, whatever credentials are
                              still held (default: 10m)
  --debug                     log at debug level and print stack traces on
                              errors
  --imds-v1                   with imds delivery, also answer requests
                              without a session token (IMDSv1)
  -h, --help                  display this help
`;

function usage(message: string): CredfwdError {
  return new CredfwdError('USAGE', message, 'run credfwd-agent join --help');
}

/**
 * Reads `credfwd-agent`'s arguments with node:util's parser rather than a
 * command-line library: the agent has one command, and every module it loads
 * is memory an idle worker carries.
 */
export function parseCommandLine(args: string[]): CommandLine {
  const [command, ...rest] = args;
  if (command === undefined) throw usage('no command given');
  if (command === 'help' || command === '--help' || command === '-h') return { command: 'help', text: HELP };
  if (command === 'credentials') return parseCredentials(rest);
  if (command !== 'join') throw usage(`unknown command '${command}'`);
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: JOIN_OPTIONS, strict: true, allowPositionals: false });
  } catch (cause) {
    throw new CredfwdError('USAGE', (cause as Error).message, 'run credfwd-agent join --help', { cause });
  }
  const { values } = parsed;
  if (values.help) return { command: 'help', text: HELP };
  return {
    command: 'join',
    flags: { joinFile: values['join-file'], stdin: values.stdin, outliveStdin: values['outlive-stdin'], agentId: values['agent-id'], giveUpAfter: values['give-up-after'], debug: values.debug, ...(values['imds-v1'] ? { imdsV1: true } : {}) },
  };
}

function parseCredentials(args: string[]): CommandLine {
  let parsed;
  try {
    parsed = parseArgs({ args, options: CREDENTIALS_OPTIONS, strict: true, allowPositionals: false });
  } catch (cause) {
    throw new CredfwdError('USAGE', (cause as Error).message, 'run credfwd-agent credentials --help', { cause });
  }
  const { values } = parsed;
  if (values.help) return { command: 'help', text: CREDENTIALS_HELP };
  return { command: 'credentials', flags: { url: values.url, tokenFile: values['token-file'] } };
}
