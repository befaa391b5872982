import test from 'ava';
import { parseEndpointListen, type CredfwdError } from '@credfwd/shared';
import { parseCommandLine } from '../src/command-line.ts';

test('parseEndpointListen takes the hosts AWS SDKs accept over http, with or without a port', (t) => {
  t.deepEqual(parseEndpointListen('169.254.170.2'), { host: '169.254.170.2', port: 0 });
  t.deepEqual(parseEndpointListen('169.254.170.23:8080'), { host: '169.254.170.23', port: 8080 });
  t.deepEqual(parseEndpointListen('fd00:ec2::23'), { host: 'fd00:ec2::23', port: 0 });
  t.deepEqual(parseEndpointListen('[FD00:EC2::23]:80'), { host: 'fd00:ec2::23', port: 80 });
});

test('parseEndpointListen refuses, with USAGE and a hint naming the accepted hosts, any other address', (t) => {
  for (const [value, message] of [
    ['0.0.0.0', /every interface/],
    ['[::]:80', /every interface/],
    ['127.0.0.1', /loopback already/],
    ['localhost:80', /loopback already/],
    ['172.17.0.1', /not an address the AWS SDKs/],
    ['docker0', /not an address the AWS SDKs/],
    ['fd00:ec2::23:80', /not ADDR\[:PORT\]/],
    ['', /not ADDR\[:PORT\]/],
  ] as const) {
    const err = t.throws<CredfwdError>(() => parseEndpointListen(value), { code: 'USAGE', message }, value);
    t.regex(err?.hint ?? '', /169\.254\.170\.2, 169\.254\.170\.23, fd00:ec2::23/, value);
  }
  t.throws(() => parseEndpointListen('169.254.170.2:70000'), { code: 'USAGE', message: /not from 0 to 65535/ });
});

test('join --endpoint-listen is parsed into host and port, absent when not given, and refused when invalid', (t) => {
  const line = parseCommandLine(['join', '--endpoint-listen', '169.254.170.2:9000']);
  t.deepEqual(line.command === 'join' ? line.flags.endpointListen : undefined, { host: '169.254.170.2', port: 9000 });
  const plain = parseCommandLine(['join']);
  t.false(plain.command === 'join' && 'endpointListen' in plain.flags);
  t.throws(() => parseCommandLine(['join', '--endpoint-listen', '0.0.0.0']), { code: 'USAGE' });
});

test('container-env takes --format env|docker, --token-path and the credentials command\'s --url/--token-file', (t) => {
  t.deepEqual(parseCommandLine(['container-env']), { command: 'container-env', flags: { url: undefined, tokenFile: undefined, format: 'env' } });
  t.deepEqual(parseCommandLine(['container-env', '--format', 'docker', '--token-path', '/t', '--url', 'http://127.0.0.1:1/x', '--token-file', '/f']), {
    command: 'container-env',
    flags: { url: 'http://127.0.0.1:1/x', tokenFile: '/f', format: 'docker', tokenPath: '/t' },
  });
  const help = parseCommandLine(['container-env', '--help']);
  t.regex(help.command === 'help' ? help.text : '', /^Usage: credfwd-agent container-env/);
  t.throws(() => parseCommandLine(['container-env', '--format', 'yaml']), { code: 'USAGE', message: /env or docker/ });
  t.throws(() => parseCommandLine(['container-env', '--token-path', 'relative']), { code: 'USAGE', message: /absolute/ });
  t.throws(() => parseCommandLine(['container-env', '--token', 'x']), { code: 'USAGE' });
});
