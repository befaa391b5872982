#!/usr/bin/env node
// The one-file agent that `pnpm build` writes: what ships to workers is what this runs.
import '../dist/credfwd-agent.mjs';
