import { readFileSync } from 'node:fs';
import { LineCounter, isMap, isNode, isScalar, parseDocument, type Document } from 'yaml';
import { CredfwdError } from '@credfwd/shared';
import { policySchema, semanticIssues, type PolicyDocument, type PolicyIssue } from './policy-schema.ts';

/** Issues a POLICY_INVALID lists before it says "and N more". */
const MAX_LISTED = 10;

function pathText(path: (string | number)[]): string {
  return path.length === 0 ? '(top level)' : path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/** The 1-based line where the node at `path` (or, for an unknown key, the key itself) starts. */
function lineOf(doc: Document, counter: LineCounter, path: (string | number)[], key?: string): number | undefined {
  const node = path.length === 0 ? doc.contents : doc.getIn(path, true);
  if (key !== undefined && isMap(node)) {
    const pair = node.items.find((p) => isScalar(p.key) && p.key.value === key);
    if (pair && isNode(pair.key) && pair.key.range) return counter.linePos(pair.key.range[0]).line;
  }
  return isNode(node) && node.range ? counter.linePos(node.range[0]).line : undefined;
}

function invalid(file: string, lines: string[]): CredfwdError {
  const listed = lines.slice(0, MAX_LISTED).join('; ');
  const more = lines.length > MAX_LISTED ? `; and ${lines.length - MAX_LISTED} more` : '';
  return new CredfwdError('POLICY_INVALID', `policy ${file}: ${listed}${more}`, 'fix the policy file; the README section "Governance" shows its form');
}

/**
 * Parses a policy file's text, JSON or YAML alike (YAML 1.2 reads JSON), and
 * checks it against the schema and for rules that cannot work. Every problem
 * is named by its line and its path (`rules[0].roles[1]`); values are not
 * quoted back unless they are patterns, which hold no secret.
 */
export function parsePolicy(text: string, file: string): PolicyDocument {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw invalid(file, doc.errors.map((e) => `line ${counter.linePos(e.pos[0]).line}: ${e.message.split('\n')[0]}`));
  }
  const parsed = policySchema.safeParse(doc.toJS() ?? {});
  const issues: (PolicyIssue & { key?: string })[] = parsed.success
    ? semanticIssues(parsed.data)
    : parsed.error.issues.flatMap((issue) => {
      const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
      if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => ({ path, key, message: `unknown field ${JSON.stringify(key)}` }));
      return [{ path, message: issue.message }];
    });
  if (issues.length > 0 || !parsed.success) {
    throw invalid(file, issues.map((issue) => {
      const line = lineOf(doc, counter, issue.path, issue.key);
      const where = pathText(issue.key === undefined ? issue.path : [...issue.path, issue.key]);
      return `${line === undefined ? '' : `line ${line}, `}${where}: ${issue.message}`;
    }));
  }
  return parsed.data;
}

/** Reads and checks a policy file; POLICY_INVALID when it cannot be read or is wrong. */
export function readPolicyFile(file: string): PolicyDocument {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new CredfwdError('POLICY_INVALID', `cannot read policy ${file}`, 'check the --policy path and that this user may read it', { cause });
  }
  return parsePolicy(text, file);
}
