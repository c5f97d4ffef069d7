/** `exmit collect --out DIR`: save a server image of this server for offline audits. */
import path from 'node:path';
import { Command } from 'commander';
import type { RunContext } from '../cli.ts';
import { addCommonOptions, engineOptions, readCommonOptions, type RawCommon } from '../options.ts';
import { createUi } from '../ui.ts';
import { withEngine } from '../powershell/door.ts';
import { checkPreflight, type Preflight } from '../server.ts';
import { printJson, printText } from '../output.ts';
import { usageError } from '../errors.ts';

/** The `collect` command. */
export function collectCommand(context: RunContext): Command {
  return addCommonOptions(new Command('collect').description('save a server image of this server for offline audits').requiredOption('--out <dir>', 'folder to write the image to (new or empty)')).action(async (raw: RawCommon & { out: string }) => {
    const options = readCommonOptions(raw);
    if (options.target.kind !== 'local') throw usageError('collect reads the live server: --target must be local');
    const out = path.resolve(raw.out);
    const ui = createUi(options);
    const result = await ui.spin('Collecting the server image', () =>
      withEngine(engineOptions(options, ui), async (engine) => {
        const preflight = await engine.request<Preflight>('preflight', { target: options.target });
        checkPreflight(preflight, options.target);
        return engine.request<{ written: string[] }>('collect', { target: options.target, out });
      }),
    );
    if (options.json) printJson({ out, written: result.written });
    else printText(`Wrote a server image to ${out} (${result.written.length} files).\nAudit it anywhere with: exmit audit --target image:${out}`);
    context.exitCode = 0;
  });
}
