#!/usr/bin/env node
// Thin bin: all work happens in the built entry.
import { main } from '../dist/cli.js';

process.exitCode = await main(process.argv);
