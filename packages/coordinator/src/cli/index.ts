import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { AGENT_BUNDLE_FILE_NAME, writeAgentBundle } from '../backends/index.ts';
import { DEFAULT_LEASE_SECONDS } from '../core/index.ts';
import { assertArgvIsText } from './argv-text.ts';
import { reportCliError, usage } from './cli-errors.ts';
import { registerClustersCommand } from './clusters-command.ts';
import { launch } from './launch-command.ts';
import { collect, parseWorkers, parseWorkersPerHost, type LaunchFlags } from './launch-flags.ts';
import { serve, type ServeFlags } from './serve-command.ts';

function program(): Command {
  const cli = new Command('credfwd')
    .description('Launch workers that act with your AWS identity, without copying your long-term keys')
    .version(packageVersion(), '-V, --version', 'print the version of credfwd')
    .exitOverride()
    .configureOutput({ writeErr: () => undefined });
  cli.command('launch')
    .description('launch a cluster of workers (local, or on SSH hosts); with `-- cmd …` run cmd on every worker and exit')
    .addOption(new Option('-w, --workers <n>', 'local workers to start (default 1)').argParser(parseWorkers))
    .option('--hosts <hosts>', 'start agents on these SSH hosts instead: [user@]host[:port] or ssh config aliases, comma-separated')
    .option('--hosts-file <file>', 'SSH hosts, one per line (# comments)')
    .addOption(new Option('--workers-per-host <n>', 'agents on each SSH host (default 1)').argParser(parseWorkersPerHost))
    .option('--ssh-config <file>', 'ssh -F: the SSH config to use')
    .option('--ssh-option <option>', 'ssh -o OPTION, e.g. ProxyJump=bastion (repeatable)', collect, [])
    .option('--allow-partial', 'start on the SSH hosts that work, naming the others, instead of failing')
    .option('--give-up-after <duration>', 'an SSH host unreachable this long is reported lost and its agent stops itself (default 10m)')
    .option('--direct', 'SSH agents dial --public-address (or the service) instead of a reverse tunnel')
    .option('-c, --credentials <mode>', 'forward | none | role:<role ARN>', 'forward')
    .option('-e, --env <NAME=VALUE>', 'variable for every workload (repeatable)', collect, [])
    .option('--env-file <file>', 'file of NAME=VALUE lines for every workload')
    .option('--region <region>', 'AWS region for STS and workers')
    .option('--duration <duration>', 'credential lifetime, e.g. 15m, 1h, 12h')
    // No default here: with credentials none a delivery does not apply, and asking for one is an error.
    .option('--delivery <mode>', 'env (AWS_* variables) | endpoint (loopback credentials endpoint) | imds (loopback IMDSv2-compatible endpoint) | process (AWS_CONFIG_FILE with credential_process); default env')
    .option('--endpoint-listen <addr[:port]>', 'with --delivery endpoint: agents also serve it for containers on their worker at 169.254.170.2, 169.254.170.23 or [fd00:ec2::23] (see credfwd-agent container-env)')
    .option('--imds-v1', 'with --delivery imds: agents also answer requests without a session token (IMDSv1)')
    .option('--refresh-interval <duration>', 'refresh at least this often (default: at half life)')
    .option('--on-refresh <action>', 'none | restart | signal:NAME, for a long-running command', 'none')
    .option('--json', 'print one JSON object per worker')
    .option('--listen <host:port>', 'address agents connect to', '127.0.0.1:0')
    .option('--public-address <host:port>', 'address remote agents dial, if not the listen address')
    .option('--coordinator <url>', 'https://HOST:PORT of a distributed coordinator service (admin token in CREDFWD_ADMIN_TOKEN)')
    .option('--coordinator-pin <pin>', 'sha256:… of the service certificate (default: CREDFWD_COORDINATOR_PIN)')
    .option('--lease <duration>', `with --coordinator: the service deletes the cluster this long after the launcher stops renewing it (default ${DEFAULT_LEASE_SECONDS / 60}m)`)
    .option('--keep', 'with --coordinator: no lease; the cluster outlives the launcher until deleted (DELETE /v1/clusters/ID)')
    .option('--scope <s3://bucket[/prefix][:read|:write]>', 'scope the sessions down to this S3 location (repeatable; read unless :write)', collect, [])
    .option('--session-policy <file>', 'IAM policy JSON the sessions are scoped down to (AssumeRole Policy, GetFederationToken)')
    .option('--audit-log <file>', 'append one JSON line per action of this local cluster here (fsync\'d)')
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
    .option('--policy <file>', 'who may launch what (JSON or YAML); reloaded on SIGHUP; without it every principal may do everything')
    .option('--audit-log <file>', 'append one JSON line per decision and action here (fsync\'d); default stderr')
    .option('-v, --verbose', 'log progress to stderr')
    .option('--debug', 'debug logs and stack traces')
    .action(async (flags: ServeFlags) => {
      process.exitCode = await serve(flags);
    });
  registerClustersCommand(cli);
  cli.command('agent-bundle')
    .description('write the whole worker agent as one file that runs with node 20+ and nothing else installed')
    .option('-o, --out <file>', 'where to write it', AGENT_BUNDLE_FILE_NAME)
    .action(async (flags: { out: string }) => {
      if (flags.out.trim() === '') throw usage('--out is empty', `give --out a file path, or leave it out for ./${AGENT_BUNDLE_FILE_NAME}`);
      const written = await writeAgentBundle(flags.out);
      process.stdout.write(`wrote ${written.path} (${written.bytes} bytes, sha256 ${written.sha256})\n`);
      process.stdout.write(`run it on a worker with the join string in CREDFWD_JOIN: node ${written.path} join\n`);
    });
  return cli;
}

/** The version in this package's package.json, from the source tree or a build beside it alike. */
function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  // As docker and kubectl do: asked for nothing, show what can be asked, on stdout, and succeed.
  if (argv.length === 0) {
    process.stdout.write(program().helpInformation());
    return 0;
  }
  try {
    assertArgvIsText(argv);
    await program().parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      const command = ['launch', 'serve', 'clusters'].find((name) => argv[0] === name);
      return reportCliError(usage(err.message.replace(/^error: /, ''), command ? `see credfwd ${command} --help` : 'see credfwd --help'), debug);
    }
    return reportCliError(err, debug);
  }
}

process.exitCode = await main(process.argv.slice(2));
