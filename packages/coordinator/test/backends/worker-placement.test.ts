import test from 'ava';
import { launchBackendFor } from '../../src/backends/index.ts';
import { LocalBackend } from '../../src/backends/local/index.ts';

test('launchBackendFor takes endpointListen and imdsV1 for local and SSH workers', (t) => {
  t.true(launchBackendFor({ workers: 1, endpointListen: '169.254.170.2:8080' }, 'endpoint') instanceof LocalBackend);
  t.true(launchBackendFor({ workers: 1, imdsV1: true }, 'imds') instanceof LocalBackend);
  t.notThrows(() => launchBackendFor({ hosts: ['h1'], endpointListen: '[fd00:ec2::23]:80' }, 'endpoint'));
});

test('launchBackendFor refuses, with CONFIG_INVALID and the hosts SDKs accept, an endpointListen they would not fetch from', (t) => {
  for (const endpointListen of ['0.0.0.0', '172.17.0.1', '127.0.0.1']) {
    const err = t.throws(() => launchBackendFor({ workers: 1, endpointListen }, 'endpoint'), { code: 'CONFIG_INVALID', message: /endpointListen/ }, endpointListen);
    t.regex((err as { hint?: string } | undefined)?.hint ?? '', /169\.254\.170\.2/);
  }
});

test('launchBackendFor refuses endpointListen and imdsV1 beside a backend of the caller\'s, which starts its agents itself', (t) => {
  const backend = new LocalBackend({ count: 0 });
  t.throws(() => launchBackendFor({ backend, imdsV1: true }, 'imds'), { code: 'CONFIG_INVALID' });
  t.throws(() => launchBackendFor({ backend, endpointListen: '169.254.170.2' }, 'endpoint'), { code: 'CONFIG_INVALID' });
});

test('launchBackendFor refuses endpointListen and imdsV1 for a cluster of another delivery, which would ignore them', (t) => {
  t.throws(() => launchBackendFor({ workers: 1, endpointListen: '169.254.170.2' }, 'env'), { code: 'CONFIG_INVALID', message: /endpointListen applies to endpoint delivery, not env/ });
  t.throws(() => launchBackendFor({ workers: 1, endpointListen: '169.254.170.2' }, 'imds'), { code: 'CONFIG_INVALID' });
  t.throws(() => launchBackendFor({ workers: 1, imdsV1: true }, 'endpoint'), { code: 'CONFIG_INVALID', message: /imdsV1 applies to imds delivery, not endpoint/ });
  t.throws(() => launchBackendFor({ workers: 1, imdsV1: true }, 'none'), { code: 'CONFIG_INVALID' });
  t.true(launchBackendFor({ workers: 1, imdsV1: false }, 'env') instanceof LocalBackend, 'false asks for nothing');
});
