/** `exmit apply ID...|--needed`: apply mitigations, all or nothing. */
import { Command } from 'commander';
import type { RunContext } from '../context.ts';
import { ExitCode } from '../errors.ts';
import { addChangeOptions } from '../apply/command.ts';

/** The `apply` command. */
export function applyCommand(context: RunContext): Command {
  const command = new Command('apply').description('apply mitigations (ids or CVE numbers), or every one this server needs with --needed').argument('[ids...]', 'mitigation ids or CVE numbers');
  return addApplyOptions(command).action(async (ids: string[], raw: Record<string, unknown>) => {
    const [{ readChangeOptions, withRunInput, terminalConfirm, renderRun }, { createUi }, { printJson, printText }, { runApply, RunFailure }] = await Promise.all([import('../apply/command.ts'), import('../ui.ts'), import('../output.ts'), import('../apply/run.ts')]);
    const options = readChangeOptions(raw);
    const ui = createUi(options.common, context.output);
    const request = { ids, needed: raw['needed'] === true, allowBreaking: raw['allowBreaking'] === true };
    try {
      const report = await withRunInput(context, options, ui, options.dryRun ? 'read' : 'apply', (input, catalog) => runApply({ ...input, confirm: terminalConfirm(context, ui) }, request).then((r) => ({ ...r, catalog })));
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

function addApplyOptions(command: Command): Command {
  return addChangeOptions(command)
    .option('--needed', 'apply every mitigation this server needs that breaks no feature')
    .option('--allow-breaking', 'with --needed, also apply those that stop a feature (ECP, OAB, UM)');
}
