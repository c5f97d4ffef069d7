/**
 * The one door to PowerShell: the only module that starts a process. It starts the engine once per
 * run and talks to it in JSON lines (src/powershell/protocol.ts); every way the child can fail
 * becomes one ExmitError with its kind. A normal run ends with the engine exiting 0 by itself.
 */
import { createInterface } from 'node:readline';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { ExitCode, ExmitError, inputError } from '../errors.ts';
import { shippedFilePath, SHIPPED } from '../sea.ts';
import type { CallableOp, CallOptions, Engine, EngineOptions } from '../context.ts';
import { engineError, errorKindOf } from './errors.ts';
import { timeoutFromEnv } from './timeout.ts';
import { eventCheck, OPERATIONS, ShapeError, type EngineEvent, type OpName, type Requests, type Results } from './protocol.ts';

export type { EngineOptions } from '../context.ts';
export type { EngineTarget } from './protocol.ts';
export { timeoutFromEnv } from './timeout.ts';

/** How long close() waits for the engine to answer exit and then to end, before it kills it. */
export const CLOSE_GRACE_MS = 5_000;

/** The engine script shipped with the package (in exmit.exe: its embedded asset, written to a private temporary file; src/sea.ts). */
export function engineScriptPath(): string {
  return shippedFilePath(SHIPPED.engine);
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

/** How the engine process ended, as the door saw it. */
export interface EngineExit {
  exitCode: number | undefined;
  signal: string | undefined;
  /** The door killed it (hung or misbehaved). */
  killed: boolean;
}

/** Every engine this process started that has not ended yet (a signal stops them all: stopEngines). */
const running = new Set<EngineSession>();

/** How long stopEngines waits for killed engines to be gone (they die at once; this only bounds the wait). */
const STOP_WAIT_MS = 2_000;

/** Kills every engine this process started that still runs (SIGINT, SIGTERM: the run ends now) and waits, briefly, until they are gone. Resolves to how many it stopped. */
export async function stopEngines(): Promise<number> {
  const sessions = [...running];
  for (const session of sessions) session.stop();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => { timer = setTimeout(resolve, STOP_WAIT_MS); });
  await Promise.race([Promise.all(sessions.map((s) => s.gone)), late]);
  clearTimeout(timer);
  return sessions.length;
}

interface Waiter {
  op: OpName;
  resolve(result: unknown): void;
  reject(error: Error): void;
  event(event: EngineEvent): void;
}

/** A running engine: one process for the whole run. */
export class EngineSession implements Engine {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly executable: string;
  private readonly timeoutOverride: number | undefined;
  private readonly onEvent: ((event: EngineEvent) => void) | undefined;
  private readonly closeGraceMs: number;
  private readonly pending = new Map<number, Waiter>();
  private readonly stderrLines: string[] = [];
  private readonly ended: Promise<void>;
  private nextId = 1;
  private exited: ExmitError | null = null;
  private exitInfo: EngineExit | null = null;
  private exitId: number | null = null;
  private closing: Promise<void> | null = null;
  private killed = false;
  /** The engine wrote at least one line: it started (a timeout before that is a slow start). */
  private answered = false;

  /** Use startEngine(). */
  constructor(child: ChildProcessWithoutNullStreams, executable: string, options: EngineOptions) {
    this.child = child;
    this.executable = executable;
    this.timeoutOverride = options.timeoutMs;
    this.onEvent = options.onEvent;
    this.closeGraceMs = options.closeGraceMs ?? CLOSE_GRACE_MS;
    const stdout = child.stdout;
    const stderr = child.stderr;
    child.stdin.on('error', () => {
      // EPIPE when the engine died; its exit is reported through onExit.
    });
    createInterface({ input: stdout }).on('line', (line) => this.onLine(line));
    createInterface({ input: stderr }).on('line', (line) => {
      if (this.stderrLines.length < 200) this.stderrLines.push(line);
      options.onStderr?.(line);
    });
    running.add(this);
    this.ended = new Promise<void>((resolve) => {
      // 'error' alone when it could not be started (ENOENT); 'close' once it ended and its pipes closed.
      child.once('error', (error: NodeJS.ErrnoException) => {
        if (child.pid === undefined) {
          this.onExit(undefined, undefined, error.message, error.code);
          resolve();
        }
      });
      child.once('close', (exitCode: number | null, signal: NodeJS.Signals | null) => {
        this.onExit(exitCode ?? undefined, signal ?? undefined, undefined, undefined);
        resolve();
      });
    });
  }

