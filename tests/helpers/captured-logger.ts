// One implementation for every test: the worker agent's package tests need the same thing.
export { capturedLogger, type CapturedLogger } from '../../packages/worker-agent/test/helpers/captured-logger.ts';
