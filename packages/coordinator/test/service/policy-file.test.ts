import test from 'ava';
import { parsePolicy } from '../../src/service/policy-file.ts';

const HASH = 'a'.repeat(64);

function refusal(t: import('ava').ExecutionContext, text: string, file = 'policy.yaml'): string {
  const err = t.throws(() => parsePolicy(text, file), { any: true }) as { code?: string; message: string } | undefined;
  t.is(err?.code, 'POLICY_INVALID');
  return err?.message ?? '';
}

test('parsePolicy reads the YAML form the design shows', (t) => {
  const doc = parsePolicy([
    'principals:',
    `  alice: { tokenSha256: "${HASH}", groups: [ml] }`,
    'oidc: { issuer: "https://idp.example.com", audience: credfwd, principalClaim: email, groupsClaim: groups }',
    'rules:',
    '  - groups: [ml]',
    '    modes: [role, none]',
    '    roles: ["arn:aws:iam::123456789012:role/ml-*"]',
    '    maxDurationSeconds: 14400',
    '    maxWorkers: 64',
    '    scopes: ["s3://ml-data/*"]',
  ].join('\n'), 'p.yaml');
  t.deepEqual(doc.principals.alice, { tokenSha256: HASH, groups: ['ml'] });
  t.is(doc.rules[0]?.maxWorkers, 64);
});

test('parsePolicy reads JSON too', (t) => {
  const doc = parsePolicy(JSON.stringify({ rules: [{ principals: ['*'], modes: ['none'] }] }), 'p.json');
  t.deepEqual(doc.rules[0]?.modes, ['none']);
});

test('parsePolicy names the line of a syntax typo', (t) => {
  const message = refusal(t, 'rules:\n  - principals: [alice\n    modes: [role]\n');
  t.regex(message, /line \d+/);
});

test('parsePolicy names the line and path of an unknown field', (t) => {
  const message = refusal(t, 'rules:\n  - principals: [alice]\n    mode: [role]\n');
  t.regex(message, /line 3, rules\[0\]\.mode: unknown field "mode"/);
});

test('parsePolicy names the path of a misspelled mode in JSON', (t) => {
  const message = refusal(t, '{\n  "rules": [\n    { "principals": ["alice"], "modes": ["forwrd"] }\n  ]\n}\n', 'p.json');
  t.regex(message, /line 3, rules\[0\]\.modes\[0\]/);
});

test('parsePolicy refuses a role pattern that matches nothing', (t) => {
  const message = refusal(t, 'rules:\n  - principals: [alice]\n    roles: ["arn:aws:iam::12345:role/ml-*"]\n');
  t.regex(message, /line 3, rules\[0\]\.roles\[0\]: role pattern .* matches no IAM role ARN/);
  refusal(t, 'rules:\n  - principals: [alice]\n    roles: ["arn:aws:iam::123456789012:user/ml-*"]\n');
});

test('parsePolicy accepts role patterns with wildcards where ARNs vary', (t) => {
  t.notThrows(() => parsePolicy('rules:\n  - principals: [a]\n    roles: ["arn:aws:iam::*:role/*", "arn:aws*:iam::1234*:role/x", "*"]\n', 'p.yaml'));
});

test('parsePolicy refuses a rule that denies everything', (t) => {
  t.regex(refusal(t, 'rules:\n  - principals: [alice]\n    modes: []\n'), /rules\[0\]\.modes: the rule allows no mode/);
  t.regex(refusal(t, 'rules:\n  - principals: [alice]\n    modes: [role]\n    roles: []\n'), /allows no mode/);
  t.regex(refusal(t, 'rules:\n  - modes: [role]\n'), /line 2, rules\[0\]: the rule names no principal and no group/);
});

test('parsePolicy refuses a token that is not a SHA-256, without quoting it', (t) => {
  const message = refusal(t, 'principals:\n  bob: { tokenSha256: "s3cret-token-value" }\n');
  t.regex(message, /principals\.bob\.tokenSha256/);
  t.false(message.includes('s3cret-token-value'));
});
