import test from 'ava';
import { attributionOf } from '../../src/core/attribution.ts';

test('attributionOf names the session after the cluster and tags it with cluster and principal', (t) => {
  const a = attributionOf('c-0123456789ab', 'carol@example.com');
  t.is(a.sessionName, 'credfwd-c-0123456789ab');
  t.is(a.federatedName, 'credfwd-c-0123456789ab');
  t.is(a.sourceIdentity, 'carol@example.com');
  t.deepEqual(a.tags, [{ Key: 'credfwd:cluster', Value: 'c-0123456789ab' }, { Key: 'credfwd:principal', Value: 'carol@example.com' }]);
});

test('attributionOf fits a principal to SourceIdentity\'s alphabet and length, never refusing it', (t) => {
  t.is(attributionOf('c-1', 'Zoë Smith/ml (contractor)').sourceIdentity, 'Zo__Smith_ml__contractor_');
  t.is(attributionOf('c-1', 'aws:root').sourceIdentity, 'aws_root', 'SourceIdentity may not start with aws:');
  t.is(attributionOf('c-1', 'x'.repeat(100)).sourceIdentity?.length, 64);
  t.is(attributionOf('c-1', 'a').sourceIdentity, 'a_', 'STS wants at least two characters');
  t.is(attributionOf('c-1', 'Zoë Smith/ml').tags[1]?.Value, 'Zoë Smith/ml', 'tag values allow letters, spaces and slashes');
});

test('attributionOf without a principal tags only the cluster', (t) => {
  const a = attributionOf('c-1', undefined);
  t.is(a.sourceIdentity, undefined);
  t.deepEqual(a.tags, [{ Key: 'credfwd:cluster', Value: 'c-1' }]);
});

test('attributionOf names an ARN principal by its last part in SourceIdentity, and by the whole ARN in the tag', (t) => {
  const user = attributionOf('c-1', 'arn:aws:iam::123456789012:user/erin');
  t.is(user.sourceIdentity, 'erin');
  t.deepEqual(user.tags[1], { Key: 'credfwd:principal', Value: 'arn:aws:iam::123456789012:user/erin' });
  t.is(attributionOf('c-1', 'arn:aws:sts::123456789012:assumed-role/Admin/alice@example.com').sourceIdentity, 'alice@example.com', 'a role session is named by its session name');
  t.is(attributionOf('c-1', 'arn:aws:iam::123456789012:root').sourceIdentity, 'root');
});
