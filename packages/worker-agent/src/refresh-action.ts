import { constants } from 'node:os';
import type { OnRefresh } from '@credfwd/shared';

/** What a supervised task does when newer credentials are stored. */
export type RefreshAction =
  | {
    kind: 'restart';
    /** The environment for the next run, built from the credentials held then; undefined while none are usable. */
    freshEnv(): Record<string, string> | undefined;
  }
  | { kind: 'signal'; signal: NodeJS.Signals };

/** The action (undefined for `none`), or the stderr line refusing the task. */
export type RefreshActionChoice = { action: RefreshAction | undefined } | { refusal: string };

/** Turns a run frame's `onRefresh` into what the task runner does on a refresh. */
export function refreshAction(onRefresh: OnRefresh | undefined, freshEnv: () => Record<string, string> | undefined): RefreshActionChoice {
  if (onRefresh === undefined || onRefresh === 'none') return { action: undefined };
  if (onRefresh === 'restart') return { action: { kind: 'restart', freshEnv } };
  const name = onRefresh.slice('signal:'.length);
  // The protocol admits any SIGNAME-shaped word; only this OS knows which exist.
  if (!Object.hasOwn(constants.signals, name)) {
    return { refusal: `credfwd-agent: onRefresh names ${name}, which is not a signal on this worker\n` };
  }
  return { action: { kind: 'signal', signal: name as NodeJS.Signals } };
}
