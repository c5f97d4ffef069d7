/**
 * The one door to PowerShell: the only module that starts a process. It starts the engine once per
 * run and talks to it in JSON lines; every way the child can fail becomes one ExmitError.
 */
import { createInterface } from 'node:readline';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { ExitCode, ExmitError, inputError } from '../errors.ts';

/** How the engine is started. */
export interface EngineOptions {
  /** PowerShell executable; default: Windows PowerShell 5.1 by absolute path on Windows, `pwsh` elsewhere. */
  powershell?: string | undefined;
  /** Milliseconds one request may take before the engine is killed. */
  timeoutMs?: number | undefined;
  /** Extra arguments after -File script (tests inject faults through fake engines). */
  scriptPath?: string | undefined;
  /** Called with each stderr line the engine writes (for --verbose). */
  onStderr?: ((line: string) => void) | undefined;
}

/** Where a request is aimed: the live server or a server image folder. */
export type EngineTarget = { kind: 'local' } | { kind: 'image'; path: string };

/** The engine's error answer. */
interface EngineErrorAnswer {
  kind: string;
  message: string;
  file: string | null;
}

type Answer = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: EngineErrorAnswer };

const DEFAULT_TIMEOUT_MS = 120_000;

/** The engine script shipped with the package, found from this module (works from src/ and dist/). */
export function engineScriptPath(): string {
  return fileURLToPath(new URL('../../engine/exmit-engine.ps1', import.meta.url));
}

