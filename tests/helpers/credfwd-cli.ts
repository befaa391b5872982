import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { collectOutput, type ProcessResult } from './processes.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The `credfwd` executable, as pnpm links it. */
export const CREDFWD_BIN = join(ROOT, 'packages/coordinator/bin/credfwd.js');
/** The `credfwd-agent` executable. */
export const AGENT_BIN = join(ROOT, 'packages/worker-agent/bin/credfwd-agent.js');

/**
 * An environment with no AWS identity and no AWS config files: the launcher
 * side of a test adds exactly the identity it means to have. PATH is kept
 * because moto_server, aws and boto3's python live in the pyenv shims.
 */
export function isolatedEnv(extra: Record<string, string> = {}): Record<string, string> {
  const home = mkdtempSync(join(tmpdir(), 'credfwd-home-'));
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    LANG: 'C.UTF-8',
    AWS_CONFIG_FILE: join(home, 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    ...extra,
  };
}

/** Starts a node program with `--` first, so node never reads our `--env-file` as its own flag. */
export function spawnNode(bin: string, args: string[], env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['--', bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs `credfwd ARGS` to completion and collects its output. */
export function runCredfwd(args: string[], env: Record<string, string>): Promise<ProcessResult> {
  return collectOutput(spawnNode(CREDFWD_BIN, args, env));
}

/** One line of `credfwd launch --json`. */
export interface JsonWorkerLine {
  worker: string;
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Parses `--json` output: one object per line. */
export function parseJsonLines(stdout: string): JsonWorkerLine[] {
  return stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as JsonWorkerLine);
}

/** Parses `env -0`-free `env` output into a map (values here hold no newlines). */
export function parseEnvOutput(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}
