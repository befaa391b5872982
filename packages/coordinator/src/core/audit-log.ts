import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { CredfwdError } from '@credfwd/shared';

/** What an audit line records: a decision or an action. */
export type AuditAction = 'create' | 'run' | 'refresh' | 'delete' | 'revoke' | 'denied' | 'policy-reload';

/** One audit line. Every field is a name, an id or an ARN: never a token, key or join string. */
export interface AuditEntry {
  action: AuditAction;
  outcome: 'ok' | 'denied' | 'failed';
  principal: string | null;
  cluster?: string | null;
  mode?: string | null;
  roleArn?: string | null;
  scopes?: string[];
  requestId?: string | null;
  /** The error code of a failure or denial. */
  code?: string;
  /** Why, for denials and failures: CredfwdError messages hold no secret. */
  reason?: string;
}

/** Where audit lines go. */
export interface AuditLog {
  record(entry: AuditEntry): void;
  close(): void;
}

function line(entry: AuditEntry, now: Date): string {
  return `${JSON.stringify({ time: now.toISOString(), type: 'audit', ...entry })}\n`;
}

/**
 * Appends one JSON line per entry to `file` (created 0600) and fsyncs it
 * before returning, so a decision is on disk before its answer leaves; or,
 * without a file, writes to stderr. Synchronous on purpose: lines stay in
 * the order of the decisions, and a crash loses none that were answered.
 */
export function openAuditLog(file: string | undefined, now: () => Date = () => new Date()): AuditLog {
  if (file === undefined) {
    return { record: (entry) => process.stderr.write(line(entry, now())), close: () => undefined };
  }
  let fd: number;
  try {
    fd = openSync(file, 'a', 0o600);
  } catch (cause) {
    throw new CredfwdError('CONFIG_INVALID', `cannot open audit log ${file}`, 'check --audit-log names a file this user may append to', { cause });
  }
  let closed = false;
  return {
    record(entry) {
      if (closed) return;
      writeSync(fd, line(entry, now()));
      fsyncSync(fd);
    },
    close() {
      if (closed) return;
      closed = true;
      closeSync(fd);
    },
  };
}
