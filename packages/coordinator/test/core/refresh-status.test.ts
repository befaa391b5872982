import test from 'ava';
import { CredfwdError } from '@credfwd/shared';
import { failedRefreshStatus, refreshErrorOf, refreshStatusFromJson, refreshStatusToJson, refreshedStatus } from '../../src/core/refresh-status.ts';

const AT = new Date('2026-12-01T10:00:00.000Z');

test('a refresh status survives JSON (what the service keeps in Redis) whole, failure and absent fields included', (t) => {
  const scheduled = refreshedStatus(new Date('2026-12-01T11:00:00.000Z'), AT, new Date('2026-12-01T10:30:00.000Z'));
  t.deepEqual(refreshStatusFromJson(refreshStatusToJson(scheduled)), scheduled);
  const denied = refreshErrorOf(new CredfwdError('STS_ACCESS_DENIED', 'AccessDenied', 'grant sts:AssumeRole'), AT);
  const stuck = failedRefreshStatus(scheduled, denied, undefined);
  t.deepEqual(refreshStatusFromJson(JSON.parse(JSON.stringify(refreshStatusToJson(stuck)))), stuck);
});
