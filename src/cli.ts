/**
 * Builds the commander program; the only place that prints errors and decides the exit code.
 * Loads little: `--version` answers before commander is loaded, and each command loads what it
 * needs (undici, fast-xml-parser, the trust code, ora) only when it runs.
 */
import type { Command } from 'commander';
import { ExitCode, ExmitError } from './errors.ts';
import { VERSION } from './version.ts';
import { processOutput, type RunContext } from './context.ts';

export type { RunContext } from './context.ts';

/** The whole program, with every command registered. */
export async function buildProgram(context: RunContext): Promise<Command> {
  const [{ Command }, { detectCommand }, { catalogCommand }, { auditCommand }, { collectCommand }] = await Promise.all([
    import('commander'),
    import('./commands/detect.ts'),
    import('./commands/catalog.ts'),
    import('./commands/audit.ts'),
    import('./commands/collect.ts'),
  ]);
  const program = new Command('exmit')
    .description('Emergency mitigations for on-premises Exchange servers: detect the build, audit what it needs, collect an image. (apply, rollback and status come in a later release.)')
    .version(VERSION, '-V, --version')
    .showSuggestionAfterError(true);
  program.addCommand(detectCommand(context));
  program.addCommand(catalogCommand(context));
  program.addCommand(auditCommand(context));
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
  const context: RunContext = { exitCode: ExitCode.ok, output, startEngine };
  let commanderText = '';
  try {
    const program = await buildProgram(context);
    applyToTree(program, (text) => { commanderText += text; }, output);
    await program.parseAsync(argv);
    return context.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') {
        if (commanderText !== '') output.stderr(commanderText);
        return ExitCode.ok;
      }
      const message = error.message.replace(/^error:\s*/i, '').trim();
      return printError(new ExmitError(ExitCode.usage, message, 'Run "exmit --help" or "exmit <command> --help".'), json, output);
    }
    return report(error, json, verbose, output);
  }
}

function applyToTree(command: Command, capture: (text: string) => void, output: RunContext['output']): void {
  command.exitOverride();
  command.configureOutput({ writeOut: (text) => output.stdout(text), writeErr: capture, outputError: () => {} });
  for (const sub of command.commands) applyToTree(sub, capture, output);
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