  /** How the process ended; null while it runs. */
  get exit(): EngineExit | null {
    return this.exitInfo;
  }

  /** Whether the engine still takes requests. */
  get alive(): boolean {
    return this.exited === null && !this.killed && this.closing === null;
  }

  /** Sends one request and returns its checked result; an engine error answer becomes an ExmitError of its kind. */
  async call<O extends CallableOp>(op: O, request: Requests[O], options: CallOptions = {}): Promise<Results[O]> {
    if (this.closing !== null) throw engineError('internal', `the engine was asked for ${op} after it was closed`);
    return this.send(op, request, options);
  }

  private async send<O extends OpName>(op: O, request: Requests[O], options: CallOptions): Promise<Results[O]> {
    if (this.exited !== null) throw this.exited;
    const id = this.nextId++;
    if (op === 'exit') this.exitId = id;
    const timeoutMs = options.timeoutMs ?? this.timeoutOverride ?? OPERATIONS[op].timeoutMs;
    const line = JSON.stringify({ ...request, id, op });
    const raw = await new Promise<unknown>((resolve, reject) => {
      const expire = (): void => {
        this.pending.delete(id);
        const started = this.answered;
        this.abandon();
        reject(engineError('environment', `PowerShell did not answer the ${op} request within ${Math.round(timeoutMs / 1000)} s and was stopped`, null, slowHint(op, request, started)));
      };
      let timer = setTimeout(expire, timeoutMs);
      this.pending.set(id, {
        op,
        resolve: (a) => { clearTimeout(timer); resolve(a); },
        reject: (e) => { clearTimeout(timer); reject(e); },
        event: (e) => {
          clearTimeout(timer);
          timer = setTimeout(expire, timeoutMs);
          this.onEvent?.(e);
          options.onEvent?.(e);
        },
      });
      // A failed write means the engine is gone: its exit answers the pending request with the reason.
      this.child.stdin.write(line + '\n', () => {});
    });
    try {
      return OPERATIONS[op].result(raw, 'result');
    } catch (error) {
      if (error instanceof ShapeError) throw engineError('internal', `PowerShell engine answered ${op} with a bad result: ${error.message}`);
      throw error;
    }
  }

  /** Kills the engine now (the run was interrupted); pending requests fail with its death. */
  stop(): void {
    this.abandon();
  }

  /** Settles once the process has ended (or could not be started). */
  get gone(): Promise<void> {
    return this.ended;
  }

  /** Kills the engine and lets go of its pipes (a hung child's own children may still hold them). */
  private abandon(): void {
    if (this.exitInfo !== null) return;
    this.killed = true;
    killTree(this.child);
    this.child.stdin.destroy();
    this.child.stdout.destroy();
    this.child.stderr.destroy();
  }

