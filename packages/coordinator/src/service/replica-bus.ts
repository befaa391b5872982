import type { Redis } from 'ioredis';
import { z } from 'zod';
import { errorMessage, exitSchema, openJson, outputSchema, sealJson, type Logger } from '@credfwd/shared';

const busMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('created'), clusterId: z.string() }),
  z.object({ type: z.literal('credentials'), clusterId: z.string(), seq: z.number().int() }),
  z.object({ type: z.literal('revoked'), clusterId: z.string() }),
  z.object({
    type: z.literal('run'),
    requestId: z.string(),
    clusterId: z.string(),
    argv: z.array(z.string()),
    options: z.object({
      env: z.record(z.string(), z.string()).optional(),
      cwd: z.string().optional(),
      timeoutMs: z.number().optional(),
      onRefresh: z.string().optional(),
    }),
  }),
  z.object({
    type: z.literal('dispatched'),
    requestId: z.string(),
    replicaId: z.string(),
    tasks: z.array(z.object({ agentId: z.string(), taskId: z.string() })),
  }),
  z.object({ type: z.literal('task'), clusterId: z.string(), agentId: z.string(), message: z.union([outputSchema, exitSchema]) }),
]);

/** What replicas tell each other. */
export type BusMessage = z.infer<typeof busMessageSchema>;

/**
 * Pub/sub between replicas on one channel. Every message is sealed with the
 * state key, since task output and run environments may hold secrets and
 * Redis must never see one; a message that does not open or parse is dropped
 * and logged. Subscribing takes its own connection, as Redis requires;
 * ioredis resubscribes by itself after a reconnect.
 */
export class ReplicaBus {
  readonly #publisher: Redis;
  readonly #subscriber: Redis;
  readonly #channel: string;
  readonly #stateKey: Uint8Array;
  readonly #logger: Logger;
  // Seals are asynchronous: chains keep messages in the order they were sent and received (a task's output before its exit).
  #sending: Promise<void> = Promise.resolve();
  #receiving: Promise<void> = Promise.resolve();

  constructor(options: { publisher: Redis; subscriber: Redis; channel: string; stateKey: Uint8Array; logger: Logger }) {
    this.#publisher = options.publisher;
    this.#subscriber = options.subscriber;
    this.#channel = options.channel;
    this.#stateKey = options.stateKey;
    this.#logger = options.logger;
  }

  /** Subscribes; `handler` gets every message, this replica's own included. */
  async start(handler: (message: BusMessage) => void): Promise<void> {
    this.#subscriber.on('message', (channel: string, text: string) => {
      if (channel !== this.#channel) return;
      this.#receiving = this.#receiving.then(async () => {
        handler(busMessageSchema.parse(await openJson(this.#stateKey, text)));
      }).catch((err: unknown) => {
        this.#logger.warn({ reason: errorMessage(err) }, 'dropped a replica message that did not open or parse');
      });
    });
    await this.#subscriber.subscribe(this.#channel);
  }

  /** Publishes after every earlier message of this replica; rejects if Redis does not take it. */
  publish(message: BusMessage): Promise<void> {
    const sent = this.#sending.then(async () => {
      await this.#publisher.publish(this.#channel, await sealJson(this.#stateKey, message));
    });
    this.#sending = sent.catch(() => undefined);
    return sent;
  }
}
