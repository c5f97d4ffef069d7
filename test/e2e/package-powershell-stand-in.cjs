// Stands in for powershell.exe in the Wine smoke test (test/e2e/package.test.ts), built into a
// Windows executable like exmit.exe. Wine has no PowerShell (its powershell.exe is a stub that exits
// 0), yet on Windows exmit checks its state folder's ACL through the engine before it reads a
// catalog. This answers the two requests that check makes (whoami; security: every path missing) and
// records the script exmit handed it, so the test can check that exmit.exe ran its embedded engine
// from a private temporary file. Anything else it is asked is an error: it is no engine.
'use strict';
const { createHash } = require('node:crypto');
const { appendFileSync, readFileSync } = require('node:fs');
const { createInterface } = require('node:readline');

const log = process.env.EXMIT_STAND_IN_LOG;
const note = (record) => {
  if (log !== undefined) appendFileSync(log, `${JSON.stringify(record)}\n`);
};
const args = process.argv.slice(2);
const expected = ['-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File'];
if (args.length !== expected.length + 1 || expected.some((arg, i) => args[i] !== arg)) {
  note({ error: 'unexpected arguments', args });
  process.exit(9);
}
const script = args[expected.length];
note({ script, sha256: createHash('sha256').update(readFileSync(script)).digest('hex') });

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const request = JSON.parse(line);
  const answer = (result) => process.stdout.write(`${JSON.stringify({ id: request.id, ok: true, result })}\n`);
  note({ op: request.op });
  if (request.op === 'whoami') answer({ sid: 'S-1-5-21-1004336348-1177238915-682003330-500', elevated: true });
  else if (request.op === 'security') answer({ entries: request.paths.map((path) => ({ path, kind: 'missing', sddl: null })) });
  else if (request.op === 'exit') {
    answer({});
    lines.close();
  } else {
    process.stdout.write(`${JSON.stringify({ id: request.id, ok: false, error: { kind: 'internal', message: `the Wine stand-in does not serve ${request.op}`, file: null } })}\n`);
  }
});
