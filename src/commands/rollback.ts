/** `exmit rollback ID...|--all`: undo exmit's changes, restoring exactly what was there before. */
import { Command } from 'commander';
import type { RunContext } from '../context.ts';
import { addChangeOptions } from '../apply/command.ts';

/** The `rollback` command. */
export function rollbackCommand(context: RunContext): Command {
  const command = new Command('rollback').description("undo exmit's changes (ids or CVE numbers, or --all), restoring exactly what was there before").argument('[ids...]', 'mitigation ids or CVE numbers');
  return addChangeOptions(command)
    .option('--all', 'roll back everything exmit applied here, and repair an interrupted run')
    .action(async (ids: string[], raw: Record<string, unknown>) => {
      // The run's code loads once PowerShell is starting (runChangeCommand starts it first).
      const { runChangeCommand } = await import('../apply/command.ts');
      await runChangeCommand(context, raw, 'read', async (input) => (await import('../apply/run.ts')).runRollback(input, { ids, all: raw['all'] === true }));
    });
}
