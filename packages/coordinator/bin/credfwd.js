#!/usr/bin/env -S node --
import '../src/cli.ts';
