/** `exmit apply ID...|--needed`: apply mitigations, all or nothing. */
import { Command } from 'commander';
import type { RunContext } from '../context.ts';
import { addChangeOptions } from '../apply/command.ts';

/** The `apply` command. */
export function applyCommand(context: RunContext): Command {
  const command = new Command('apply').description('apply mitigations (ids or CVE numbers), or every one this server needs with --needed').argument('[ids...]', 'mitigation ids or CVE numbers');
  return addChangeOptions(command)
    .option('--needed', 'apply every mitigation this server needs that breaks no feature')
    .option('--allow-breaking', 'with --needed, also apply those that stop a feature (ECP, OAB, UM)')
    .action(async (ids: string[], raw: Record<string, unknown>) => {
      // The run's code loads once PowerShell is starting (runChangeCommand starts it first).
      const { runChangeCommand } = await import('../apply/command.ts');
      await runChangeCommand(context, raw, 'apply', async (input) => (await import('../apply/run.ts')).runApply(input, { ids, needed: raw['needed'] === true, allowBreaking: raw['allowBreaking'] === true }));
    });
}
