# Sourced by scripts/dev and .ci/run: puts a Node that satisfies package.json's
# `engines.node` and pnpm 10 on PATH. Where the machine's own are missing or too
# old, both are installed with the machine's npm into ~/.cache/credfwd-node
# (reused by later runs). Needs only npm and the npm registry.

CREDFWD_NODE_PREFIX="${CREDFWD_NODE_PREFIX:-$HOME/.cache/credfwd-node}"

# The minimum as `major.minor` from package.json's `engines.node` (">=22.18"),
# so the requirement is written once. Any Node can read it.
credfwd_required_node() {
  node -e 'const r = require(process.argv[1]).engines.node; const m = /^>=\s*(\d+)\.(\d+)/.exec(r); if (!m) { console.error(`engines.node ${r} is not >=MAJOR.MINOR`); process.exit(1); } console.log(`${m[1]}.${m[2]}`)' "$1/package.json"
}

credfwd_node_ok() {
  command -v node >/dev/null 2>&1 &&
    node -e 'const [want, got] = [process.argv[1], process.versions.node].map((v) => v.split(".").map(Number)); process.exit(got[0] > want[0] || (got[0] === want[0] && got[1] >= want[1]) ? 0 : 1)' "$CREDFWD_NODE_MIN"
}

credfwd_pnpm_ok() {
  command -v pnpm >/dev/null 2>&1 && pnpm --version >/dev/null 2>&1
}

credfwd_npm_install() {
  if ! command -v npm >/dev/null 2>&1; then
    echo "bootstrap: npm is missing, so Node and pnpm cannot be installed; install Node.js (with npm) first" >&2
    return 1
  fi
  echo "bootstrap: installing $* into $CREDFWD_NODE_PREFIX" >&2
  # --prefix makes npm look for its global config under the prefix: keep the
  # machine's (where a registry mirror or its CA may be configured).
  npm install --globalconfig "$(npm config get globalconfig)" --prefix "$CREDFWD_NODE_PREFIX" \
    --no-audit --no-fund --loglevel=error "$@" >&2
}

# The installed Node and pnpm know nothing of npm's config: hand them the CA
# npm was told to trust (a company or sandbox proxy), as Node reads it.
credfwd_trust_npm_ca() {
  [[ -n ${NODE_EXTRA_CA_CERTS:-} ]] && return 0
  command -v npm >/dev/null 2>&1 || return 0
  local cafile
  cafile=$(npm config get cafile 2>/dev/null) || return 0
  if [[ -n $cafile && $cafile != null && $cafile != undefined && -r $cafile ]]; then
    export NODE_EXTRA_CA_CERTS="$cafile"
  fi
}

# credfwd_bootstrap ROOT: on success, `node` and `pnpm` on PATH are usable for ROOT.
credfwd_bootstrap() {
  local root=$1
  if ! command -v node >/dev/null 2>&1; then
    echo "bootstrap: no node on PATH; install Node.js (any version with npm) first" >&2
    return 1
  fi
  CREDFWD_NODE_MIN=$(credfwd_required_node "$root") || return 1
  credfwd_trust_npm_ca
  if ! credfwd_node_ok || ! credfwd_pnpm_ok; then
    export PATH="$CREDFWD_NODE_PREFIX/node_modules/.bin:$PATH"
    hash -r
  fi
  if ! credfwd_node_ok; then
    credfwd_npm_install "node@${CREDFWD_NODE_MIN%%.*}" pnpm@10 || return 1
    hash -r
  elif ! credfwd_pnpm_ok; then
    credfwd_npm_install pnpm@10 || return 1
    hash -r
  fi
  if ! credfwd_node_ok; then
    echo "bootstrap: no Node >= $CREDFWD_NODE_MIN after installing one" >&2
    return 1
  fi
}
