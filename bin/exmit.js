#!/usr/bin/env node
// Thin bin: check the Node version, answer --version without loading anything, then hand over to the built entry.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(`exmit: needs Node.js 22.12 or later; this is ${process.version}\n  Install a current Node.js LTS, or run exmit through npx in its package folder.\n`);
  process.exit(1);
}
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  // The same answer as src/version.ts, without loading the program (issue 7: --version at most 1.5x `node -e 0`).
  const { readFileSync } = await import('node:fs');
  process.stdout.write(`${JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version}\n`);
} else {
  const { main } = await import('../dist/cli.js');
  process.exitCode = await main(process.argv);
}
