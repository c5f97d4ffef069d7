/** Builds the commander program; the only place that prints errors and decides the exit code. */
import { Command, CommanderError } from 'commander';
import { ExitCode, ExmitError } from './errors.ts';
import { printJson } from './output.ts';
import { VERSION } from './version.ts';
import { detectCommand } from './commands/detect.ts';
import { catalogCommand } from './commands/catalog.ts';
import { auditCommand } from './commands/audit.ts';
import { collectCommand } from './commands/collect.ts';

/** State a command hands back to the entry: the exit code it decided. */
export interface RunContext {
  exitCode: number;
}

/** The whole program, with every command registered. */
export function buildProgram(context: RunContext): Command {
  const program = new Command('exmit')
    .description('Emergency mitigations for on-premises Exchange servers: detect the build, audit what it needs, collect an image. (apply, rollback and status come in a later release.)')
    .version(VERSION, '-V, --version')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ writeErr: (text) => { lastCommanderError = text; }, outputError: () => {} });
  program.addCommand(detectCommand(context));
  program.addCommand(catalogCommand(context));
  program.addCommand(auditCommand(context));
  program.addCommand(collectCommand(context));
  return program;
}

let lastCommanderError = '';

/** Runs exmit with process-style argv and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const verbose = argv.includes('--verbose');
  const context: RunContext = { exitCode: ExitCode.ok };
  const program = buildProgram(context);
  program.exitOverride();
  for (const sub of program.commands) applyToTree(sub);
  try {
    await program.parseAsync(argv);
    return context.exitCode;
  } catch (error) {
    return report(error, json, verbose);
  }
}

function applyToTree(command: Command): void {
  command.exitOverride();
  command.configureOutput({ writeErr: (text) => { lastCommanderError = text; }, outputError: () => {} });
  for (const sub of command.commands) applyToTree(sub);
}

function report(error: unknown, json: boolean, verbose: boolean): number {
  if (error instanceof CommanderError) {
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') {
      if (lastCommanderError !== '') process.stderr.write(lastCommanderError);
      return ExitCode.ok;
    }
    const message = error.message.replace(/^error:\s*/i, '').trim();
    return printError(new ExmitError(ExitCode.usage, message, 'Run "exmit --help" or "exmit <command> --help".'), json);
  }
  if (error instanceof ExmitError) return printError(error, json);
  const message = error instanceof Error ? error.message : String(error);
  if (verbose && error instanceof Error && error.stack !== undefined) process.stderr.write(error.stack + '\n');
  return printError(new ExmitError(ExitCode.error, `internal error: ${message}`, 'This is a bug in exmit; run again with --verbose and report what it prints.'), json);
}

function printError(error: ExmitError, json: boolean): number {
  if (json) {
    printJson({ error: { code: error.code, message: error.message, hint: error.hint ?? null } });
  } else {
    process.stderr.write(`exmit: ${error.message}\n`);
    if (error.hint !== undefined) process.stderr.write(`  ${error.hint}\n`);
  }
  return error.code;
}
