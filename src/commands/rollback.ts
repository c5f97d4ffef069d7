/** `exmit rollback ID...|--all`: undo exmit's changes, restoring exactly what was there before. */
import { Command } from 'commander';
import type { RunContext } from '../context.ts';
import { ExitCode } from '../errors.ts';
import { addChangeOptions } from '../apply/command.ts';

/** The `rollback` command. */
export function rollbackCommand(context: RunContext): Command {
  const command = new Command('rollback').description("undo exmit's changes (ids or CVE numbers, or --all), restoring exactly what was there before").argument('[ids...]', 'mitigation ids or CVE numbers');
  return addChangeOptions(command)
    .option('--all', 'roll back everything exmit applied here, and repair an interrupted run')
    .action(async (ids: string[], raw: Record<string, unknown>) => {
      const [{ readChangeOptions, withRunInput, terminalConfirm, renderRun }, { createUi }, { printJson, printText }, { runRollback, RunFailure }] = await Promise.all([import('../apply/command.ts'), import('../ui.ts'), import('../output.ts'), import('../apply/run.ts')]);
      const options = readChangeOptions(raw);
      const ui = createUi(options.common, context.output);
      try {
        const report = await withRunInput(context, options, ui, 'read', (input, catalog) => runRollback({ ...input, confirm: terminalConfirm(context, ui) }, { ids, all: raw['all'] === true }).then((r) => ({ ...r, catalog })));
        for (const w of report.warnings) ui.say(ui.err.warn(`warning: ${w}`));
        if (options.common.json) printJson(report, context.output);
        else printText(renderRun(report, ui, options.common.verbose), context.output);
        context.exitCode = ExitCode.ok;
      } catch (error) {
        if (!(error instanceof RunFailure)) throw error;
        if (options.common.json) printJson({ ...error.report, error: { code: error.code, message: error.message, hint: error.hint ?? null } }, context.output);
        else {
          printText(renderRun(error.report, ui, options.common.verbose), context.output);
          context.output.stderr(`exmit: ${error.message}\n${error.hint !== undefined ? `  ${error.hint}\n` : ''}`);
        }
        context.exitCode = error.code;
      }
    });
}
