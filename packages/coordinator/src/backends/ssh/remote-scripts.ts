/**
 * POSIX sh run on the hosts. sshd hands the remote command to the user's
 * login shell, which may be bash, zsh or fish: every script runs under
 * `/bin/sh -c` with its values as positional parameters, quoted once, so no
 * login shell parses more than one quoted word per value.
 */

/** Quotes one word for a POSIX shell. */
export function shQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** The remote command line running `script` under /bin/sh with `args` as $1…. */
export function remoteCommand(script: string, args: readonly string[]): string {
  return ['exec', '/bin/sh', '-c', shQuote(script), 'credfwd', ...args.map(shQuote)].join(' ');
}

/** Node prints the file's SHA-256: sha256sum is missing on some hosts (macOS), node is not, once probed. */
const SHA256_OF_ARGV1 = `"require('crypto').createHash('sha256').update(require('fs').readFileSync(process.argv[1])).digest('hex')"`;

/** Prefix of the probe's answer lines: a login shell's rc file may print to stdout too. */
export const PROBE_PREFIX = 'credfwd-probe:';

/**
 * $1: the agent's SHA-256. Reports node's path and version, the cache
 * directory and whether the agent there has that hash.
 */
export const PROBE_SCRIPT = `
node=$(command -v node 2>/dev/null) || node=
version=
[ -n "$node" ] && version=$("$node" --version 2>/dev/null)
dir=\${XDG_CACHE_HOME:-$HOME/.cache}/credfwd
cached=no
if [ -n "$version" ] && [ -f "$dir/agent-$1.mjs" ]; then
  sum=$("$node" -p ${SHA256_OF_ARGV1} "$dir/agent-$1.mjs" 2>/dev/null) && [ "$sum" = "$1" ] && cached=yes
fi
printf '${PROBE_PREFIX}node=%s\\n${PROBE_PREFIX}version=%s\\n${PROBE_PREFIX}dir=%s\\n${PROBE_PREFIX}cached=%s\\n' "$node" "$version" "$dir" "$cached"
`;

/**
 * $1: cache dir, $2: SHA-256, $3: node. Writes stdin to a private temp file,
 * checks its hash, then renames it into place, so a broken upload or a
 * concurrent launch never leaves a half-written agent under the final name.
 */
export const UPLOAD_SCRIPT = `
set -e
umask 077
mkdir -p "$1"
tmp="$1/.agent-$2.$$.tmp"
trap 'rm -f "$tmp"' EXIT
cat > "$tmp"
sum=$("$3" -p ${SHA256_OF_ARGV1} "$tmp")
if [ "$sum" != "$2" ]; then echo "the uploaded agent hashes to $sum, not $2" >&2; exit 3; fi
mv -f "$tmp" "$1/agent-$2.mjs"
`;

/** Prefix of the line on which the agent script reports the agent's pid (its own: it execs the agent). */
export const AGENT_PID_PREFIX = 'credfwd-agent-pid:';

/**
 * $1: agent id, $2: log level, then node, its options, the agent file and
 * its arguments. The agent starts with a clean environment (env -i) plus the
 * worker variables read from stdin, one NAME=VALUE per line up to an empty
 * line, so no value is ever in an argv; the join string is the next line,
 * read by the agent itself (--stdin), and the rest of stdin carries `stop`.
 * sh's `read` takes one byte at a time from a pipe, so it never swallows
 * what follows. Every exec keeps the pid, so the one reported is the agent's.
 */
export const AGENT_SCRIPT = `
id=$1 level=$2
shift 2
printf '${AGENT_PID_PREFIX}%s\\n' "$$" >&2
exec env -i HOME="$HOME" PATH="$PATH" USER="\${USER:-}" LOGNAME="\${LOGNAME:-}" SHELL="\${SHELL:-/bin/sh}" LANG="\${LANG:-C.UTF-8}" \\
  CREDFWD_AGENT_ID="$id" CREDFWD_LOG_LEVEL="$level" /bin/sh -c '
while IFS= read -r kv && [ -n "$kv" ]; do export "$kv"; done
exec "$@"' credfwd "$@"
`;

/** What the watch script prints once it runs (after ssh set up the tunnel, or failed to). */
export const WATCHING_LINE = 'credfwd-watching';

/**
 * $1: the agent's pid, $2: its agent file's name. Runs in a session re-opened after
 * a dropped link, which exists for its tunnel: it ends once the agent has
 * (so the launcher learns that the agent is gone, as from the first session)
 * and passes a `stop` line on stdin to the agent as SIGTERM, which the agent
 * handles as a stop. The pid is only trusted while its argv still names the
 * agent file: a pid the system reused must never be signalled. Polling ps
 * once a second is the portable way to wait for a process that is not a child.
 */
export const WATCH_SCRIPT = `
pid=$1 file=$2
if command -v ps >/dev/null 2>&1; then
  alive() { case "$(ps -p "$pid" -o args= 2>/dev/null)" in *"$file"*) return 0;; esac; return 1; }
else
  alive() { kill -0 "$pid" 2>/dev/null; }
fi
alive || exit 0
echo ${WATCHING_LINE}
exec 3<&0
( while IFS= read -r line <&3; do [ "$line" = stop ] && alive && kill -TERM "$pid"; done ) >/dev/null 2>&1 &
reader=$!
trap 'kill "$reader" 2>/dev/null' EXIT
while alive; do sleep 1; done
`;
