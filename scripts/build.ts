/**
 * `pnpm build` (run by `pnpm install`): bundles the worker agent into one file
 * that runs on Node 20 with nothing else installed, then compiles every
 * package's TypeScript into its `dist/` with tsc (JavaScript and declarations).
 *
 * Agents and the CLI may be starting from `dist/` while it runs (tests, a
 * launcher): files are replaced, never removed first, and the bundle appears
 * in one rename.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { AGENT_BUNDLE_BANNER } from './agent-bundle-banner.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PACKAGES = ['shared', 'worker-agent', 'coordinator'].map((name) => join(ROOT, 'packages', name));
const AGENT = join(ROOT, 'packages', 'worker-agent');

/** Where the one-file agent is written; the worker-agent package exports it as `./bundle`. */
const AGENT_BUNDLE = join(AGENT, 'dist', 'credfwd-agent.mjs');

/**
 * Node's own modules are required, never imported, by the bundle. An ES
 * import of a builtin reads every one of its exports, which runs the lazy
 * getters behind them: `node:crypto`'s `webcrypto` loads WebCrypto, `node:net`'s
 * `BlockList` and `SocketAddress` theirs, `node:fs`'s `promises` its module.
 * require() leaves them unloaded: 0.3 MiB less idle RSS, and less CPU to load
 * the bundle (bench/analysis.md, "Agent idle RSS against bare node").
 */
const requireBuiltins: Plugin = {
  name: 'require-builtins',
  setup(build) {
    build.onResolve({ filter: /^node:/ }, (args) => (args.kind === 'import-statement' || args.kind === 'dynamic-import' ? { path: args.path, namespace: 'builtin' } : { path: args.path, external: true }));
    build.onLoad({ filter: /.*/, namespace: 'builtin' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};

/**
 * ws tries the optional native addons `bufferutil` and `utf-8-validate` and
 * falls back to JavaScript when require() throws. Left to run time, that
 * require() would search every node_modules above wherever the one file was
 * copied and load whatever it found there; in the bundle it always throws.
 */
const withoutOptionalAddons: Plugin = {
  name: 'without-optional-addons',
  setup(build) {
    build.onResolve({ filter: /^(bufferutil|utf-8-validate)$/ }, (args) => ({ path: args.path, namespace: 'absent' }));
    build.onLoad({ filter: /.*/, namespace: 'absent' }, (args) => ({ contents: `throw new Error(${JSON.stringify(`${args.path} is not part of the one-file agent`)});`, loader: 'js' }));
  },
};

async function bundleAgent(): Promise<void> {
  const temporary = `${AGENT_BUNDLE}.${process.pid}.tmp`;
  try {
    await build({
      entryPoints: [join(AGENT, 'src', 'cli.ts')],
      outfile: temporary,
      bundle: true,
      platform: 'node',
      // Worker images often carry an older distribution Node than the launcher.
      target: 'node20',
      format: 'esm',
      // Workspace packages from their sources, so the bundle never depends on an earlier build's dist.
      conditions: ['credfwd-source'],
      banner: { js: AGENT_BUNDLE_BANNER },
      minifyWhitespace: true,
      minifySyntax: true,
      plugins: [requireBuiltins, withoutOptionalAddons],
      logLevel: 'warning',
    });
    renameSync(temporary, AGENT_BUNDLE);
  } finally {
    rmSync(temporary, { force: true });
  }
}

function compile(): void {
  // typescript exports no path to its command; it sits beside package.json.
  const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
  const run = spawnSync(process.execPath, [tsc, '--build', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  if (run.status !== 0) throw new Error(`tsc --build failed (exit ${run.status ?? run.signal})`);
}

/** Output whose source was moved or deleted: left behind, an import of the old path would still succeed. */
function pruneOrphans(dist: string, src: string): void {
  for (const entry of readdirSync(dist, { withFileTypes: true, recursive: true })) {
    const match = /^(.*)\.(js|d\.ts)$/.exec(entry.name);
    if (!entry.isFile() || !match) continue;
    const source = join(src, relative(dist, entry.parentPath), `${match[1]}.ts`);
    if (!existsSync(source)) rmSync(join(entry.parentPath, entry.name));
  }
}

await bundleAgent();
compile();
for (const dir of PACKAGES) pruneOrphans(join(dir, 'dist'), join(dir, 'src'));
