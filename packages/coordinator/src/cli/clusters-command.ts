import type { Command } from 'commander';
import { clusterDetail, clusterListTable, type ShownCluster } from './cluster-table.ts';
import { adminClientFor, coordinatorAccess } from './coordinator-access.ts';

/** Flags every `credfwd clusters` subcommand takes. */
interface ClustersFlags {
  coordinator: string;
  coordinatorPin?: string;
  json?: boolean;
  allSessions?: boolean;
}

/** A table when a person reads stdout; JSON when a program does, or when asked. */
function print(flags: ClustersFlags, json: unknown, human: () => string): void {
  process.stdout.write(flags.json || !process.stdout.isTTY ? `${JSON.stringify(json)}\n` : human());
}

function withAccessFlags(command: Command): Command {
  return command
    .requiredOption('--coordinator <url>', 'https://HOST:PORT of the service (token in CREDFWD_ADMIN_TOKEN)')
    .option('--coordinator-pin <pin>', 'sha256:… of the service certificate (default: CREDFWD_COORDINATOR_PIN)')
    .option('--json', 'print JSON (the default when stdout is not a terminal)')
    .option('--debug', 'stack traces');
}

type Action = (flags: ClustersFlags, id: string) => Promise<void>;

const ACTIONS: Record<string, { description: string; run: Action }> = {
  show: {
    description: 'a cluster: principal, role, scopes, credentials, refresh, lease, agents, and how to find its calls in CloudTrail',
    run: async (flags, id) => {
      const shown = await admin(flags).showCluster(id) as unknown as ShownCluster;
      print(flags, shown, () => clusterDetail(shown));
    },
  },
  refresh: {
    description: 'mint and push new credentials now (how a cluster resumes after needs-attention)',
    run: async (flags, id) => {
      await admin(flags).refreshCluster(id);
      print(flags, { id, refresh: 'requested' }, () => `cluster ${id}: refresh requested\n`);
    },
  },
  delete: {
    description: 'delete a cluster: its agents are revoked and its refreshes stop',
    run: async (flags, id) => {
      await admin(flags).deleteCluster(id);
      print(flags, { id, deleted: true }, () => `cluster ${id} deleted\n`);
    },
  },
  revoke: {
    description: 'delete a role cluster and deny its sessions on the role, so copied credentials stop working too',
    run: async (flags, id) => {
      const revoked = await admin(flags).revokeCluster(id, Boolean(flags.allSessions));
      print(flags, revoked, () => `cluster ${id} revoked: inline policy ${revoked.policyName} on ${revoked.roleArn} denies ${revoked.allSessions ? 'every session issued before now' : 'its sessions'}\n`);
    },
  },
};

function admin(flags: ClustersFlags): ReturnType<typeof adminClientFor> {
  return adminClientFor(coordinatorAccess(flags.coordinator, flags.coordinatorPin));
}

/** `credfwd clusters list|show|refresh|delete|revoke`, against a service's admin API. */
export function registerClustersCommand(cli: Command): void {
  const clusters = cli.command('clusters').description('manage the clusters of a distributed coordinator service (credfwd serve)');
  withAccessFlags(clusters.command('list').description('the clusters you may act on (every one, with the admin token)'))
    .action(async (flags: ClustersFlags) => {
      const list = await admin(flags).listClusters() as unknown as ShownCluster[];
      print(flags, { clusters: list }, () => clusterListTable(list));
    });
  for (const [name, { description, run }] of Object.entries(ACTIONS)) {
    const command = withAccessFlags(clusters.command(name).description(description).argument('<id>', 'cluster id, as list shows it'));
    if (name === 'revoke') command.option('--all-sessions', 'deny every session of the role issued before now (aws:TokenIssueTime), not only this cluster\'s');
    command.action((id: string, flags: ClustersFlags) => run(flags, id));
  }
}
