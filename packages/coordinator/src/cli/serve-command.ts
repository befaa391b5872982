import { readFileSync } from 'node:fs';
import { CredfwdError, createLogger } from '@credfwd/shared';
import { fromPem, openAuditLog } from '../core/index.ts';
import { usage } from './cli-errors.ts';

/** `credfwd serve`'s flags, as commander parses them. */
export interface ServeFlags {
  listen: string;
  publicUrl?: string;
  redis?: string;
  redisPrefix: string;
  stateKeyFile?: string;
  adminTokenFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  policy?: string;
  auditLog?: string;
  verbose?: boolean;
  debug?: boolean;
}

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
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

/** `credfwd serve`: one replica, until SIGINT or SIGTERM. */
export async function serve(flags: ServeFlags): Promise<number> {
  const logger = createLogger({ name: 'credfwd-replica', level: process.env.CREDFWD_LOG_LEVEL ?? (flags.debug ? 'debug' : flags.verbose ? 'info' : 'warn') });
  const redisUrl = flags.redis ?? process.env.REDIS_URL;
  if (!redisUrl) throw usage('no Redis to share state through', 'pass --redis redis://HOST:PORT or set REDIS_URL; without Redis, use credfwd launch (embedded mode)');
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) throw usage('--tls-cert and --tls-key go together', 'pass both, or neither to share one made by the first replica');
  // Loaded here so that the embedded `launch` never pays for BullMQ and ioredis.
  const { Replica, loadReplicaSecrets } = await import('../service/index.ts');
  const secrets = loadReplicaSecrets({
    ...(flags.stateKeyFile ? { stateKeyFile: flags.stateKeyFile } : {}),
    ...(flags.adminTokenFile ? { adminTokenFile: flags.adminTokenFile } : {}),
  });
  const interrupted = untilSignal();
  const audit = openAuditLog(flags.auditLog);
  const replica = await Replica.start({
    ...(flags.policy !== undefined ? { policyFile: flags.policy } : {}),
    audit,
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
  // SIGHUP reloads the policy, as nginx and Vault do; a bad file keeps the one in force.
  const reload = (): void => void replica.reloadPolicy();
  process.on('SIGHUP', reload);
  await interrupted;
  process.off('SIGHUP', reload);
  await replica.close();
  return 0;
}