  /** Asks the engine to exit, waits for its answer and its own exit 0; kills it only when it hangs or misbehaves. */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    if (this.exited !== null) return;
    if (this.killed) {
      await this.ended;
      return;
    }
    try {
      await this.send('exit', {}, { timeoutMs: this.closeGraceMs });
    } catch {
      // No answer, a bad one, or an error: the engine misbehaves and is stopped below.
      this.abandon();
    }
    this.child.stdin.end();
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<'hung'>((resolve) => { timer = setTimeout(() => resolve('hung'), this.closeGraceMs); });
    if ((await Promise.race([this.ended.then(() => 'ended' as const), hung])) === 'hung') {
      this.abandon();
      await this.ended;
    }
    clearTimeout(timer);
  }

  private onLine(raw: string): void {
    const line = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
    if (line.trim() === '') return;
    this.answered = true;
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      return this.misbehaved(engineError('environment', `PowerShell engine wrote something that is not JSON: ${truncate(line)}`, null, 'A PowerShell profile or module printing to the console is the usual cause; exmit starts PowerShell with -NoProfile.'));
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      return this.misbehaved(engineError('internal', `PowerShell engine wrote a line that is not a JSON object: ${truncate(line)}`));
    }
    const record = message as Record<string, unknown>;
    const id = record['id'];
    const waiter = typeof id === 'number' ? this.pending.get(id) : undefined;
    if (waiter === undefined || typeof id !== 'number') {
      return this.misbehaved(engineError('internal', `PowerShell engine answered a request that was not asked: ${truncate(line)}`));
    }
    if (record['event'] !== undefined) {
      try {
        waiter.event(eventCheck(record['event'], 'event'));
      } catch (error) {
        if (!(error instanceof ShapeError)) throw error;
        this.misbehaved(engineError('internal', `PowerShell engine sent a bad event for ${waiter.op}: ${error.message}`));
      }
      return;
    }
    this.pending.delete(id);
    if (record['ok'] === true) {
      waiter.resolve(record['result']);
    } else if (record['ok'] === false && typeof record['error'] === 'object' && record['error'] !== null) {
      const error = record['error'] as Record<string, unknown>;
      const text = typeof error['message'] === 'string' && error['message'] !== '' ? error['message'] : `${waiter.op} failed without a message`;
      const details = typeof error['details'] === 'object' && error['details'] !== null && !Array.isArray(error['details']) ? (error['details'] as Record<string, unknown>) : undefined;
      waiter.reject(engineError(errorKindOf(error['kind']), text, typeof error['file'] === 'string' ? error['file'] : null, undefined, details));
    } else {
      this.misbehaved(engineError('internal', `PowerShell engine answered ${waiter.op} with neither a result nor an error: ${truncate(line)}`), waiter);
    }
  }

  /** A line the protocol does not allow: every waiting request fails with it, and the engine is stopped. */
  private misbehaved(error: ExmitError, waiter?: Waiter): void {
    waiter?.reject(error);
    this.failAll(error);
    this.abandon();
  }

  private onExit(exitCode: number | undefined, signal: string | undefined, message: string | undefined, code: string | undefined): void {
    if (this.exitInfo !== null) return;
    running.delete(this);
    this.exitInfo = { exitCode, signal, killed: this.killed };
    const error = this.deathError(exitCode, signal, message, code);
    this.exited = error;
    this.failAll(error);
  }

  private deathError(exitCode: number | undefined, signal: string | undefined, message: string | undefined, code: string | undefined): ExmitError {
    const stderr = this.stderrLines.join('\n');
    if (code === 'ENOENT' || /ENOENT/.test(message ?? '')) {
      return new ExmitError(ExitCode.error, `PowerShell not found: ${this.executable}`, 'Install PowerShell 7 (pwsh) or pass --powershell PATH.', 'environment');
    }
    if (/UnauthorizedAccess|cannot be loaded because running scripts is disabled|is not digitally signed/i.test(stderr)) {
      return engineError('policy', 'PowerShell refused to run exmit\'s engine script: a machine policy forces signed scripts (AllSigned) or disables scripts');
    }
    if (/ConstrainedLanguage|language mode/i.test(stderr)) {
      return engineError('policy', 'PowerShell runs in constrained language mode here, so exmit\'s engine cannot run', null, 'Application control (WDAC/AppLocker) sets this; exmit does not work around it.');
    }
    const last = this.stderrLines.filter((l) => l.trim() !== '').slice(-1)[0];
    const how = signal !== undefined ? `was killed (${signal})` : exitCode !== undefined ? `exited with code ${exitCode}` : 'could not be started';
    return engineError('environment', `PowerShell (${this.executable}) ${how} before answering${last !== undefined ? `: ${truncate(last)}` : message !== undefined && exitCode === undefined ? `: ${truncate(message)}` : ''}`, null, 'Run again with --verbose to see what PowerShell wrote.');
  }

  private failAll(error: ExmitError): void {
    for (const [id, waiter] of this.pending) {
      this.pending.delete(id);
      waiter.reject(error);
    }
  }
}

const MORE_TIME = 'EXMIT_TIMEOUT_SECONDS=600 gives every request more time.';

