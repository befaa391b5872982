import test from 'ava';
import { agentReport } from '../../src/backends/local/local-backend.ts';

test('agentReport finds the agent\'s error line among its log lines, not its hint (issue 10: AGENT_START_FAILED showed the hint instead of the error)', (t) => {
  const stderr = [
    '{"level":30,"msg":"joining cluster"}',
    '{"level":50,"code":"AGENT_ID_IN_USE","msg":"another agent is connected"}',
    'error[AGENT_ID_IN_USE]: another agent is connected to this cluster under the same agent id',
    'hint: give each agent its own id with --agent-id or CREDFWD_AGENT_ID',
    '',
  ].join('\n');
  t.deepEqual(agentReport(stderr), {
    error: 'error[AGENT_ID_IN_USE]: another agent is connected to this cluster under the same agent id',
    hint: 'give each agent its own id with --agent-id or CREDFWD_AGENT_ID',
  });
});

test('agentReport is undefined when the agent printed no error line, and keeps an error without a hint', (t) => {
  t.is(agentReport('{"level":30,"msg":"joining cluster"}\n'), undefined);
  t.deepEqual(agentReport('error[INTERNAL]: boom'), { error: 'error[INTERNAL]: boom', hint: undefined });
});