/** The PowerShell to start: --powershell, else EXMIT_POWERSHELL, else the platform's default. */
export function resolvePowerShell(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform, arch: string = process.arch): string {
  if (explicit !== undefined && explicit !== '') return explicit;
  const fromEnv = env['EXMIT_POWERSHELL'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (platform === 'win32') {
    // Never by name: Windows searches the current folder first. A 32-bit Node reaches the 64-bit
    // PowerShell through Sysnative.
    const root = env['SystemRoot'] ?? env['windir'] ?? 'C:\\Windows';
    const system = arch === 'ia32' && env['PROCESSOR_ARCHITEW6432'] !== undefined ? 'Sysnative' : 'System32';
    return path.win32.join(root, system, 'WindowsPowerShell', 'v1.0', 'powershell.exe');
  }
  return findOnPath('pwsh', env) ?? bundledTool() ?? 'pwsh';
}

function findOnPath(name: string, env: NodeJS.ProcessEnv): string | null {
  for (const dir of (env['PATH'] ?? '').split(path.delimiter)) {
    if (dir !== '' && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return null;
}

// A development checkout keeps pwsh in .tools/ (scripts/install-tools.sh); an installed package has none.
function bundledTool(): string | null {
  const local = fileURLToPath(new URL('../../.tools/pwsh/pwsh', import.meta.url));
  return existsSync(local) ? local : null;
}

/** The argument list: no profile, no prompts, -File last, data never on the command line. */
export function powerShellArguments(script: string): string[] {
  return ['-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File', script];
}

/** A running engine: one process for the whole run. */
export class EngineSession {
  private readonly child: ResultPromise;
  private readonly executable: string;
  private readonly timeoutMs: number;
  private readonly pending = new Map<number, { resolve: (a: Answer) => void; reject: (e: Error) => void }>();
  private readonly stderrLines: string[] = [];
  private nextId = 1;
  private exited: ExmitError | null = null;
  private closing = false;
  private abandoned = false;

  /** Use startEngine(). */
  constructor(child: ResultPromise, executable: string, timeoutMs: number, onStderr: ((line: string) => void) | undefined) {
    this.child = child;
    this.executable = executable;
    this.timeoutMs = timeoutMs;
    const stdout = child.stdout;
    const stderr = child.stderr;
    if (stdout === null || stderr === null) throw new Error('engine streams are not piped');
    child.stdin?.on('error', () => {
      // EPIPE when the engine died; its exit is reported through onExit.
    });
    createInterface({ input: stdout }).on('line', (line) => this.onLine(line));
    createInterface({ input: stderr }).on('line', (line) => {
      if (this.stderrLines.length < 200) this.stderrLines.push(line);
      onStderr?.(line);
    });
    child.then(
      (result) => this.onExit(result.exitCode, result.signal ?? undefined, result.failed ? result.originalMessage ?? result.shortMessage : undefined, result.code),
      (error: unknown) => this.onExit(undefined, undefined, String(error), undefined),
    );
  }

  /** Sends one request and waits for its answer; an engine error answer becomes an ExmitError. */
  async request<T>(op: string, payload: Record<string, unknown>): Promise<T> {
    if (this.exited !== null) throw this.exited;
    const id = this.nextId++;
    const line = JSON.stringify({ id, op, ...payload });
    const answer = await new Promise<Answer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.abandon();
        reject(inputError(`PowerShell did not answer the ${op} request within ${Math.round(this.timeoutMs / 1000)} s and was stopped`, 'A hung WMI/CIM or IIS call is the usual cause; run again with --verbose to see what it was doing.'));
      }, this.timeoutMs);
      this.pending.set(id, {
        resolve: (a) => { clearTimeout(timer); resolve(a); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      // A failed write means the engine is gone: its exit answers the pending request with the reason.
      this.child.stdin?.write(line + '\n', () => {});
    });
    if (!answer.ok) {
      const where = answer.error.file !== null && answer.error.file !== undefined ? `${answer.error.file}: ` : '';
      throw inputError(`${where}${answer.error.message}`);
    }
    return answer.result as T;
  }

  /** Kills the engine and lets go of its pipes (a hung child's own children may still hold them). */
  private abandon(): void {
    this.abandoned = true;
    this.child.kill('SIGKILL');
    this.child.stdin?.destroy();
    this.child.stdout?.destroy();
    this.child.stderr?.destroy();
  }

  /** Asks the engine to exit and waits for it. */
  async close(): Promise<void> {
    if (this.exited !== null || this.abandoned) return;
    this.closing = true;
    this.child.stdin?.end(JSON.stringify({ op: 'exit' }) + '\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    try {
      await this.child;
    } catch {
      // The exit is reported through onExit; nothing more to do here.
    } finally {
      clearTimeout(timer);
    }
  }

  private onLine(raw: string): void {
    const line = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
    if (line.trim() === '') return;
    let answer: Answer;
    try {
      answer = JSON.parse(line) as Answer;
    } catch {
      this.failAll(inputError(`PowerShell engine wrote something that is not JSON: ${truncate(line)}`, 'A PowerShell profile or module printing to the console is the usual cause; exmit starts PowerShell with -NoProfile.'));
      this.abandon();
      return;
    }
    const waiter = typeof answer.id === 'number' ? this.pending.get(answer.id) : undefined;
    if (waiter === undefined) {
      this.failAll(inputError(`PowerShell engine answered a request that was not asked: ${truncate(line)}`));
      this.abandon();
      return;
    }
    this.pending.delete(answer.id);
    waiter.resolve(answer);
  }

  private onExit(exitCode: number | undefined, signal: string | undefined, message: string | undefined, code: string | undefined): void {
    const error = this.deathError(exitCode, signal, message, code);
    this.exited = error;
    if (this.closing && exitCode === 0) return;
    this.failAll(error);
  }

  private deathError(exitCode: number | undefined, signal: string | undefined, message: string | undefined, code: string | undefined): ExmitError {
    const stderr = this.stderrLines.join('\n');
    if (code === 'ENOENT' || /ENOENT/.test(message ?? '')) {
      return new ExmitError(ExitCode.error, `PowerShell not found: ${this.executable}`, 'Install PowerShell 7 (pwsh) or pass --powershell PATH.');
    }
    if (/UnauthorizedAccess|cannot be loaded because running scripts is disabled|is not digitally signed/i.test(stderr)) {
      return new ExmitError(ExitCode.error, 'PowerShell refused to run exmit\'s engine script: a machine policy forces signed scripts (AllSigned) or disables scripts', 'exmit does not work around execution policy set by Group Policy; ask for an exception for exmit\'s engine folder or run it where the policy allows.');
    }
    if (/ConstrainedLanguage|language mode/i.test(stderr)) {
      return new ExmitError(ExitCode.error, 'PowerShell runs in constrained language mode here, so exmit\'s engine cannot run', 'Application control (WDAC/AppLocker) sets this; exmit does not work around it.');
    }
    const last = this.stderrLines.filter((l) => l.trim() !== '').slice(-1)[0];
    const how = signal !== undefined ? `was killed (${signal})` : exitCode !== undefined ? `exited with code ${exitCode}` : 'could not be started';
    return inputError(`PowerShell (${this.executable}) ${how} before answering${last !== undefined ? `: ${truncate(last)}` : message !== undefined && exitCode === undefined ? `: ${truncate(message)}` : ''}`, 'Run again with --verbose to see what PowerShell wrote.');
  }

  private failAll(error: ExmitError): void {
    for (const [id, waiter] of this.pending) {
      this.pending.delete(id);
      waiter.reject(error);
    }
  }
}

function truncate(text: string): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > 200 ? `${one.slice(0, 200)}...` : one;
}

/** EXMIT_TIMEOUT_SECONDS: how long one engine request may take (slow servers, tests). */
function timeoutFromEnv(): number | undefined {
  const raw = process.env['EXMIT_TIMEOUT_SECONDS'];
  if (raw === undefined || raw === '') return undefined;
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds <= 0) throw inputError(`EXMIT_TIMEOUT_SECONDS="${raw}" is not a positive number of seconds`);
  return seconds * 1000;
}

