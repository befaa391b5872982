import type { StsFault } from './sts-counter.ts';

/**
 * STS errors as AWS answers them: the HTTP status, `<Code>` and message text
 * of the real service (STS API reference, "Common Errors" and each action's
 * "Errors"), for the fault-injecting proxy.
 */
export const STS_FAULTS = {
  accessDenied: {
    status: 403,
    code: 'AccessDenied',
    message: 'User: arn:aws:iam::123456789012:user/launcher is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/batch',
  },
  expiredToken: { status: 400, code: 'ExpiredToken', message: 'The security token included in the request is expired' },
  invalidClientTokenId: { status: 403, code: 'InvalidClientTokenId', message: 'The security token included in the request is invalid.' },
  regionDisabled: {
    status: 403,
    code: 'RegionDisabledException',
    message: 'STS is not activated in this region for account:123456789012. Your account administrator can activate STS in this region using the IAM Console.',
  },
  throttling: { status: 400, code: 'Throttling', message: 'Rate exceeded' },
  serviceUnavailable: { status: 503, code: 'ServiceUnavailable', message: 'Service is unable to handle request.' },
} as const satisfies Record<string, StsFault>;
