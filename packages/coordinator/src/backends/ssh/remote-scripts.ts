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

/**
 * $1: agent id, $2: log level, then node, its options and the agent file.
 * The agent starts with a clean environment (env -i) plus the worker
 * variables read from stdin, one NAME=VALUE per line up to an empty line, so
 * no value is ever in an argv; the join string is the next line, read by the
 * agent itself (--stdin), and the rest of stdin is its lifeline. sh's `read`
 * takes one byte at a time from a pipe, so it never swallows what follows.
 */
export const AGENT_SCRIPT = `
id=$1 level=$2
shift 2
exec env -i HOME="$HOME" PATH="$PATH" USER="\${USER:-}" LOGNAME="\${LOGNAME:-}" SHELL="\${SHELL:-/bin/sh}" LANG="\${LANG:-C.UTF-8}" \\
  CREDFWD_AGENT_ID="$id" CREDFWD_LOG_LEVEL="$level" /bin/sh -c '
while IFS= read -r kv && [ -n "$kv" ]; do export "$kv"; done
exec "$@" join --stdin' credfwd "$@"
`;
