import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/**
 * Imports `entry` in a fresh Node, as ava runs the sources, and answers
 * which of the heavy packages it loaded: a resolve hook sees every `import`
 * and `require`, bullmq's own requires of ioredis included.
 */
async function heavyPackagesLoadedBy(entry: string): Promise<string[]> {
  const probe = `
    import { registerHooks } from 'node:module';
    const loaded = new Set();
    registerHooks({
      resolve(specifier, context, next) {
        const resolved = next(specifier, context);
        const name = /\\/node_modules\\/(bullmq|ioredis|selfsigned)\\//.exec(resolved.url)?.[1];
        if (name) loaded.add(name);
        return resolved;
      },
    });
    await import(${JSON.stringify(entry)});
    process.stdout.write(JSON.stringify([...loaded].sort()));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--conditions=credfwd-source', '--input-type=module', '--eval', probe], { cwd: ROOT, timeout: 30_000 });
  return JSON.parse(stdout) as string[];
}

test('@credfwd/coordinator (the embedded API) loads neither bullmq nor ioredis, nor selfsigned before it makes a certificate', async (t) => {
  t.deepEqual(await heavyPackagesLoadedBy('@credfwd/coordinator'), []);
});

test('@credfwd/coordinator/service loads bullmq and ioredis: the probe above can see them', async (t) => {
  t.deepEqual(await heavyPackagesLoadedBy('@credfwd/coordinator/service'), ['bullmq', 'ioredis']);
});
