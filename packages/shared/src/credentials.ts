import * as z from 'zod/mini';

/** AWS credentials as they travel sealed from coordinator to agent. */
export const awsCredentialsSchema = z.strictObject({
  accessKeyId: z.string().check(z.minLength(16), z.maxLength(128)),
  secretAccessKey: z.string().check(z.minLength(1), z.maxLength(1024)),
  sessionToken: z.optional(z.string().check(z.maxLength(8192))),
  /** Coordinator's view of expiry, informational only: agents reckon expiry from `remainingSeconds` on their own clock. */
  expiration: z.optional(z.iso.datetime({ offset: true })),
});
export type AwsCredentials = z.infer<typeof awsCredentialsSchema>;

/** Shows enough of an access key id to tell keys apart, as `aws configure list` does. */
export function maskAccessKeyId(accessKeyId: string): string {
  return accessKeyId.length <= 8 ? '****' : `${accessKeyId.slice(0, 4)}…${accessKeyId.slice(-4)}`;
}
