import { createHash } from 'node:crypto';
import {
  CloseCode,
  CredfwdError,
  HEARTBEAT_INTERVAL_MS,
  createExchangeKeyPair,
  isCredfwdError,
  type AgentMessage,
  type JoinInfo,
  type Logger,
} from '@credfwd/shared';
import { AgentConnection, type ConnectionEnd, type ConnectionHandlers } from './agent-connection.ts';
import { PinnedAgent } from './pinned-agent.ts';
import { ReconnectTimer, type ReconnectTimerOptions } from './reconnect-timer.ts';

/** Connection events, plus the two ways the connector stops for good. */
export interface ConnectorHandlers extends ConnectionHandlers {
  /** The coordinator closed the cluster (4403). */
  revoked(): void;
  /** A failure that retrying cannot fix: bad token, wrong pin, other protocol version, agent id taken. */
  fatal(error: CredfwdError): void;
  /** A connection attempt failed or a connection was lost; the connector tries again. */
  disconnected(): void;
}

/** What a {@link Connector} needs: where to connect, who it is, whom to tell. */
export interface ConnectorOptions {
  join: JoinInfo;
  agentId: string;
  logger: Logger;
  handlers: ConnectorHandlers;
  heartbeatIntervalMs?: number;
  /** Reconnect backoff; 250 ms doubling to 2 min, ±20 %, by default. */
  backoff?: ReconnectTimerOptions;
}

type Outcome = { kind: 'retry' } | { kind: 'revoked' } | { kind: 'fatal'; error: CredfwdError };

/**
 * Keeps the agent connected: tries each coordinator address in turn (later
 * ones are failover replicas), reconnects with backoff after any loss it can
 * recover from, and stops on revocation or a fatal refusal.
 */
export class Connector {
  readonly #options: ConnectorOptions;
  readonly #logger: Logger;
  // One key pair per agent process: the session key still differs per connection, through the nonce.
  readonly #keyPair = createExchangeKeyPair();
  readonly #httpsAgent: PinnedAgent;
  readonly #reconnect: ReconnectTimer;
  #nextAddress: number;
  #current: AgentConnection | undefined;
  #closed = false;

  constructor(options: ConnectorOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.#httpsAgent = new PinnedAgent(options.join.pin);
    this.#reconnect = new ReconnectTimer(() => this.#connect(), options.backoff);
    this.#nextAddress = firstAddressIndex(options.agentId, options.join.addresses.length);
  }

  /** Makes the first connection attempt. */
  start(): void {
    this.#connect();
  }

  /** Sends on the current connection, calling `written` once the frame has left (or failed); false while there is none ready. */
  send(message: AgentMessage, written?: () => void): boolean {
    return this.#current?.send(message, written) ?? false;
  }

  /** Bytes handed to the current connection but not yet written to the network; 0 without one. */
  bufferedAmount(): number {
    return this.#current?.bufferedAmount() ?? 0;
  }

  /** Stops reconnecting and closes the connection with 1000; idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#reconnect.close();
    const current = this.#current;
    current?.close(CloseCode.normal);
    await current?.ended;
    this.#httpsAgent.destroy();
  }

  #connect(): void {
    if (this.#closed) return;
    const { addresses } = this.#options.join;
    const address = addresses[this.#nextAddress % addresses.length]!;
    this.#nextAddress += 1;
    const { handlers } = this.#options;
    const connection = new AgentConnection({
      address,
      join: this.#options.join,
      agentId: this.#options.agentId,
      keyPair: this.#keyPair,
      httpsAgent: this.#httpsAgent,
      heartbeatIntervalMs: this.#options.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS,
      logger: this.#logger,
      handlers: {
        welcome: (session) => {
          this.#reconnect.reset();
          return handlers.welcome(session);
        },
        message: (message, session) => handlers.message(message, session),
      },
    });
    this.#current = connection;
    connection.start();
    void connection.ended.then((end) => this.#ended(connection, address, end));
  }

  #ended(connection: AgentConnection, address: string, end: ConnectionEnd): void {
    if (this.#current === connection) this.#current = undefined;
    if (this.#closed) return;
    const outcome = classify(end);
    if (outcome.kind === 'fatal') {
      this.#closed = true;
      this.#options.handlers.fatal(outcome.error);
    } else if (outcome.kind === 'revoked') {
      this.#closed = true;
      this.#options.handlers.revoked();
    } else {
      const retryInMs = this.#reconnect.start();
      this.#logger.warn({ address, code: end.code, reason: end.error?.message, retryInMs }, 'connection to coordinator lost; reconnecting');
      this.#options.handlers.disconnected();
    }
  }
}

/**
 * Where in the address list an agent starts: spread by its id, so a fleet
 * given one join string listing every replica lands evenly across them, and
 * each agent keeps its starting replica from run to run.
 */
export function firstAddressIndex(agentId: string, count: number): number {
  return createHash('sha256').update(agentId).digest().readUInt32BE(0) % count;
}

function classify(end: ConnectionEnd): Outcome {
  if (isCredfwdError(end.error) && end.error.code === 'AGENT_PIN_MISMATCH') return { kind: 'fatal', error: end.error };
  switch (end.code) {
    case CloseCode.authFailed:
      return {
        kind: 'fatal',
        error: new CredfwdError(
          'AGENT_AUTH_FAILED',
          'the coordinator refused this agent\'s join token',
          'copy the join string again from `credfwd launch`; the cluster may have been closed or relaunched',
        ),
      };
    case CloseCode.versionMismatch:
      return {
        kind: 'fatal',
        error: new CredfwdError(
          'PROTOCOL_MISMATCH',
          'the coordinator speaks another credfwd protocol version',
          'install the same credfwd version on the workers as on the launcher',
        ),
      };
    case CloseCode.agentIdInUse:
      // Retrying would only find the same agent connected, or replace it and be replaced in turn.
      return {
        kind: 'fatal',
        error: new CredfwdError(
          'AGENT_ID_IN_USE',
          'another agent is connected to this cluster under the same agent id',
          'give each agent its own id with --agent-id or CREDFWD_AGENT_ID, or leave both unset for a unique default',
        ),
      };
    case CloseCode.clusterRevoked:
      return { kind: 'revoked' };
    default:
      return { kind: 'retry' };
  }
}
