/** `exmit collect --out DIR`: save a server image of this server for offline audits. */
import path from 'node:path';
import { Command } from 'commander';
import type { RunContext } from '../context.ts';
import { addCommonOptions, engineOptions, readCommonOptions, type RawCommon } from '../options.ts';

/** The `collect` command. */
export function collectCommand(context: RunContext): Command {
  return addCommonOptions(new Command('collect').description('save a server image of this server for offline audits').requiredOption('--out <dir>', 'folder to write the image to (new or empty)'), { target: false, catalog: false, stateDir: false }).action(async (raw: RawCommon & { out: string }) => {
    const options = readCommonOptions(raw);
    const out = path.resolve(raw.out);
    const [{ createUi }, { printJson, printText }, { withEngine }, { checkPreflight }] = await Promise.all([import('../ui.ts'), import('../output.ts'), import('../powershell/door.ts'), import('../server.ts')]);
    const ui = createUi(options, context.output);
    const result = await ui.spin('Collecting the server image', (status) =>
      withEngine(() => context.startEngine(engineOptions(options, ui)), async (engine) => {
        checkPreflight(await engine.call('preflight', { target: options.target }), options.target);
        return engine.call('collect', { target: options.target, out }, { onEvent: (event) => status(event.message) });
      }),
    );
    if (options.json) printJson({ out, written: result.written, skipped: result.skipped }, context.output);
    else {
      for (const s of result.skipped) ui.say(ui.err.warn(`warning: not copied: ${s.path}: ${s.reason}`));
      printText(`Wrote a server image to ${out} (${result.written.length} files${result.skipped.length > 0 ? `; ${result.skipped.length} could not be read, listed in collect-errors.txt there` : ''}).\nAudit it anywhere with: exmit audit --target image:${out}`, context.output);
    }
    context.exitCode = 0;
  });
}
