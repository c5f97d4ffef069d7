// Runs exmit commands in this process against one real engine shared by the whole test file: the
// same code path as the CLI (argument parsing, the command, error printing, the exit code) without a
// Node and a PowerShell start per case. Spawn the CLI (support/cli.ts) where the process itself is
// under test: signals, the bin, environment variables, one engine per run.
import { after } from 'node:test';
import { main } from '../../src/cli.ts';
import { startEngine, type EngineSession } from '../../src/powershell/door.ts';
import type { Engine, EngineOptions } from '../../src/context.ts';
import type { CliRun } from './cli.ts';

// As runCli does: no colour.
process.env['NO_COLOR'] = '1';

/** One real engine for a test file, restarted if a case killed it; closed when the file's tests end. */
export class SharedEngine {
  private session: EngineSession | null = null;
  /** How many engines were started (a case that kills one makes the next start another). */
  starts = 0;

  /** The factory commands get: the shared engine, whose close() the run cannot call. */
  readonly factory = (options: EngineOptions): Engine => {
    if (this.session === null || !this.session.alive) {
      this.session = startEngine({ powershell: options.powershell, timeoutMs: options.timeoutMs });
      this.starts++;
    }
    const session = this.session;
    return { call: (op, request, callOptions) => session.call(op, request, callOptions), close: async () => {} };
  };

  /** The running engine, if any. */
  get current(): EngineSession | null {
    return this.session;
  }

  /** Closes the engine the way a run does. */
  async close(): Promise<void> {
    await this.session?.close();
  }
}

/** A shared engine closed after the file's tests. */
export function sharedEngine(): SharedEngine {
  const shared = new SharedEngine();
  after(() => shared.close());
  return shared;
}

/** Runs `exmit ...args` in this process with the shared engine; what it printed and its exit code. */
export async function runInProcess(shared: SharedEngine, args: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await main(['node', 'exmit', ...args], {
    output: { stdout: (t) => { stdout += t; }, stderr: (t) => { stderr += t; }, stderrIsTty: false },
    startEngine: shared.factory,
  });
  return { code, stdout, stderr };
}