/** The hint of a timeout: what was slow, from how far the engine got and what it was asked. */
function slowHint(op: OpName, request: unknown, started: boolean): string {
  if (!started) return `PowerShell never answered, so its start was what was slow: antivirus scanning PowerShell, a slow disk or a damaged installation is the usual cause; run again with --verbose to see what it wrote. ${MORE_TIME}`;
  const target = typeof request === 'object' && request !== null ? (request as { target?: { kind?: unknown } }).target : undefined;
  const image = target?.kind === 'image';
  switch (op) {
    case 'preflight':
    case 'gather':
      return image
        ? `Reading the image's files was slow (an image on a slow or unreachable share?); run again with --verbose to see what it was doing. ${MORE_TIME}`
        : `Reading the server was slow: a hung WMI/CIM, registry or IIS call is the usual cause; run again with --verbose to see what it was doing. ${MORE_TIME}`;
    case 'readFiles':
      return `Reading the IIS configuration files (web.config) was slow${image ? ' (an image on a slow share?)' : ': a busy or unreachable disk or share'}; run again with --verbose. ${MORE_TIME}`;
    case 'execute':
      return `A change step was slow (an IIS or service call that hangs) and did not finish: "exmit status" shows what is in place, "exmit rollback --all" repairs the run. ${MORE_TIME}`;
    case 'collect':
      return `Copying the server's files into the image was slow; run again with --verbose to see which file it was on. ${MORE_TIME}`;
    case 'exit':
      return 'PowerShell did not end when asked; it was stopped, and nothing is left running.';
    default:
      return `Run again with --verbose to see what PowerShell was doing. ${MORE_TIME}`;
  }
}

/** Kills the engine and, on POSIX, every process in its group (a launcher's PowerShell, a hung call's children). */
function killTree(child: ChildProcessWithoutNullStreams): void {
  if (process.platform !== 'win32' && child.pid !== undefined) {
    try {
      process.kill(-child.pid, 'SIGKILL');
      return;
    } catch {
      // The group is gone already (or was never made): kill the process itself below.
    }
  }
  child.kill('SIGKILL');
}

function truncate(text: string): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > 200 ? `${one.slice(0, 200)}...` : one;
}

/** What every PowerShell exmit starts gets: no telemetry, no update check (the benchmark's bare starts too). */
export const QUIET_POWERSHELL = { POWERSHELL_TELEMETRY_OPTOUT: '1', POWERSHELL_UPDATECHECK: 'Off' } as const;

/**
 * The engine's environment: the caller's, without telemetry and update checks, and with the .NET JIT
 * in its quick mode (DOTNET_JITMinOpts, read by PowerShell 7's .NET; Windows PowerShell 5.1's .NET
 * Framework reads no DOTNET_ variable). PowerShell compiles every script block and call site it meets
 * into code that .NET then compiles for the processor; an engine run is short, so compiling quickly
 * beats compiling well: an audit of the example image takes about a quarter less. A value the caller
 * set is kept.
 */
export function engineEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { DOTNET_JITMinOpts: '1', ...env, ...QUIET_POWERSHELL };
}


/** Starts the engine: one PowerShell process that serves every request of this run. Bad settings fail before it starts. */
export function startEngine(options: EngineOptions = {}): EngineSession {
  const timeoutMs = options.timeoutMs ?? timeoutFromEnv();
  const executable = resolvePowerShell(options.powershell);
  const script = options.scriptPath ?? engineScriptPath();
  if (!existsSync(script)) throw inputError(`engine script missing: ${script}`, 'The exmit package is incomplete; reinstall it (a checkout: npm run build).');
  options.onStart?.(executable, script);
  const child = spawn(executable, powerShellArguments(script), {
    stdio: ['pipe', 'pipe', 'pipe'],
    windowsHide: true,
    // Its own process group on POSIX, so that stopping it stops what it started too: pwsh installed
    // as a dotnet tool is a launcher whose child, `dotnet pwsh.dll`, is the real PowerShell.
    detached: process.platform !== 'win32',
    env: engineEnvironment(process.env),
  });
  return new EngineSession(child, executable, { ...options, timeoutMs });
}

/** Anything that hands out the run's engine (started on first use or already running). */
export interface EngineSource {
  get(): Engine;
}

/**
 * An engine started on first use: for commands that need PowerShell only on some platforms (the
 * state folder's ACL on Windows), still at most one process per run.
 */
export class LazyEngine implements EngineSource {
  private readonly start: () => Engine;
  private session: Engine | null = null;

  /** `start` is called at most once, on first use. */
  constructor(start: () => Engine) {
    this.start = start;
  }

  /** The engine, started now if it was not yet. */
  get(): Engine {
    this.session ??= this.start();
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
export async function withLazyEngine<T>(start: () => Engine, work: (engine: LazyEngine) => Promise<T>): Promise<T> {
  const engine = new LazyEngine(start);
  try {
    return await work(engine);
  } finally {
    await engine.close();
  }
}

/** Runs `work` with an engine started now, and always closes it. */
export async function withEngine<T>(start: () => Engine, work: (engine: Engine) => Promise<T>): Promise<T> {
  const engine = start();
  try {
    return await work(engine);
  } finally {
    await engine.close();
  }
}
