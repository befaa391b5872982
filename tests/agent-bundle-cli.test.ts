import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { isolatedEnv, runCredfwd } from './helpers/credfwd-cli.ts';

const scratch = (): string => mkdtempSync(join(tmpdir(), 'credfwd-bundle-cli-'));

test('credfwd agent-bundle --out F writes the one-file agent, world-readable (it holds no secret), and prints its size and hash', async (t) => {
  const out = join(scratch(), 'agent.mjs');
  const result = await runCredfwd(['agent-bundle', '--out', out], isolatedEnv());
  t.is(result.code, 0, result.stderr);
  const bytes = readFileSync(out);
  t.is(statSync(out).mode & 0o777, 0o644);
  t.regex(result.stdout, new RegExp(`wrote ${out} \\(${bytes.length} bytes, sha256 ${createHash('sha256').update(bytes).digest('hex')}\\)`));
  t.true(bytes.length > 10_000, 'the whole agent, not a stub');
});

test('credfwd agent-bundle refuses a directory as --out, and an empty --out, with a code and a hint', async (t) => {
  const dir = scratch();
  const intoDir = await runCredfwd(['agent-bundle', '--out', dir], isolatedEnv());
  t.is(intoDir.code, 1);
  t.regex(intoDir.stderr, /^error\[OUTPUT_UNWRITABLE\]: .+ is a directory\nhint: .+credfwd-agent\.mjs/m);
  const empty = await runCredfwd(['agent-bundle', '--out', ''], isolatedEnv());
  t.is(empty.code, 2);
  t.regex(empty.stderr, /^error\[USAGE\]: --out is empty/m);
});
