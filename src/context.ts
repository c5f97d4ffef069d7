/**
 * The run context: what a command gets from the entry, so commands never import cli.ts and tests
 * can run them in-process: where output goes, the exit code the command decides, and how the run's
 * one engine is started.
 */
import type { EngineEvent, OpName, Requests, Results } from './powershell/protocol.ts';

/** Per-call options of an engine request. */
export interface CallOptions {
  /** Called with each progress event of this request (each also resets its timer). */
  onEvent?: ((event: EngineEvent) => void) | undefined;
  /** Overrides the operation's default timeout (OPERATIONS in src/powershell/protocol.ts). */
  timeoutMs?: number | undefined;
}

/** The operations a command may call (exit belongs to close). */
export type CallableOp = Exclude<OpName, 'exit'>;

/** The run's PowerShell engine: checked requests, and a clean close. */
export interface Engine {
  /** Sends one request and returns its checked result; an engine error answer becomes an ExmitError of its kind. */
  call<O extends CallableOp>(op: O, request: Requests[O], options?: CallOptions): Promise<Results[O]>;
  /** Asks the engine to exit and waits for it (kills it only when it hangs or misbehaves). */
  close(): Promise<void>;
}

/** How the engine is started. */
export interface EngineOptions {
  /** PowerShell executable; default: Windows PowerShell 5.1 by absolute path on Windows, `pwsh` elsewhere. */
  powershell?: string | undefined;
  /** Milliseconds every request may take (overrides each operation's default: EXMIT_TIMEOUT_SECONDS). */
  timeoutMs?: number | undefined;
  /** The engine script (tests start fake engines). */
  scriptPath?: string | undefined;
  /** Called with each stderr line the engine writes (for --verbose). */
  onStderr?: ((line: string) => void) | undefined;
  /** Called once with the PowerShell and the script the engine is started with (for --verbose). */
  onStart?: ((executable: string, script: string) => void) | undefined;
  /** Called with every progress event of every request (for --verbose). */
  onEvent?: ((event: EngineEvent) => void) | undefined;
  /** Milliseconds close() waits for the exit answer, then for the process to end, before it kills it (default CLOSE_GRACE_MS). */
  closeGraceMs?: number | undefined;
}

/** Starts an engine (the door's startEngine, or a test's shared engine). */
export type EngineFactory = (options: EngineOptions) => Engine;

/** Where a run writes: stdout is the result, stderr the conversation. */
export interface RunOutput {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Whether stderr is a terminal (spinners, colour). */
  stderrIsTty: boolean;
}

/** What a command gets from the entry, and the exit code it hands back. */
export interface RunContext {
  /** The exit code the command decided. */
  exitCode: number;
  /** Starts the run's engine. */
  startEngine: EngineFactory;
  output: RunOutput;
}

/** The process's own stdout and stderr. */
export function processOutput(): RunOutput {
  return {
    stdout: (text) => {
      process.stdout.write(text);
    },
    stderr: (text) => {
      process.stderr.write(text);
    },
    stderrIsTty: process.stderr.isTTY === true,
  };
}
