/**
 * Builds the commander program; the only place that prints errors and decides the exit code.
 * Loads little: `--version` answers before commander is loaded, and each command loads what it
 * needs (undici, fast-xml-parser, the trust code, ora) only when it runs.
 */
import type { Command } from 'commander';
import { ExitCode, ExmitError, type ExitCodeValue } from './errors.ts';
import { VERSION } from './version.ts';
import { processOutput, type RunContext } from './context.ts';

export type { RunContext } from './context.ts';

/** The whole program, with every command registered. */
export async function buildProgram(context: RunContext): Promise<Command> {
  const [{ Command }, { detectCommand }, { catalogCommand }, { auditCommand }, { applyCommand }, { rollbackCommand }, { statusCommand }, { collectCommand }] = await Promise.all([
    import('commander'),
    import('./commands/detect.ts'),
    import('./commands/catalog.ts'),
    import('./commands/audit.ts'),
    import('./commands/apply.ts'),
    import('./commands/rollback.ts'),
    import('./commands/status.ts'),
    import('./commands/collect.ts'),
  ]);
  const program = new Command('exmit')
    .description('Emergency mitigations for on-premises Exchange servers: detect the build, audit what it needs, apply and roll back mitigations, collect an image.')
    .version(VERSION, '-V, --version')
    .showSuggestionAfterError(true);
  program.addCommand(detectCommand(context));
  program.addCommand(catalogCommand(context));
  program.addCommand(auditCommand(context));
  program.addCommand(applyCommand(context));
  program.addCommand(rollbackCommand(context));
  program.addCommand(statusCommand(context));
  program.addCommand(collectCommand(context));
  return program;
}

/** Runs exmit with process-style argv and returns the exit code; `context` defaults to the process (tests pass their own). */
export async function main(argv: string[], given?: Partial<Pick<RunContext, 'output' | 'startEngine'>>): Promise<number> {
  const args = argv.slice(2);
  const output = given?.output ?? processOutput();
  if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
    output.stdout(`${VERSION}\n`);
    return ExitCode.ok;
  }
  const json = argv.includes('--json');
  const verbose = argv.includes('--verbose');
  const [{ CommanderError }, door] = await Promise.all([import('commander'), given?.startEngine === undefined ? import('./powershell/door.ts') : null]);
  const startEngine = given?.startEngine ?? door?.startEngine;
  if (startEngine === undefined) throw new Error('no engine factory');
  // Only a run that is the process itself answers signals (tests run main in-process with their own output).
  const signals = given === undefined && door !== null ? onSignals(args, json, output, door.stopEngines) : null;
  const context: RunContext = { exitCode: ExitCode.ok, output: signals?.output ?? output, startEngine };
  let commanderText = '';
  let failed: Command | null = null;
  try {
    const program = await buildProgram(context);
    applyToTree(program, (text) => { commanderText += text; }, output, (command) => { failed = command; });
    await program.parseAsync([...argv.slice(0, 2), ...flagsAfterCommand(args)]);
    return context.exitCode;
  } catch (error) {
    // Stopped by a signal: the engine's death is not the cause to report; the handler reports and exits.
    if (signals?.stopping === true) return await signals.ending;
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') {
        if (commanderText !== '') output.stderr(commanderText);
        return ExitCode.ok;
      }
      return printError(usageFromCommander(error.message, failed), json, output);
    }
    return report(error, json, verbose, output);
  } finally {
    if (signals?.stopping === false) signals.remove();
  }
}

const SIGNALS = {
  SIGINT: { code: ExitCode.interrupted, name: 'SIGINT (Ctrl-C)' },
  SIGTERM: { code: ExitCode.terminated, name: 'SIGTERM' },
  SIGHUP: { code: ExitCode.hangup, name: 'SIGHUP (the terminal closed)' },
} as const;

/** The signal handlers of a run: whether a signal is ending it, and how to remove them. */
export interface SignalHandlers {
  /** A signal arrived: the run is being ended. */
  readonly stopping: boolean;
  /** Settles when the handler has reported; the process exits then (never settles otherwise). */
  readonly ending: Promise<number>;
  /** The run's output, silent once a signal arrived (what the command makes of its killed engine is not news). */
  readonly output: RunContext['output'];
  /** Removes the handlers (the run ended by itself). */
  remove(): void;
}

/**
 * Makes SIGINT, SIGTERM and SIGHUP end the run at once: the engine is killed (a hung WMI call or a
 * busy step never holds the run), one line says so, and the process exits 128 + the signal's number.
 */
