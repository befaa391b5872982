import { isCredfwdError } from '@credfwd/shared';
import type { AuditAction, AuditEntry, AuditLog } from '../core/index.ts';
import type { Principal } from './access-policy.ts';

/** One authenticated admin API request: who made it, and the id its answer and audit line carry. */
export interface AdminCall {
  principal: Principal;
  requestId: string;
}

/** What an audit line says of the cluster an action is about; filled in as the action learns it. */
export type AuditDetails = Pick<AuditEntry, 'cluster' | 'mode' | 'roleArn' | 'scopes'>;

/**
 * Runs an action and writes its audit line: `ok` when it succeeds; when it
 * throws POLICY_DENIED a `denied` line for the action; otherwise `failed`
 * with the error's code. `details` is the action's to fill in as it goes.
 */
export async function audited<T>(audit: AuditLog, action: AuditAction, call: AdminCall, details: AuditDetails, run: () => Promise<T>): Promise<T> {
  const base = { principal: call.principal.name, requestId: call.requestId };
  try {
    const result = await run();
    audit.record({ action, outcome: 'ok', ...base, ...details });
    return result;
  } catch (err) {
    const code = isCredfwdError(err) ? err.code : 'INTERNAL';
    const reason = isCredfwdError(err) ? err.message : 'internal error';
    if (code === 'POLICY_DENIED') audit.record({ action: 'denied', outcome: 'denied', ...base, ...details, code, reason: `${action}: ${reason}` });
    else audit.record({ action, outcome: 'failed', ...base, ...details, code, reason });
    throw err;
  }
}
