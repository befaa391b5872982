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
import { createRequire, isBuiltin } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { AGENT_BUNDLE_BANNER } from './agent-bundle-banner.ts';

const requireAtBuild = createRequire(import.meta.url);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PACKAGES = ['shared', 'worker-agent', 'coordinator'].map((name) => join(ROOT, 'packages', name));
const AGENT = join(ROOT, 'packages', 'worker-agent');

/** Where the one-file agent is written; the worker-agent package exports it as `./bundle`. */
const AGENT_BUNDLE = join(AGENT, 'dist', 'credfwd-agent.mjs');

/**
 * Node's modules that an idle agent never uses: each is required on its first
 * use instead of at start. ws compresses nothing (the agent turns
 * permessage-deflate off) and reads `querystring` only for URLs with a user;
 * sonic-boom asserts only on a bad file descriptor; workloads, their process
 * tree and the files the agent writes for them come with the first task.
 */
const ON_FIRST_USE = new Set(['assert', 'child_process', 'fs/promises', 'querystring', 'timers/promises', 'zlib']);

/**
 * A Node module's export names, as the Node running the build has them;
 * `functionsOnly` leaves out its other values and its classes (which Node
 * names in PascalCase).
 */
function exportNames(name: string, functionsOnly = false): string[] {
  const real = requireAtBuild(`node:${name}`) as Record<string, unknown>;
  return Object.getOwnPropertyNames(real).filter((key) => /^[A-Za-z_$][\w$]*$/.test(key) && key !== 'default' && (!functionsOnly || (typeof real[key] === 'function' && /^[a-z]/.test(key))));
}

/** A stand-in's `load()`: requires the module `specifier` names on its first call, and hands back the same module after. */
function loadOnFirstUse(specifier: string): string {
  return `let builtin;
const load = () => (builtin ??= require(${specifier}));`;
}

/**
 * What the bundle's own code imports in place of a Node module: an ES module
 * with one export per name, each read when the bundle starts (or a function
 * that loads the module on its first call) and dropped by esbuild when
 * nothing imports it. esbuild's interop for a CommonJS module would instead
 * copy every export of every builtin into each importing file, as a getter
 * closure each (2,400 of them, 0.4 MiB of heap), reading every export's property
 * descriptor as it went; and Node 22 defines some exports as lazy data
 * properties whose descriptor loads the module behind them
 * (`util.setTraceSigInt` loads `worker_threads`, `util.diff` the assert diff,
 * `fs.Dir` the directory streams). An ES import of the builtin itself would
 * read every export's value (`node:crypto`'s `webcrypto` loads WebCrypto).
 */
function importedBuiltin(name: string): string {
  const specifier = JSON.stringify(`node:${name}`);
  const lazy = ON_FIRST_USE.has(name);
  // A module loaded on first use lends only functions to call, which a stand-in can defer: importing anything else from it fails the build.
  const names = exportNames(name, lazy);
  const head = lazy
    ? `${loadOnFirstUse(specifier)}
const pick = (key) => (...args) => load()[key](...args);`
    : `const builtin = require(${specifier});
const pick = (key) => builtin[key];
export default builtin;`;
  return [head, ...names.map((key) => `const $${key} = /* @__PURE__ */ pick(${JSON.stringify(key)});\nexport { $${key} as ${key} };`)].join('\n');
}

/** What a dependency's require() of a module loaded on first use gets: an object of getters that load it. */
function requiredBuiltin(name: string): string {
  const specifier = JSON.stringify(`node:${name}`);
  const callable = typeof requireAtBuild(`node:${name}`) === 'function';
  return `${loadOnFirstUse(specifier)}
${callable ? 'module.exports = (...args) => load()(...args);' : ''}
for (const key of ${JSON.stringify(exportNames(name))}) if (!Object.hasOwn(module.exports, key)) Object.defineProperty(module.exports, key, { get: () => load()[key], enumerable: true });`;
}

const builtinExports: Plugin = {
  name: 'builtin-exports',
  setup(build) {
    build.onResolve({ filter: /^(node:)?[a-z_/]+$/ }, (args) => {
      if (!isBuiltin(args.path)) return undefined;
      // A stand-in's own require() of the module is Node's.
      if (args.namespace.startsWith('builtin')) return { path: args.path, external: true };
      const name = args.path.replace(/^node:/, '');
      if (args.kind === 'import-statement' || args.kind === 'dynamic-import') return { path: name, namespace: 'builtin-imported' };
      return ON_FIRST_USE.has(name) ? { path: name, namespace: 'builtin-required' } : { path: args.path, external: true };
    });
    build.onLoad({ filter: /.*/, namespace: 'builtin-imported' }, (args) => ({ contents: importedBuiltin(args.path), loader: 'js' }));
    build.onLoad({ filter: /.*/, namespace: 'builtin-required' }, (args) => ({ contents: requiredBuiltin(args.path), loader: 'js' }));
  },
};

/**
 * pino's transports run log shipping in a worker thread (thread-stream,
 * `worker_threads`); the agent logs to stderr synchronously
 * (`shared/src/logger.ts`) and never asks for one. pino reads `isMainThread`
 * only to flush an asynchronous destination at exit, and the one-file agent
 * always runs on a process's main thread.
 */
const pinoWithoutTransports: Plugin = {
  name: 'pino-without-transports',
  setup(build) {
    build.onResolve({ filter: /^\.\/(lib\/)?transport$/ }, (args) => (/[/\\]pino[/\\]/.test(args.importer) ? { path: 'transport', namespace: 'pino-trimmed' } : undefined));
    build.onResolve({ filter: /^worker_threads$/ }, (args) => (/[/\\]pino[/\\]lib[/\\]tools\.js$/.test(args.importer) ? { path: 'worker_threads', namespace: 'pino-trimmed' } : undefined));
    build.onLoad({ filter: /^transport$/, namespace: 'pino-trimmed' }, () => ({
      contents: `module.exports = () => { throw new Error('pino transports are not part of the one-file agent, which logs to stderr'); };`,
      loader: 'js',
    }));
    build.onLoad({ filter: /^worker_threads$/, namespace: 'pino-trimmed' }, () => ({ contents: 'module.exports = { isMainThread: true };', loader: 'js' }));
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
      plugins: [pinoWithoutTransports, builtinExports, withoutOptionalAddons],
      logLevel: 'warning',
    });
    renameSync(temporary, AGENT_BUNDLE);
  } finally {
    rmSync(temporary, { force: true });
  }
}

function compile(): void {
  // typescript exports no path to its command; it sits beside package.json.
  const tsc = join(dirname(requireAtBuild.resolve('typescript/package.json')), 'bin', 'tsc');
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
