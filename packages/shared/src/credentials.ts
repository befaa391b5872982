import { z } from 'zod';

/** AWS credentials as they travel sealed from coordinator to agent. */
export const awsCredentialsSchema = z.strictObject({
  accessKeyId: z.string().min(16).max(128),
  secretAccessKey: z.string().min(1).max(1024),
  sessionToken: z.string().max(8192).optional(),
  /** Coordinator's view of expiry, informational only: agents reckon expiry from `remainingSeconds` on their own clock. */
  expiration: z.string().datetime({ offset: true }).optional(),
});
export type AwsCredentials = z.infer<typeof awsCredentialsSchema>;

/** Shows enough of an access key id to tell keys apart, as `aws configure list` does. */
export function maskAccessKeyId(accessKeyId: string): string {
  return accessKeyId.length <= 8 ? '****' : `${accessKeyId.slice(0, 4)}…${accessKeyId.slice(-4)}`;
}
