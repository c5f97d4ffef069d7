/** `exmit status`: what exmit applied here, and whether it is still in place. */
import { Command } from 'commander';
import type { RunContext } from '../context.ts';
import { addCatalogTrustOptions, addCommonOptions } from '../options.ts';

/** The `status` command. */
export function statusCommand(context: RunContext): Command {
  return addCatalogTrustOptions(addCommonOptions(new Command('status').description('what exmit applied here, and whether it is still in place'))).action(async (raw: Record<string, unknown>) => {
    const [{ readChangeOptions, withRunInput, renderStatus, statusExit }, { createUi }, { printJson, printText }] = await Promise.all([import('../apply/command.ts'), import('../ui.ts'), import('../output.ts')]);
    const options = readChangeOptions({ ...raw, dryRun: true });
    const ui = createUi(options.common, context.output);
    const report = await withRunInput(context, { ...options, dryRun: true }, ui, 'read', async (input, catalog) => ({ ...(await (await import('../apply/run.ts')).runStatus({ ...input, confirm: async () => false })), catalog }));
    if (options.common.json) printJson(report, context.output);
    else printText(renderStatus(report, ui), context.output);
    context.exitCode = statusExit(report);
  });
}
