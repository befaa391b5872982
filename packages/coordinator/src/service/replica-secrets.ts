import { readFileSync } from 'node:fs';
import { CredfwdError } from '@credfwd/shared';

/** Secrets every replica of one service shares; never taken from argv. */
export interface ReplicaSecrets {
  /** 32 bytes that seal everything secret kept in Redis; Redis never sees it. */
  stateKey: Uint8Array;
  /** Bearer token of the admin API. */
  adminToken: string;
}

export interface ReplicaSecretSources {
  stateKeyFile?: string;
  adminTokenFile?: string;
}

/** Admin tokens shorter than this are guessable; `openssl rand -base64 32` gives 44 characters. */
const MIN_ADMIN_TOKEN_CHARS = 32;

function fromEnvOrFile(env: NodeJS.ProcessEnv, name: string, file: string | undefined, flag: string): string {
  if (file !== undefined) {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (cause) {
      throw new CredfwdError('CONFIG_INVALID', `cannot read ${flag} ${JSON.stringify(file)}`, `check the file exists and is readable by this user`, { cause });
    }
  }
  const value = env[name]?.trim();
  if (!value) throw new CredfwdError('CONFIG_INVALID', `${name} is not set`, `set ${name} or pass ${flag}; secrets are never taken on the command line`);
  return value;
}

/**
 * Reads the state key (`CREDFWD_STATE_KEY` or `--state-key-file`: 32 random
 * bytes, base64url) and the admin token (`CREDFWD_ADMIN_TOKEN` or
 * `--admin-token-file`), refusing missing or malformed ones without echoing them.
 */
export function loadReplicaSecrets(sources: ReplicaSecretSources, env: NodeJS.ProcessEnv = process.env): ReplicaSecrets {
  const encoded = fromEnvOrFile(env, 'CREDFWD_STATE_KEY', sources.stateKeyFile, '--state-key-file');
  const stateKey = Buffer.from(encoded, 'base64url');
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(encoded) || stateKey.length !== 32) {
    throw new CredfwdError('CONFIG_INVALID', 'the state key is not 32 bytes in base64url', 'make one with: openssl rand 32 | basenc --base64url; every replica needs the same one');
  }
  const adminToken = fromEnvOrFile(env, 'CREDFWD_ADMIN_TOKEN', sources.adminTokenFile, '--admin-token-file');
  if (adminToken.length < MIN_ADMIN_TOKEN_CHARS || /\s/.test(adminToken)) {
    throw new CredfwdError('CONFIG_INVALID', `the admin token must be at least ${MIN_ADMIN_TOKEN_CHARS} characters without spaces`, 'make one with: openssl rand -base64 32');
  }
  return { stateKey: new Uint8Array(stateKey), adminToken };
}
