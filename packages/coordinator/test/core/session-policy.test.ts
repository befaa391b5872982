import test from 'ava';
import { parseScope } from '../../src/core/scope.ts';
import { buildSessionPolicy } from '../../src/core/session-policy.ts';

test('parseScope reads bucket, prefix and access; read by default', (t) => {
  t.deepEqual(parseScope('s3://ml-data'), { bucket: 'ml-data', prefix: '', access: 'read' });
  t.deepEqual(parseScope('s3://ml-data/team-a/x:write'), { bucket: 'ml-data', prefix: 'team-a/x', access: 'write' });
  for (const bad of ['s3://ML/x', 'https://b/x', 's3://b/*', 's3://b/x:admin', 's3://']) t.throws(() => parseScope(bad), { message: /is not s3:\/\/bucket/ }, bad);
});

test('buildSessionPolicy: a read scope lists its prefix and reads under it, a write scope also writes', (t) => {
  const doc = JSON.parse(buildSessionPolicy([parseScope('s3://bkt/p/'), parseScope('s3://wrt/out:write')])!) as { Statement: { Action: string | string[]; Resource: string; Condition?: unknown }[] };
  t.deepEqual(doc.Statement[0], { Effect: 'Allow', Action: 's3:ListBucket', Resource: 'arn:aws:s3:::bkt', Condition: { StringLike: { 's3:prefix': ['p/*'] } } });
  t.deepEqual(doc.Statement[1]?.Action, ['s3:GetObject', 's3:GetObjectVersion']);
  t.is(doc.Statement[1]?.Resource, 'arn:aws:s3:::bkt/p/*');
  t.true((doc.Statement[3]?.Action as string[]).includes('s3:PutObject'));
});

test('buildSessionPolicy merges a user policy\'s statements and refuses one that is not a policy', (t) => {
  const user = JSON.stringify({ Version: '2012-10-17', Statement: { Effect: 'Allow', Action: 'sqs:SendMessage', Resource: '*' } });
  const doc = JSON.parse(buildSessionPolicy([], user)!) as { Statement: unknown[] };
  t.is(doc.Statement.length, 1);
  t.is(buildSessionPolicy([]), undefined);
  t.throws(() => buildSessionPolicy([], '{"Version": 1'), { code: 'CONFIG_INVALID' } as never);
  t.throws(() => buildSessionPolicy([], '{"Statement": []}'), { message: /no Statement/ });
});
