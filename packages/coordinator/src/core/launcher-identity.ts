import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@aws-sdk/types';
import { CredfwdError } from '@credfwd/shared';

/**
 * Resolves the launcher's identity through the SDK's default chain (env,
 * SSO, profiles, web identity, container, instance metadata), as the AWS CLI
 * would. A fresh chain per call, so temporary credentials renewed by SSO or
 * a credential process are picked up at each refresh.
 */
export async function resolveLauncherCredentials(provider?: AwsCredentialIdentityProvider): Promise<AwsCredentialIdentity> {
  try {
    return await (provider ?? fromNodeProviderChain())();
  } catch (cause) {
    throw new CredfwdError(
      'LAUNCHER_NO_CREDENTIALS',
      'no AWS credentials found for the launcher',
      'log in first (aws sso login, aws configure, AWS_PROFILE or AWS_ACCESS_KEY_ID), or launch with --credentials none',
      { cause },
    );
  }
}

/** True when the launcher holds temporary credentials (SSO, role, IRSA), which STS will not exchange again. */
export function isTemporary(credentials: AwsCredentialIdentity): boolean {
  return Boolean(credentials.sessionToken);
}