/** Starts the engine: one PowerShell process that serves every request of this run. */
export function startEngine(options: EngineOptions = {}): EngineSession {
  const executable = resolvePowerShell(options.powershell);
  const script = options.scriptPath ?? engineScriptPath();
  if (!existsSync(script)) throw inputError(`engine script missing: ${script}`, 'The exmit package is incomplete; reinstall it.');
  const child = execa(executable, powerShellArguments(script), {
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    windowsHide: true,
    env: { POWERSHELL_TELEMETRY_OPTOUT: '1', POWERSHELL_UPDATECHECK: 'Off' },
  });
  return new EngineSession(child, executable, options.timeoutMs ?? timeoutFromEnv() ?? DEFAULT_TIMEOUT_MS, options.onStderr);
}

/** Starts the engine, runs `work` with it and always closes it. */
export async function withEngine<T>(options: EngineOptions, work: (engine: EngineSession) => Promise<T>): Promise<T> {
  const engine = startEngine(options);
  try {
    return await work(engine);
  } finally {
    await engine.close();
  }
}

/**
 * An engine started on first use: for commands that need PowerShell only on some platforms (the
 * state folder's ACL on Windows), still at most one process per run.
 */
export class LazyEngine {
  private readonly options: EngineOptions;
  private session: EngineSession | null = null;

  constructor(options: EngineOptions) {
    this.options = options;
  }

  /** The engine, started now if it was not yet. */
  get(): EngineSession {
    this.session ??= startEngine(this.options);
    return this.session;
  }

  /** Whether the engine was started. */
  get started(): boolean {
    return this.session !== null;
  }

  /** Closes the engine if it was started. */
  async close(): Promise<void> {
    if (this.session !== null) await this.session.close();
  }
}

/** Runs `work` with a lazily started engine and closes it if it was started. */
export async function withLazyEngine<T>(options: EngineOptions, work: (engine: LazyEngine) => Promise<T>): Promise<T> {
  const engine = new LazyEngine(options);
  try {
    return await work(engine);
  } finally {
    await engine.close();
  }
}
