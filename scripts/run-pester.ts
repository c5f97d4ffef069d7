// Runs the PowerShell side of the tests (5.1 syntax check + Pester) with the pwsh the project uses,
// after building engine/exmit-engine.ps1 from engine/src so that the tests never see a stale engine.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildEngine } from './build-engine.ts';
import { findPwsh } from './find-pwsh.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
buildEngine(root);
const pwsh = findPwsh(root);
const result = spawnSync(pwsh, ['-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File', 'scripts/run-pester.ps1'], { cwd: root, stdio: 'inherit' });
if (result.error) {
  console.error(`run-pester: cannot start ${pwsh}: ${result.error.message} (run "npm run tools")`);
  process.exit(1);
}
process.exit(result.status ?? 1);
