// Runs the built CLI (bin/exmit.js) as a user would, with the Node that runs the tests.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** What a run printed and how it ended. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `exmit ...args` and waits for it; no terminal, no colour unless asked. */
export function runCli(args: string[], options: { env?: Record<string, string>; cwd?: string; input?: string } = {}): CliRun {
  const result = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'exmit.js'), ...args], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    input: options.input ?? '',
    encoding: 'utf8',
    timeout: 180_000,
  });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** A server image shipped with the tests or as the bundled example. */
export function image(name: string): string {
  return name.startsWith('examples/') ? path.join(ROOT, name) : path.join(ROOT, 'test', 'fixtures', 'images', name);
}

/** Parses the one JSON document a --json run printed on stdout. */
export function parseJson<T>(run: CliRun): T {
  try {
    return JSON.parse(run.stdout) as T;
  } catch {
    throw new Error(`stdout is not one JSON document (exit ${run.code}):\n${run.stdout}\nstderr:\n${run.stderr}`);
  }
}

/** True when the text looks like a stack trace (what users must never see for their own mistakes). */
export function hasStackTrace(text: string): boolean {
  return /^\s+at .+\(.+:\d+:\d+\)$/m.test(text) || /^\s+at .+:\d+:\d+$/m.test(text);
}