export function onSignals(args: readonly string[], json: boolean, output: RunContext['output'], stopEngines: () => Promise<number>): SignalHandlers {
  const command = args.find((a) => !a.startsWith('-'));
  let stopping = false;
  let ended: (code: number) => void = () => {};
  const ending = new Promise<number>((resolve) => { ended = resolve; });
  const handler = (signal: keyof typeof SIGNALS): void => {
    const { code, name } = SIGNALS[signal];
    // A second signal while the engine is being stopped ends the process at once.
    if (stopping) process.exit(code);
    stopping = true;
    void stopEngines().then((stopped) => finish(code, name, stopped));
  };
  const finish = (code: number, name: string, stopped: number): void => {
    const changes = command === 'apply' || command === 'rollback';
    const hint = changes
      ? 'Run "exmit status" to see what is in place; "exmit rollback --all" repairs a run stopped part way.'
      : 'Nothing was changed; run the command again when you are ready.';
    // A spinner may be on the line: clear it first.
    if (!json && output.stderrIsTty) output.stderr('\r\u001b[K');
    printError(new ExmitError(code as ExitCodeValue, `stopped by ${name}${stopped > 0 ? ': the run and its PowerShell engine were ended' : ''}`, hint), json, output);
    ended(code);
    process.exit(code);
  };
  const names = Object.keys(SIGNALS) as (keyof typeof SIGNALS)[];
  for (const signal of names) process.on(signal, handler);
  return {
    get stopping() {
      return stopping;
    },
    ending,
    output: {
      stdout: (text) => {
        if (!stopping) output.stdout(text);
      },
      stderr: (text) => {
        if (!stopping) output.stderr(text);
      },
      stderrIsTty: output.stderrIsTty,
    },
    remove: () => {
      for (const signal of names) process.off(signal, handler);
    },
  };
}

/** The flags every command takes that need no value: accepted before the command too, as in `exmit --json audit`. */
const LEADING_FLAGS = new Set(['--json', '--verbose', '--no-color']);

/** Moves those flags from before the command to after it, so that the command gets them (and `exmit --json aply` reports the unknown command). */
export function flagsAfterCommand(args: readonly string[]): string[] {
  let i = 0;
  while (i < args.length && LEADING_FLAGS.has(args[i] ?? '')) i++;
  if (i === 0 || i === args.length) return [...args];
  const rest = args.slice(i);
  const end = rest.indexOf('--');
  return end === -1 ? [...rest, ...args.slice(0, i)] : [...rest.slice(0, end), ...args.slice(0, i), ...rest.slice(end)];
}

/** Commander's error as one line with a hint: the suggestion it makes, and the help of the command that refused. */
function usageFromCommander(text: string, failed: Command | null): ExmitError {
  const lines = text.replace(/^error:\s*/i, '').trim().split('\n');
  const suggestion = /^\(Did you mean (.+)\?\)$/.exec(lines.find((l) => l.startsWith('(Did you mean')) ?? '');
  const message = lines.filter((l) => !l.startsWith('(Did you mean')).join(' ');
  const names: string[] = [];
  for (let c: Command | null = failed; c !== null && c.parent !== null; c = c.parent) names.unshift(c.name());
  const help = names.length === 0 ? 'Run "exmit --help" to see the commands.' : `Run "exmit ${names.join(' ')} --help" to see what it takes.`;
  return new ExmitError(ExitCode.usage, message, suggestion !== null ? `Did you mean ${suggestion[1]}? ${help}` : help);
}

function applyToTree(command: Command, capture: (text: string) => void, output: RunContext['output'], onError: (command: Command) => void): void {
  command.exitOverride((error) => {
    onError(command);
    throw error;
  });
  command.configureOutput({ writeOut: (text) => output.stdout(text), writeErr: capture, outputError: () => {} });
  for (const sub of command.commands) applyToTree(sub, capture, output, onError);
}

function report(error: unknown, json: boolean, verbose: boolean, output: RunContext['output']): number {
  if (error instanceof ExmitError) return printError(error, json, output);
  const message = error instanceof Error ? error.message : String(error);
  if (verbose && error instanceof Error && error.stack !== undefined) output.stderr(error.stack + '\n');
  return printError(new ExmitError(ExitCode.error, `internal error: ${message}`, 'This is a bug in exmit; run again with --verbose and report what it prints.', 'internal'), json, output);
}

function printError(error: ExmitError, json: boolean, output: RunContext['output']): number {
  if (json) {
    output.stdout(JSON.stringify({ error: { code: error.code, message: error.message, hint: error.hint ?? null } }, null, 2) + '\n');
  } else {
    output.stderr(`exmit: ${error.message}\n`);
    if (error.hint !== undefined) output.stderr(`  ${error.hint}\n`);
  }
  return error.code;
}
