#!/usr/bin/env node
// Thin bin: check the Node version, then hand over to the built entry.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(`exmit: needs Node.js 22.12 or later; this is ${process.version}\n  Install a current Node.js LTS, or run exmit through npx in its package folder.\n`);
  process.exit(1);
}
const { main } = await import('../dist/cli.js');
process.exitCode = await main(process.argv);
