import * as z from 'zod/mini';
import { CredfwdError, openJson } from '@credfwd/shared';

const stringRecordSchema = z.record(z.string(), z.string());

/**
 * Opens a sealed map of environment variables (the cluster's environ or a
 * task's env). Throws PROTOCOL_VIOLATION if it cannot be opened or is not
 * `{ NAME: "value" }`; the error never quotes a value.
 */
export async function openStringRecord(sessionKey: Uint8Array, jwe: string, what: string): Promise<Record<string, string>> {
  const parsed = stringRecordSchema.safeParse(await openJson(sessionKey, jwe));
  if (!parsed.success) {
    throw new CredfwdError('PROTOCOL_VIOLATION', `sealed ${what} is not a map of strings`, 'upgrade the agent and coordinator to the same credfwd version');
  }
  return parsed.data;
}
