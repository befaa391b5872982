/**
 * The first lines of the one-file agent (scripts/build.ts). ws and pino are
 * CommonJS and call require() at run time; an ES module has none of its own.
 * The benchmark's ES-module floor starts with the same lines.
 */
export const AGENT_BUNDLE_BANNER = "import { createRequire as credfwdCreateRequire } from 'node:module';\nconst require = credfwdCreateRequire(import.meta.url);";
