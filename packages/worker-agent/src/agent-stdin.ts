import type { Logger } from '@credfwd/shared';
import { LauncherLifeline } from './launcher-lifeline.ts';
import { StdinControl } from './stdin-control.ts';

/** Whoever started the agent may be watched through its stdin; close() stops watching. */
export interface StdinWatch {
  close(): void;
}

/** The reconnect backoff's ceiling with `--outlive-stdin`: see {@link stdinBackoff}. */
const TUNNEL_BACKOFF_MAX_MS = 2_000;

/**
 * What stdin means after the join string was taken from it: nothing
 * (CREDFWD_JOIN, --join-file), the launcher's lifeline (--stdin: a local
 * launcher's pipe, whose end is its death) or, with --outlive-stdin, a
 * channel for `stop` whose end is only a dropped SSH session.
 */
export function watchAgentStdin(mode: { stdin?: boolean; outliveStdin?: boolean }, stop: () => void, logger: Logger): StdinWatch | undefined {
  if (!mode.stdin) return undefined;
  const watch = mode.outliveStdin
    ? new StdinControl({
      input: process.stdin,
      onStop: () => {
        logger.info('asked to stop on stdin; stopping tasks and exiting');
        stop();
      },
      onEnd: () => logger.warn('stdin closed: the SSH session is gone; serving on until the launcher re-opens the tunnel, the cluster is revoked or --give-up-after passes'),
    })
    : new LauncherLifeline({
      input: process.stdin,
      onLost: () => {
        logger.warn('stdin closed: the launcher is gone; stopping tasks and exiting');
        stop();
      },
    });
  watch.start();
  return watch;
}

/**
 * With --outlive-stdin the coordinator's address is the end of an SSH
 * tunnel on this host, which the launcher re-opens within seconds of a
 * link coming back: attempts are refused locally and cost the coordinator
 * nothing, so retrying every few seconds at most makes the agent current
 * again soon after, where the default 2 min ceiling could leave it stale.
 */
export function stdinBackoff(mode: { outliveStdin?: boolean }): { maxMs: number } | undefined {
  return mode.outliveStdin ? { maxMs: TUNNEL_BACKOFF_MAX_MS } : undefined;
}
