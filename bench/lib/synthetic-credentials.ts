import { randomBytes } from 'node:crypto';

/** About the size of a real STS session token once base64-encoded. */
const SESSION_TOKEN_BYTES = 600;

/** Temporary credentials shaped and sized like STS's, for a forward-mode launcher and for the floors beside it. */
export interface SyntheticCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
}

export function syntheticCredentials(): SyntheticCredentials {
  return {
    accessKeyId: `ASIA${randomBytes(8).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64'),
    sessionToken: randomBytes(SESSION_TOKEN_BYTES).toString('base64'),
    expiration: new Date(Date.now() + 3_600_000),
  };
}
