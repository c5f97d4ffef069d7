// npm run bench: in one run, times `exmit --version` beside a bare Node start and `exmit audit` on the
// bundled example image beside a bare PowerShell start, and prints both ratios (issue 7's targets:
// at most 1.5 each); then catalog parsing of a generated catalog of 10,000 mitigations.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { findPwsh } from './find-pwsh.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const runs = Number(process.env['BENCH_RUNS'] ?? 5);
const pwsh = findPwsh(root);
const example = path.join(root, 'examples', 'e19-cu12-oct22su');

// The bare starts run as exmit runs its engine: without telemetry and update checks, which would
// otherwise add to the baseline (about 50 ms here) and flatter the ratios.
const { QUIET_POWERSHELL } = await import('../src/powershell/door.ts');

function time(label: string, command: string, args: string[], okCodes: number[], input?: string): number {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    const result = spawnSync(command, args, { cwd: root, encoding: 'utf8', input, env: { ...process.env, ...QUIET_POWERSHELL, EXMIT_POWERSHELL: pwsh, NO_COLOR: '1' } });
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (result.error !== undefined || !okCodes.includes(result.status ?? -1)) {
      console.error(`${label}: failed (exit ${result.status}): ${result.error?.message ?? result.stderr}`);
      process.exit(1);
    }
    samples.push(ms);
  }
  samples.sort((a, b) => a - b);
  const median = samples[Math.floor(samples.length / 2)] ?? 0;
  console.log(`${label.padEnd(40)} median ${median.toFixed(0).padStart(6)} ms  (min ${samples[0]?.toFixed(0)}, max ${samples[samples.length - 1]?.toFixed(0)}, ${runs} runs)`);
  return median;
}

console.log(`exmit benchmark on ${process.platform}/${process.arch}, Node ${process.version}, ${runs} runs each`);
const bin = path.join(root, 'bin', 'exmit.js');
const node = time('bare Node start (node -e 0)', process.execPath, ['-e', '0'], [0]);
const version = time('exmit --version', process.execPath, [bin, '--version'], [0]);
const ps = time('bare PowerShell start (pwsh -c exit)', pwsh, ['-NoProfile', '-NonInteractive', '-Command', 'exit 0'], [0]);
// The floor of any PowerShell engine: a script that reads one JSON request and answers it, nothing more.
const floorDir = mkdtempSync(path.join(tmpdir(), 'exmit-bench-floor-'));
const floorScript = path.join(floorDir, 'floor.ps1');
writeFileSync(floorScript, '$r = ConvertFrom-Json -InputObject ([Console]::In.ReadLine())\n[Console]::Out.WriteLine((ConvertTo-Json -InputObject @{ id = $r.id; ok = $true } -Compress))\n');
const floor = time('a script answering one JSON request', pwsh, ['-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File', floorScript], [0], '{"id":1,"op":"preflight"}\n');
rmSync(floorDir, { recursive: true, force: true });
const audit = time('exmit audit --json on the example image', process.execPath, [bin, 'audit', '--json', '--target', `image:${example}`], [0, 3]);
// apply --needed then rollback --all on a fresh copy of the example image: two runs, two PowerShell starts.
const copies = mkdtempSync(path.join(tmpdir(), 'exmit-bench-'));
const cycleSamples: number[] = [];
for (let i = 0; i < runs; i++) {
  const dir = path.join(copies, `img${i}`);
  cpSync(example, dir, { recursive: true });
  const start = process.hrtime.bigint();
  for (const args of [['apply', '--needed', '--yes', '--json', '--target', `image:${dir}`], ['rollback', '--all', '--yes', '--json', '--target', `image:${dir}`]]) {
    const result = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, EXMIT_POWERSHELL: pwsh, NO_COLOR: '1' } });
    if (result.status !== 0) {
      console.error(`${args[0]}: failed (exit ${result.status}): ${result.stderr}`);
      process.exit(1);
    }
  }
  cycleSamples.push(Number(process.hrtime.bigint() - start) / 1e6);
}
rmSync(copies, { recursive: true, force: true });
cycleSamples.sort((a, b) => a - b);
const cycle = cycleSamples[Math.floor(cycleSamples.length / 2)] ?? 0;
console.log(`${'exmit apply --needed + rollback --all'.padEnd(40)} median ${cycle.toFixed(0).padStart(6)} ms  (min ${cycleSamples[0]?.toFixed(0)}, max ${cycleSamples[cycleSamples.length - 1]?.toFixed(0)}, ${runs} runs)`);
console.log(`ratio: exmit --version / node -e 0          = ${(version / node).toFixed(2)}  (target <= 1.5)`);
console.log(`ratio: exmit audit / bare PowerShell start  = ${(audit / ps).toFixed(2)}  (target <= 1.5)`);
console.log(`ratio: one-request script / PowerShell start = ${(floor / ps).toFixed(2)}  (the floor of any PowerShell engine here)`);
console.log(`ratio: apply + rollback / PowerShell start  = ${(cycle / ps).toFixed(2)}  (target <= 2.5; two PowerShell starts alone make 2)`);

const { parseCatalog } = await import('../src/catalog/parse.ts');
const bundled = readFileSync(path.join(root, 'mitigations', 'catalog.xml'), 'utf8');
const big = makeBigCatalog(bundled, 10_000);
const start = process.hrtime.bigint();
const parsed = parseCatalog(big, 'generated-10000.xml', { maxBytes: 512 * 1024 * 1024 });
const parseMs = Number(process.hrtime.bigint() - start) / 1e6;
console.log(`${'parse a catalog of 10,000 mitigations'.padEnd(40)} ${parseMs.toFixed(0).padStart(6)} ms  (${(big.length / 1e6).toFixed(1)} MB, ${parsed.mitigations.length} mitigations)`);

/** Repeats the bundled catalog's entries with new ids until there are `count`. */
function makeBigCatalog(xml: string, count: number): string {
  const entries = [...xml.matchAll(/<mitigation\b[\s\S]*?<\/mitigation>/g)].map((m) => m[0]);
  const head = xml.slice(0, xml.indexOf('<mitigation'));
  const tail = xml.slice(xml.lastIndexOf('</mitigation>') + '</mitigation>'.length);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const entry = entries[i % entries.length] ?? '';
    out.push(entry.replace(/id="([^"]+)"/, (_m, id: string) => `id="${id}-${i}"`).replace(/name="exmit ([^"]+)"/g, (_m, n: string) => `name="exmit ${n}-${i}"`));
  }
  return head + out.join('\n') + tail;
}
