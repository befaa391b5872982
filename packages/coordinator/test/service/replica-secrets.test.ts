import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { loadReplicaSecrets } from '../../src/service/replica-secrets.ts';

const STATE_KEY = Buffer.alloc(32, 7).toString('base64url');
const ADMIN_TOKEN = 'a'.repeat(43);

test('loadReplicaSecrets reads the state key and admin token from the environment', (t) => {
  const secrets = loadReplicaSecrets({}, { CREDFWD_STATE_KEY: STATE_KEY, CREDFWD_ADMIN_TOKEN: ADMIN_TOKEN });
  t.deepEqual(Buffer.from(secrets.stateKey), Buffer.alloc(32, 7));
  t.is(secrets.adminToken, ADMIN_TOKEN);
});

test('loadReplicaSecrets prefers files, trimmed of their newline', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credfwd-secrets-'));
  writeFileSync(join(dir, 'state'), `${STATE_KEY}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'admin'), `${ADMIN_TOKEN}\n`, { mode: 0o600 });
  const secrets = loadReplicaSecrets({ stateKeyFile: join(dir, 'state'), adminTokenFile: join(dir, 'admin') }, {});
  t.is(secrets.adminToken, ADMIN_TOKEN);
  t.is(secrets.stateKey.length, 32);
});

test('loadReplicaSecrets refuses a missing or malformed secret with CONFIG_INVALID, never echoing it', (t) => {
  t.throws(() => loadReplicaSecrets({}, { CREDFWD_ADMIN_TOKEN: ADMIN_TOKEN }), { code: 'CONFIG_INVALID', message: /CREDFWD_STATE_KEY is not set/ });
  t.throws(() => loadReplicaSecrets({}, { CREDFWD_STATE_KEY: STATE_KEY }), { code: 'CONFIG_INVALID', message: /CREDFWD_ADMIN_TOKEN is not set/ });
  const short = Buffer.alloc(16, 1).toString('base64url');
  const error = t.throws(() => loadReplicaSecrets({}, { CREDFWD_STATE_KEY: short, CREDFWD_ADMIN_TOKEN: ADMIN_TOKEN }), { code: 'CONFIG_INVALID' });
  t.false(error?.message.includes(short));
  t.throws(() => loadReplicaSecrets({}, { CREDFWD_STATE_KEY: `${STATE_KEY}!`, CREDFWD_ADMIN_TOKEN: ADMIN_TOKEN }), { code: 'CONFIG_INVALID' });
  const weak = t.throws(() => loadReplicaSecrets({}, { CREDFWD_STATE_KEY: STATE_KEY, CREDFWD_ADMIN_TOKEN: 'hunter2' }), { code: 'CONFIG_INVALID' });
  t.false(weak?.message.includes('hunter2'));
  t.throws(() => loadReplicaSecrets({ stateKeyFile: '/nonexistent/credfwd-state' }, {}), { code: 'CONFIG_INVALID' });
});
