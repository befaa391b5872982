import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { CredfwdError, parseEndpointListen, type EndpointListen } from '@credfwd/shared';

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
  /** In endpoint delivery, also serve the credentials endpoint here, for containers on the worker; present only when given. */
  endpointListen?: EndpointListen;
}

/** Options of `credfwd-agent credentials`: where the agent on this worker serves them (default: the container endpoint variables). */
export interface CredentialsFlags {
  url?: string;
  tokenFile?: string;
}

/** Options of `credfwd-agent container-env`: where the agent is, as for `credentials`, and how to print. */
export interface ContainerEnvFlags extends CredentialsFlags {
  format: 'env' | 'docker';
  /** The token file's path inside the container. */
  tokenPath?: string;
}

/** What the command line asks for. */
export type CommandLine =
  | { command: 'help'; text: string }
  | { command: 'join'; flags: JoinFlags }
  | { command: 'credentials'; flags: CredentialsFlags }
  | { command: 'container-env'; flags: ContainerEnvFlags };

const JOIN_OPTIONS = {
  'join-file': { type: 'string' },
  stdin: { type: 'boolean' },
  'outlive-stdin': { type: 'boolean' },
  'agent-id': { type: 'string' },
  'give-up-after': { type: 'string', default: '10m' },
  debug: { type: 'boolean' },
  'imds-v1': { type: 'boolean' },
  'endpoint-listen': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const CREDENTIALS_OPTIONS = {
  url: { type: 'string' },
  'token-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const CONTAINER_ENV_OPTIONS = {
  ...CREDENTIALS_OPTIONS,
  format: { type: 'string', default: 'env' },
  'token-path': { type: 'string' },
} as const;

const CONTAINER_ENV_HELP = `Usage: credfwd-agent container-env [--format env|docker] [--token-path PATH]

Print what a container on this worker needs to fetch the credentials of the
agent started with --endpoint-listen: AWS_CONTAINER_CREDENTIALS_FULL_URI at
that address, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (a path: the token stays
in its file, readable only by the agent's user), AWS_EC2_METADATA_DISABLED and
the region. Run it inside one of the agent's workloads, or pass --url and
--token-file.

Options:
  --format <format>    env: NAME=VALUE lines, for docker run --env-file or
                       set -a; . FILE (token file at its path on the worker);
                       docker: arguments for docker run $(...), mounting the
                       token file read-only at --token-path (default: env)
  --token-path <path>  where the container sees the token file (default: its
                       path on the worker for env, /run/credfwd/token for docker)
  --url <url>          the agent's credentials endpoint (default:
                       AWS_CONTAINER_CREDENTIALS_FULL_URI)
  --token-file <file>  the file holding its token (default:
                       AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)
  -h, --help           display this help
`;

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
  --endpoint-listen <addr>    with endpoint delivery, also serve the
                              credentials endpoint (token required) at
                              ADDR[:PORT] for containers on this worker: one
                              of 169.254.170.2, 169.254.170.23 or
                              [fd00:ec2::23], the hosts AWS SDKs accept over
                              http; see credfwd-agent container-env
  -h, --help                  display this help

Other commands, run inside a workload of this agent (see their --help):
  credfwd-agent credentials     the credentials in credential_process format
  credfwd-agent container-env   the variables a container on this worker needs
`;

/** A command's flags, strictly: an unknown flag or a stray word is a usage error naming the command's help. */
function parseFlags<T extends ParseArgsOptionsConfig>(args: string[], options: T, command: string) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (cause) {
    throw new CredfwdError('USAGE', (cause as Error).message, `run credfwd-agent ${command} --help`, { cause });
  }
}

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
  if (command === 'container-env') return parseContainerEnv(rest);
  if (command !== 'join') throw usage(`unknown command '${command}'`);
  const values = parseFlags(rest, JOIN_OPTIONS, 'join');
  if (values.help) return { command: 'help', text: HELP };
  const listen = values['endpoint-listen'];
  return {
    command: 'join',
    flags: {
      joinFile: values['join-file'], stdin: values.stdin, outliveStdin: values['outlive-stdin'], agentId: values['agent-id'], giveUpAfter: values['give-up-after'], debug: values.debug,
      ...(values['imds-v1'] ? { imdsV1: true } : {}),
      ...(listen === undefined ? {} : { endpointListen: parseEndpointListen(listen) }),
    },
  };
}

function parseCredentials(args: string[]): CommandLine {
  const values = parseFlags(args, CREDENTIALS_OPTIONS, 'credentials');
  if (values.help) return { command: 'help', text: CREDENTIALS_HELP };
  return { command: 'credentials', flags: { url: values.url, tokenFile: values['token-file'] } };
}

function parseContainerEnv(args: string[]): CommandLine {
  const values = parseFlags(args, CONTAINER_ENV_OPTIONS, 'container-env');
  if (values.help) return { command: 'help', text: CONTAINER_ENV_HELP };
  const { format } = values;
  if (format !== 'env' && format !== 'docker') throw new CredfwdError('USAGE', `--format ${JSON.stringify(format.slice(0, 40))} is not env or docker`, 'run credfwd-agent container-env --help');
  const tokenPath = values['token-path'];
  if (tokenPath !== undefined && !tokenPath.startsWith('/')) throw new CredfwdError('USAGE', '--token-path must be an absolute path', 'for example --token-path /run/credfwd/token');
  return { command: 'container-env', flags: { url: values.url, tokenFile: values['token-file'], format, ...(tokenPath === undefined ? {} : { tokenPath }) } };
}
