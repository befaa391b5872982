import { CredfwdError, type Logger } from '@credfwd/shared';
import type { AgentSession, SessionEnd } from './agent-session.ts';
import { SSH_FAILURE_STATUS } from './ssh-errors.ts';
import { WatchSession } from './watch-session.ts';

/** Backoff of re-dialling a host: 1 s doubling to 3 s, ±20 %, so hosts that come back together are not re-dialled in step; a failed dial costs one ssh process. */
const REDIAL_INITIAL_MS = 1_000;
const REDIAL_MAX_MS = 3_000;
const REDIAL_JITTER = 0.2;
/** A re-opened session that drops sooner than this did not heal the link: the time to give up keeps counting from the first drop. */
const STABLE_MS = 5_000;

/** What an {@link AgentLink} needs besides its first session. */
export interface AgentLinkOptions {
  /** How long a host may stay unreachable before it is reported lost (the agent there gives up after as long). */
  giveUpAfterMs: number;
  logger: Logger;
  /** Called once, when the agent is gone or its host is given up on, unless stop() came first. */
  onLost(error: CredfwdError): void;
}

type Current = AgentSession | WatchSession;

/**
 * The launcher's hold on one remote agent across dropped links. The agent
 * runs on with what it holds when its session drops; this re-dials the host
 * with backoff and jitter, binding the tunnel again, until the link is back
 * or `giveUpAfterMs` has passed since it dropped, when the host is reported
 * lost (the agent there stops itself after as long without a coordinator).
 */
export class AgentLink {
  readonly agentId: string;
  readonly host: AgentSession['host'];
  /** Resolves once nothing of this link runs here and the agent is gone, or given up on. */
  readonly gone: Promise<void>;
  readonly #first: AgentSession;
  readonly #options: AgentLinkOptions;
  readonly #logger: Logger;
  #resolveGone!: () => void;
  #current: Current | undefined;
  /** The next re-dial. */
  #timer: NodeJS.Timeout | undefined;
  /** Runs from a drop until a re-opened session has held for STABLE_MS; independent of dials, which may hang for ssh's ConnectTimeout. */
  #giveUpTimer: NodeJS.Timeout | undefined;
  #stableTimer: NodeJS.Timeout | undefined;
  #attempt = 0;
  #lostAt: number | undefined;
  #watching = false;
  #stopping = false;
  #done = false;

  constructor(first: AgentSession, options: AgentLinkOptions) {
    this.agentId = first.agentId;
    this.host = first.host;
    this.#first = first;
    this.#options = options;
    this.#logger = options.logger.child({ agentId: first.agentId, host: first.host.name });
    this.gone = new Promise((resolve) => { this.#resolveGone = resolve; });
    this.#follow(first);
  }

  /** Asks the agent to stop through whichever session is open; a host being re-dialled is left to its agent's give-up. */
  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    clearTimeout(this.#timer);
    if (this.#current?.running) {
      this.#current.stop();
    } else {
      if (!this.#done) this.#logger.warn('host unreachable while stopping: its agent stops itself once it has been without a coordinator for --give-up-after');
      this.#finish();
    }
  }

  kill(signal: NodeJS.Signals): void {
    this.#current?.kill(signal);
  }

  #follow(session: Current): void {
    this.#current = session;
    void session.exited.then((end) => this.#sessionEnded(session, end));
  }

  #sessionEnded(session: Current, end: SessionEnd): void {
    if (this.#current !== session) return;
    this.#current = undefined;
    const dropped = session === this.#first ? this.#first.linkDropped(end) : end.code === SSH_FAILURE_STATUS || end.signal !== null;
    if (this.#stopping || !dropped) {
      // The agent exited (a watch session ends with it): that is the agent's end, whoever caused it.
      if (!this.#stopping) this.#lose(session === this.#first ? this.#first.failure(end) : agentGone(this.#first, this.#options.giveUpAfterMs));
      this.#finish();
      return;
    }
    this.#watching = false;
    clearTimeout(this.#stableTimer);
    if (this.#lostAt === undefined) {
      this.#lostAt = Date.now();
      this.#attempt = 0;
      this.#giveUpTimer = setTimeout(() => this.#giveUp(), this.#options.giveUpAfterMs);
      this.#logger.warn({ status: end.code }, 'SSH link to host dropped; re-dialling while the agent there serves on');
    }
    this.#redial();
  }

  #giveUp(): void {
    // The link came back just now: the stable timer ends the count if it holds; if it drops again first, this comes back.
    if (this.#watching) {
      this.#giveUpTimer = setTimeout(() => this.#giveUp(), STABLE_MS);
      return;
    }
    this.#lose(hostLost(this.#first, this.#options.giveUpAfterMs));
    this.#current?.kill('SIGKILL');
    this.#finish();
  }

  #redial(): void {
    const base = Math.min(REDIAL_INITIAL_MS * 2 ** this.#attempt, REDIAL_MAX_MS);
    const delay = Math.round(base * (1 + REDIAL_JITTER * (2 * Math.random() - 1)));
    this.#attempt += 1;
    this.#timer = setTimeout(() => void this.#dial(), delay);
  }

  async #dial(): Promise<void> {
    if (this.#stopping || this.#done) return;
    const session = WatchSession.open(this.#first);
    this.#follow(session);
    if (await session.watching && this.#current === session) {
      this.#watching = true;
      // A drop before this fires clears it, and the count from the first drop goes on.
      this.#stableTimer = setTimeout(() => {
        clearTimeout(this.#giveUpTimer);
        this.#lostAt = undefined;
      }, STABLE_MS);
      this.#logger.info({ attempts: this.#attempt, downForMs: Date.now() - this.#lostAt! }, 'SSH link to host re-established; the agent reconnects through its tunnel');
      // Stopped while dialling: the stop reaches the agent through this session.
      if (this.#stopping) session.stop();
    }
  }

  #lose(error: CredfwdError): void {
    if (this.#done || this.#stopping) return;
    this.#logger.error({ code: error.code }, error.message);
    this.#options.onLost(error);
  }

  #finish(): void {
    this.#done = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#giveUpTimer);
    clearTimeout(this.#stableTimer);
    this.#resolveGone();
  }
}

function hostLost(first: AgentSession, giveUpAfterMs: number): CredfwdError {
  return new CredfwdError(
    'SSH_CONNECTION_LOST',
    `lost the SSH connection to ${first.host.name} (agent ${first.agentId}) for ${Math.round(giveUpAfterMs / 1000)} s, its give-up time: the host is left out of the cluster`,
    `check the network path to ${first.host.name} and its sshd; its agent stops itself and its workloads after as long without a coordinator`,
    { retryable: true },
  );
}

function agentGone(first: AgentSession, giveUpAfterMs: number): CredfwdError {
  return new CredfwdError(
    'AGENT_UNREACHABLE',
    `agent ${first.agentId} on ${first.host.name} exited while its SSH link was being re-established`,
    `an agent exits ${Math.round(giveUpAfterMs / 1000)} s after losing its coordinator, or when revoked; run with CREDFWD_LOG_LEVEL=debug to see its logs`,
  );
}
