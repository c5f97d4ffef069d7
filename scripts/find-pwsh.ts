// Finds PowerShell 7 for the project's scripts: EXMIT_POWERSHELL, pwsh on PATH, or .tools/pwsh/pwsh.
import { existsSync } from 'node:fs';
import path from 'node:path';

/** The pwsh executable the tests and benchmarks use. */
export function findPwsh(root: string): string {
  const fromEnv = process.env['EXMIT_POWERSHELL'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir !== '' && existsSync(path.join(dir, 'pwsh'))) return path.join(dir, 'pwsh');
  }
  const local = path.join(root, '.tools', 'pwsh', 'pwsh');
  if (existsSync(local)) return local;
  return 'pwsh';
}
