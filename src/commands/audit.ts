/** `exmit audit`: dry run: what this server needs, has, or no longer needs. */
import { Command } from 'commander';
import type { RunContext } from '../context.ts';
import { addCatalogTrustOptions, addCommonOptions, engineOptions, readCatalogTrustOptions, readCommonOptions, type CatalogTrustOptions, type CommonOptions } from '../options.ts';
import type { Ui } from '../ui.ts';
import type { AuditReport } from '../audit/report.ts';
import { ExitCode } from '../errors.ts';

export type { AuditReport } from '../audit/report.ts';

/** The `audit` command. */
export function auditCommand(context: RunContext): Command {
  return addCatalogTrustOptions(addCommonOptions(new Command('audit').description('dry run: what this server needs, has, or no longer needs'))).action(async (raw) => {
    const options = readCommonOptions(raw);
    const trust = readCatalogTrustOptions(raw);
    const { createUi } = await import('../ui.ts');
    const ui = createUi(options, context.output);
    // The report's code loads while PowerShell starts (runAudit starts it first).
    const report = await runAudit(context, options, trust, ui);
    const [{ printJson, printText }, { renderAudit }] = await Promise.all([import('../output.ts'), import('../audit/report.ts')]);
    for (const warning of report.warnings) ui.say(ui.err.warn(`warning: ${warning}`));
    if (options.json) printJson(report, context.output);
    else printText(renderAudit(report, ui), context.output);
    context.exitCode = report.exposed ? ExitCode.exposed : ExitCode.ok;
  });
}

/**
 * Reads the catalog and the server (one engine for the run) and plans every mitigation. The engine
 * starts first, so PowerShell's start overlaps loading and checking the catalog.
 */
export async function runAudit(context: Pick<RunContext, 'startEngine'>, options: CommonOptions, trust: CatalogTrustOptions, ui: Ui): Promise<AuditReport> {
  const { withEngine } = await import('../powershell/door.ts');
  return withEngine(() => context.startEngine(engineOptions(options, ui)), async (engine) => {
    // The worker that bounds the probes' regular expressions starts while PowerShell does (src/iis/regex-worker.ts).
    (await import('../iis/regex-worker.ts')).prestartRegexWorker();
    const [{ resolveCatalog }, { windowsHostFor }, { readCheckedConfig, blockedIds }, { resolveStateDir }, server, report, { catalogUsed }] = await Promise.all([
      import('../catalog/source.ts'),
      import('../powershell/windows-host.ts'),
      import('../state/config.ts'),
      import('../state/paths.ts'),
      import('../server.ts'),
      import('../audit/report.ts'),
      import('../output.ts'),
    ]);
    const windows = windowsHostFor({ get: () => engine });
    const resolved = await resolveCatalog({ catalog: options.catalog, stateDir: options.stateDir, purpose: 'read', trust: trust.trust, allowUnsigned: trust.allowUnsigned, windows });
    ui.debug(catalogUsed(resolved));
    const blocked = blockedIds(await readCheckedConfig(resolveStateDir(options.stateDir), windows));
    const { reading, iis } = await ui.spin('Reading the server', async (status) => {
      const reading = await server.readServer(engine, options.target, server.servicesWanted(resolved.catalog));
      status('the IIS configuration');
      const iis = await server.readIis(engine, options.target, reading, report.probePaths(resolved.catalog));
      return { reading, iis };
    });
    return report.planAudit(options.target, resolved, blocked, reading, iis);
  });
}
