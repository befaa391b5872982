/**
 * What ends a launch from outside: a signal, or a reader that went away
 * (`credfwd launch … | head -1`). Each is turned into one AbortSignal, so
 * start-up and a running command stop the same way (revoke, stop agents and
 * workloads), and into the exit status a shell expects of a process that
 * signal would have killed.
 */

/** Signals a launch treats as "stop now and clean up": SIGHUP too, since closing a terminal sends it. */
const HANDLED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** 128 + the signal number, as shells report a process killed by it. */
const EXIT_STATUS: Record<LaunchInterrupt, number> = { SIGHUP: 129, SIGINT: 130, SIGPIPE: 141, SIGTERM: 143 };

/** Why a launch was interrupted: a signal it received, or SIGPIPE for output to a closed pipe. */
export type LaunchInterrupt = (typeof HANDLED)[number] | 'SIGPIPE';

/** Watches for interrupts from {@link watchLaunchInterrupts} until closed. */
export interface LaunchInterrupts {
  /** Aborted, with the {@link LaunchInterrupt} as reason, at the first interrupt. */
  readonly signal: AbortSignal;
  /** Resolves with the first interrupt. */
  readonly interrupted: Promise<LaunchInterrupt>;
  /** The first interrupt, if one came. */
  readonly received: LaunchInterrupt | undefined;
  /** Stops watching signals; output errors stay swallowed, as the streams stay broken. */
  close(): void;
}

/** The exit status for an interrupt: 129 HUP, 130 INT, 141 PIPE, 143 TERM. */
export function exitStatusOf(interrupt: LaunchInterrupt): number {
  return EXIT_STATUS[interrupt];
}

function isBrokenPipe(err: Error & { code?: string }): boolean {
  return err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED';
}

/**
 * Handles SIGINT, SIGTERM and SIGHUP for the whole launch, including its
 * clean-up: a second signal while the cluster closes does not kill the
 * launcher halfway (which would leave agents behind); it only prints that
 * clean-up is under way, which the local backend bounds by killing
 * stragglers. A write error on stdout or stderr (the reader closed the pipe)
 * counts as SIGPIPE, and nothing more is written there.
 */
export function watchLaunchInterrupts(): LaunchInterrupts {
  const controller = new AbortController();
  let received: LaunchInterrupt | undefined;
  let resolveInterrupted: (interrupt: LaunchInterrupt) => void = () => undefined;
  const interrupted = new Promise<LaunchInterrupt>((resolve) => { resolveInterrupted = resolve; });
  const interrupt = (why: LaunchInterrupt): void => {
    if (received !== undefined) return;
    received = why;
    controller.abort(why);
    resolveInterrupted(why);
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (received !== undefined && received !== 'SIGPIPE') process.stderr.write('credfwd: still stopping the workers, they will not be left behind\n');
    interrupt(signal as LaunchInterrupt);
  };
  const onOutputError = (err: Error & { code?: string }): void => {
    if (isBrokenPipe(err)) interrupt('SIGPIPE');
  };
  for (const name of HANDLED) process.on(name, onSignal);
  // Listeners stay for the life of the process: a destroyed stream may report again at any later write.
  process.stdout.on('error', onOutputError);
  process.stderr.on('error', onOutputError);
  return {
    signal: controller.signal,
    interrupted,
    get received() { return received; },
    close: () => {
      for (const name of HANDLED) process.off(name, onSignal);
    },
  };
}
