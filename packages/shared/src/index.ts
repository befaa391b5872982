export { CredfwdError, errorMessage, isCredfwdError, type ErrorCode } from './errors.ts';
export * from './protocol.ts';
export { createJoinToken, formatJoinString, parseJoinString, type JoinInfo } from './join-string.ts';
export {
  computeProof,
  createExchangeKeyPair,
  createNonce,
  deriveSessionKey,
  tokenVerifier,
  verifyProof,
  type ExchangeKeyPair,
  type HandshakeTranscript,
} from './handshake.ts';
export { openJson, sealJson } from './seal.ts';
export { awsCredentialsSchema, maskAccessKeyId, type AwsCredentials } from './credentials.ts';
export {
  buildWorkloadEnv,
  checkEnvironSize,
  cleanLauncherEnv,
  isSecretLookingName,
  redactEnviron,
  reservedNames,
  validateEnviron,
  CREDFWD_VAR_PREFIX,
  MAX_ENVIRON_BYTES,
  OVERRIDING_IDENTITY_VARS,
  IMDS_VARS,
  PROCESS_VARS,
  STATIC_CREDENTIAL_VARS,
  type Env,
  type EndpointInfo,
  type WorkloadEnvInput,
} from './environment.ts';
export { createLogger, type Logger, type LoggerOptions } from './logger.ts';
export { parseDuration } from './duration.ts';
export { TokenBucket, type TokenBucketOptions } from './token-bucket.ts';
export { monotonicMs } from './monotonic-clock.ts';
export { utcIsoString } from './utc-iso.ts';
export { reportError, type ReportOptions } from './report-error.ts';
export { certificatePin, presentsPin } from './certificate-pin.ts';
export { secretsEqual } from './secrets-equal.ts';
export { CONTAINER_ENDPOINT_HOSTS, endpointOrigin, parseEndpointListen, type EndpointListen } from './endpoint-listen.ts';
