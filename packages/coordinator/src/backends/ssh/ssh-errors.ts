import { CredfwdError, type ErrorCode } from '@credfwd/shared';
import type { SshHost } from './ssh-host.ts';

/** ssh's exit status for its own failures; a remote command's status passes through otherwise. */
export const SSH_FAILURE_STATUS = 255;

interface Pattern {
  code: ErrorCode;
  test: RegExp;
  message: (host: string) => string;
  hint: (host: string) => string;
  retryable?: boolean;
}

// OpenSSH's own wording (checked against 9.2); the first pattern that matches stderr wins.
const PATTERNS: Pattern[] = [
  {
    code: 'SSH_HOST_KEY_UNKNOWN',
    test: /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for \S+ has changed/,
    message: (host) => `the host key of ${host} differs from the one known_hosts holds for it, so ssh refused to connect`,
    hint: (host) => `if ${host} was reinstalled, confirm its new key's fingerprint with its owner and replace the old one (ssh-keygen -R); otherwise someone may be intercepting the connection`,
  },
  {
    code: 'SSH_HOST_KEY_UNKNOWN',
    test: /Host key verification failed|No \S+ host key is known/,
    message: (host) => `the host key of ${host} is not in known_hosts, so ssh refused to connect`,
    hint: (host) => `check the key's fingerprint with the host's owner, then run \`ssh ${host} true\` once and accept it (or fix known_hosts); credfwd never accepts keys by itself`,
  },
  {
    code: 'SSH_AUTH_FAILED',
    test: /Permission denied|Too many authentication failures|no matching host key type|no mutual signature/,
    message: (host) => `${host} refused every key ssh offered`,
    hint: (host) => `check that \`ssh ${host} true\` logs in without a prompt: the key in your ssh-agent or IdentityFile must be in the host's authorized_keys`,
  },
  {
    code: 'SSH_UNREACHABLE',
    test: /Could not resolve hostname|Connection refused|Connection timed out|timed out during banner exchange|No route to host|Network is unreachable|Connection reset|Connection closed by|closed by remote host|kex_exchange_identification|Operation timed out/,
    message: (host) => `cannot reach ${host} over SSH`,
    hint: (host) => `check the host name, that sshd runs on ${host} and that this machine can reach its port (ProxyJump in your SSH config if it sits behind a bastion)`,
    retryable: true,
  },
  {
    code: 'SSH_FAILED',
    test: /remote port forwarding failed/,
    message: (host) => `${host} refused the reverse tunnel agents dial the coordinator through`,
    hint: (host) => `allow TCP forwarding in sshd_config on ${host} (AllowTcpForwarding yes), or pass --direct with an address the host can reach`,
  },
];

/** The error for an `ssh` that exited 255: what the user must fix, naming the host. */
export function sshFailure(host: SshHost, stderr: string): CredfwdError {
  const said = lastLines(stderr);
  for (const p of PATTERNS) {
    if (p.test.test(stderr)) {
      return new CredfwdError(p.code, `${p.message(host.name)}${said ? ` (ssh: ${said})` : ''}`, p.hint(host.name), { retryable: p.retryable ?? false });
    }
  }
  return new CredfwdError('SSH_FAILED', `ssh to ${host.name} failed${said ? `: ${said}` : ''}`, `run \`ssh ${host.name} true\` to see why; credfwd passes your SSH config and --ssh-option values through`);
}

/** The last non-empty lines of a process's stderr, short enough for a message. */
export function lastLines(text: string, count = 2): string {
  return text.split(/\r?\n/).map((line) => line.trim()).filter(Boolean).slice(-count).join(' / ').slice(0, 500);
}
