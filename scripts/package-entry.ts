// The main script of exmit.exe (bundled by scripts/package.ts): what bin/exmit.js is for the npm package.
import { main } from '../src/cli.ts';
import { VERSION } from '../src/version.ts';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  // The first line is what the Node CLI prints; the second says which Node this executable carries.
  process.stdout.write(`${VERSION}\nNode.js ${process.version} ${process.platform}-${process.arch} (single executable)\n`);
} else {
  main(process.argv).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`exmit: internal error: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
