import { z } from 'zod';
import { onRefreshSchema } from '@credfwd/shared';

/** A cluster's lease when its creator names none: long enough to ride out a launcher's brief outage, short enough to clean up after a killed one. */
export const DEFAULT_LEASE_SECONDS = 300;
/** Shortest `leaseSeconds`: the launcher renews every third of it, and that must stay practical. */
export const MIN_LEASE_SECONDS = 2;
/** Longest `leaseSeconds`: a cluster meant to stay longer is kept (`leaseSeconds: null`), not leased. */
export const MAX_LEASE_SECONDS = 7 * 24 * 3600;

const roleObject = z.strictObject({
  roleArn: z.string(),
  externalId: z.string().optional(),
  sessionPolicy: z.string().optional(),
  durationSeconds: z.number().int().optional(),
  sourceIdentity: z.string().optional(),
  tags: z.record(z.string(), z.string()).optional(),
});

/** `POST /v1/clusters`. */
export const createClusterRequestSchema = z.strictObject({
  credentials: z.union([z.literal('forward'), z.literal('none'), z.string().startsWith('role:'), roleObject]).optional(),
  environ: z.record(z.string(), z.string()).optional(),
  region: z.string().optional(),
  durationSeconds: z.number().int().positive().optional(),
  delivery: z.enum(['env', 'endpoint', 'imds', 'process']).optional(),
  refreshIntervalSeconds: z.number().int().positive().optional(),
  /** `s3://bucket[/prefix][:read|:write]` each: the session is scoped down to these (a policy may require it). */
  scopes: z.array(z.string().max(1100)).max(32).optional(),
  /** Workers the launcher means to start, checked against a policy's `maxWorkers`. */
  workers: z.number().int().nonnegative().optional(),
  /**
   * The cluster is deleted this long after its last renewal (`POST
   * /v1/clusters/:id/lease`); {@link DEFAULT_LEASE_SECONDS} when absent; null
   * keeps it until someone deletes it.
   */
  leaseSeconds: z.number().int().min(MIN_LEASE_SECONDS).max(MAX_LEASE_SECONDS).nullable().optional(),
  /** `forward` only: the launcher's temporary credentials (GetSessionToken'd on the launcher), forwarded until they expire. */
  forwardedCredentials: z.strictObject({
    accessKeyId: z.string().min(16),
    secretAccessKey: z.string().min(1),
    sessionToken: z.string().min(1),
    expiration: z.iso.datetime({ offset: true }),
  }).optional(),
});
export type CreateClusterRequest = z.infer<typeof createClusterRequestSchema>;

/** `POST /v1/clusters/:id/run`. */
export const runRequestSchema = z.strictObject({
  argv: z.array(z.string()).min(1),
  env: z.record(z.string(), z.string()).optional(),
  cwd: z.string().optional(),
  timeoutMs: z.number().int().positive().optional(),
  onRefresh: z.optional(onRefreshSchema),
});
export type RunRequest = z.infer<typeof runRequestSchema>;
