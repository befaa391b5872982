import test from 'ava';
import { AccessPolicy, ADMIN_PRINCIPAL, type CreateAsk, type Principal } from '../../src/service/access-policy.ts';
import { parsePolicy } from '../../src/service/policy-file.ts';

const POLICY = parsePolicy([
  'rules:',
  '  - name: ml-roles',
  '    groups: [ml]',
  '    modes: [role, none]',
  '    roles: ["arn:aws:iam::123456789012:role/ml-*"]',
  '    maxDurationSeconds: 7200',
  '    maxWorkers: 8',
  '    scopes: ["s3://ml-data/*", "s3://ml-ref/*:read"]',
  '  - principals: [carol]',
  '    modes: [forward]',
].join('\n'), 'p.yaml');

const alice: Principal = { name: 'alice', groups: ['ml'], via: 'token' };
const ask = (over: Partial<CreateAsk>): CreateAsk => ({ mode: 'role', roleArn: 'arn:aws:iam::123456789012:role/ml-train', durationSeconds: 3600, workers: 4, scopes: ['s3://ml-data/a:write'], ...over });

function denial(t: import('ava').ExecutionContext, principal: Principal, a: CreateAsk): string {
  const err = t.throws(() => new AccessPolicy(POLICY).authorizeCreate(principal, a), { any: true }) as { code?: string; message: string } | undefined;
  t.is(err?.code, 'POLICY_DENIED');
  return err?.message ?? '';
}

test('authorizeCreate allows what a rule of the principal\'s group allows', (t) => {
  t.notThrows(() => new AccessPolicy(POLICY).authorizeCreate(alice, ask({})));
  t.notThrows(() => new AccessPolicy(POLICY).authorizeCreate(alice, ask({ mode: 'none', scopes: [] })));
});

test('authorizeCreate names the rule and each thing it refuses', (t) => {
  t.regex(denial(t, alice, ask({ roleArn: 'arn:aws:iam::123456789012:role/admin' })), /rule "ml-roles": role arn:aws:iam::123456789012:role\/admin matches none/);
  t.regex(denial(t, alice, ask({ durationSeconds: 14400 })), /duration 14400s is over its maxDurationSeconds 7200/);
  t.regex(denial(t, alice, ask({ workers: 9 })), /9 workers is over its maxWorkers 8/);
  t.regex(denial(t, alice, ask({ workers: undefined })), /does not say how many/);
  t.regex(denial(t, alice, ask({ scopes: [] })), /no scope/);
  t.regex(denial(t, alice, ask({ scopes: ['s3://ml-ref/x:write'] })), /scope s3:\/\/ml-ref\/x:write is outside/);
  t.regex(denial(t, alice, ask({ mode: 'forward' })), /mode forward is not one of \[role, none\]/);
});

test('authorizeCreate says when no rule applies to the principal', (t) => {
  t.regex(denial(t, { name: 'mallory', groups: [], via: 'oidc' }, ask({})), /no rule of the policy applies to principal mallory/);
});

test('authorizeCreate lets the break-glass admin through, and everyone without a policy', (t) => {
  t.notThrows(() => new AccessPolicy(POLICY).authorizeCreate(ADMIN_PRINCIPAL, ask({ roleArn: 'arn:aws:iam::999999999999:role/x' })));
  t.notThrows(() => new AccessPolicy(undefined).authorizeCreate({ name: 'x', groups: [], via: 'token' }, ask({ workers: 1000 })));
});

test('authorizeOn keeps a cluster to its creator under a policy', (t) => {
  const policy = new AccessPolicy(POLICY);
  t.notThrows(() => policy.authorizeOn(alice, 'alice', 'c-1'));
  t.throws(() => policy.authorizeOn(alice, 'bob', 'c-1'), { message: /belongs to another principal/ });
  t.notThrows(() => policy.authorizeOn(ADMIN_PRINCIPAL, 'bob', 'c-1'));
});
