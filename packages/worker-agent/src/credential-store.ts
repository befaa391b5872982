import {
  CredfwdError,
  MIN_REMAINING_SECONDS,
  awsCredentialsSchema,
  maskAccessKeyId,
  openJson,
  utcIsoString,
  type AwsCredentials,
  type CredentialsPush,
  type Logger,
} from '@credfwd/shared';
import { systemClock, type Clock } from './clock.ts';
import { ExpiryTimer } from './expiry-timer.ts';

/** Credentials as the agent holds them, with expiry on the agent's own clock. */
export interface StoredCredentials {
  value: AwsCredentials;
  seq: number;
  expiresAt: Date;
  /** When the push arrived, on the agent's clock. */
  receivedAt: Date;
  /** When the coordinator plans its next push, in seconds after `receivedAt`, if it said. */
  refreshInSeconds?: number;
}

/** What may be shown about held credentials: never the secret or the token. */
export interface CredentialsSummary {
  seq: number;
  expiresAt: Date;
  accessKeyIdMasked: string;
}

/** Options of {@link CredentialStore}; the clock defaults to the host's. */
export interface CredentialStoreOptions {
  logger: Logger;
  clock?: Clock;
  /** Longest real wait between two looks at the clock for the expiry warning (default 60 s). */
  expiryRecheckMs?: number;
}

/**
 * Holds the newest credentials pushed by the coordinator. Pushes are ordered
 * by `seq`, so a late or replayed push never replaces newer credentials.
 */
export class CredentialStore {
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #expiryRecheckMs: number | undefined;
  #held: StoredCredentials | undefined;
  // Warns when the held credentials become unusable; replaced by each newer push.
  #expiry: ExpiryTimer | undefined;
  // Kept apart from #held so that a wipe does not reopen the door to older pushes.
  #highestSeq: number | undefined;

  constructor(options: CredentialStoreOptions) {
    this.#logger = options.logger;
    this.#clock = options.clock ?? systemClock;
    this.#expiryRecheckMs = options.expiryRecheckMs;
  }

  /** The highest `seq` accepted so far, if any. */
  get seq(): number | undefined {
    return this.#highestSeq;
  }

  /**
   * Opens and stores a push unless it is not newer than what is held.
   * Returns the stored credentials, or undefined when the push was ignored.
   * Throws PROTOCOL_VIOLATION when the payload cannot be opened or has the wrong shape.
   */
  async receive(push: CredentialsPush, sessionKey: Uint8Array): Promise<StoredCredentials | undefined> {
    if (this.#isStale(push.seq)) {
      this.#logger.debug({ seq: push.seq, heldSeq: this.#highestSeq }, 'credentials push ignored: not newer than held');
      return undefined;
    }
    const parsed = awsCredentialsSchema.safeParse(await openJson(sessionKey, push.jwe));
    if (!parsed.success) {
      // Name the field only: an issue may quote the value, which is a secret.
      const where = parsed.error.issues[0]?.path.join('.') || 'payload';
      throw new CredfwdError(
        'PROTOCOL_VIOLATION',
        `sealed credentials have the wrong shape at ${where}: expected {accessKeyId, secretAccessKey, sessionToken?, expiration?}`,
        'upgrade the agent and coordinator to the same credfwd version',
      );
    }
    // Another push may have been stored while this one was being opened.
    if (this.#isStale(push.seq)) return undefined;
    // The coordinator's clock may be off: reckon expiry from the remaining life on ours.
    const receivedAt = this.#clock.now();
    const stored: StoredCredentials = {
      value: parsed.data,
      seq: push.seq,
      expiresAt: new Date(receivedAt + push.remainingSeconds * 1000),
      receivedAt: new Date(receivedAt),
      refreshInSeconds: push.refreshInSeconds,
    };
    this.#held = stored;
    this.#highestSeq = push.seq;
    this.#logger.info(
      {
        seq: stored.seq,
        accessKeyId: maskAccessKeyId(stored.value.accessKeyId),
        expiresAt: utcIsoString(stored.expiresAt),
        refreshInSeconds: stored.refreshInSeconds,
      },
      'credentials received',
    );
    this.#watchExpiry(stored);
    return stored;
  }

  /**
   * The held credentials while they have at least MIN_REMAINING_SECONDS left
   * on the agent's clock; closer to expiry they count as expired, since a
   * workload handed them could not finish much with them.
   */
  current(): StoredCredentials | undefined {
    const held = this.#held;
    return held && this.#clock.now() < usableUntil(held) ? held : undefined;
  }

  /** A loggable view of {@link current}. */
  summary(): CredentialsSummary | undefined {
    const held = this.current();
    return held && { seq: held.seq, expiresAt: held.expiresAt, accessKeyIdMasked: maskAccessKeyId(held.value.accessKeyId) };
  }

  /** Forgets the held credentials, e.g. when the cluster is revoked. */
  wipe(): void {
    this.#held = undefined;
    this.#expiry?.close();
  }

  #watchExpiry(stored: StoredCredentials): void {
    this.#expiry?.close();
    this.#expiry = new ExpiryTimer({
      clock: this.#clock,
      deadlineMs: usableUntil(stored),
      recheckMs: this.#expiryRecheckMs,
      onExpired: () => this.#logger.warn({ seq: stored.seq }, 'credentials expired; no fresh credentials from the coordinator'),
    });
    this.#expiry.start();
  }

  #isStale(seq: number): boolean {
    return this.#highestSeq !== undefined && seq <= this.#highestSeq;
  }
}

/** Until when (agent clock, ms) stored credentials may be served or injected: {@link CredentialStore.current} treats them as expired from then on. */
function usableUntil(stored: StoredCredentials): number {
  return stored.expiresAt.getTime() - MIN_REMAINING_SECONDS * 1000;
}
