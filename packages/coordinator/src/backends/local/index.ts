export { LocalBackend, LOCAL_HOST, type LocalBackendOptions } from './local-backend.ts';
