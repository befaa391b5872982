#!/usr/bin/env -S node --
// The built CLI; `node --conditions=credfwd-source` runs its TypeScript sources instead.
import '@credfwd/coordinator/cli';
