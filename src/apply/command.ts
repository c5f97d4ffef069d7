/** What apply, rollback and status share as commands: their options, the run's input, the prompt and the rendering. */
import { createInterface } from 'node:readline';
import { Option, type Command } from 'commander';
import type { RunContext } from '../context.ts';
import type { Engine } from '../context.ts';
import { addCatalogTrustOptions, addCommonOptions, engineOptions, readCatalogTrustOptions, readCommonOptions, type CommonOptions } from '../options.ts';
import type { Ui } from '../ui.ts';
import { ExitCode, usageError } from '../errors.ts';
import type { Catalog } from '../catalog/types.ts';
import type { CatalogHeader } from '../output.ts';
import type { RunInput, RunReport, StatusReport } from './run.ts';

/** The options of apply and rollback after validation. */
export interface ChangeOptions {
  common: CommonOptions;
  trust: string[];
  allowUnsigned: boolean;
  dryRun: boolean;
  yes: boolean;
}

/** Adds --dry-run/--what-if and --yes to a command that changes a server. */
export function addChangeOptions(command: Command): Command {
  return addCatalogTrustOptions(addCommonOptions(command))
    .option('--dry-run', 'print the exact plan (a diff of each image file) and change nothing')
    .addOption(new Option('--what-if', 'the same as --dry-run').hideHelp(false))
    .option('--yes', 'do not ask for confirmation (needed when stdin is not a terminal)');
}

/** Reads the options of a command that changes a server; without a terminal and without --yes it refuses before anything starts (exit 2). */
export function readChangeOptions(raw: Record<string, unknown>, stdinIsTty: boolean = process.stdin.isTTY === true): ChangeOptions {
  const common = readCommonOptions(raw);
  const trust = readCatalogTrustOptions(raw as { trust?: string[]; allowUnsigned?: boolean });
  const dryRun = raw['dryRun'] === true || raw['whatIf'] === true;
  const yes = raw['yes'] === true;
  if (!dryRun && !yes && !stdinIsTty) {
    throw usageError('this command changes the server and stdin is not a terminal, so it cannot ask: nothing was changed', 'Add --yes to confirm (scripts and scheduled tasks), or --dry-run to see the plan.');
  }
  return { common, trust: trust.trust, allowUnsigned: trust.allowUnsigned, dryRun, yes };
}

/** Asks on stderr and reads one line from the terminal; anything but y/yes is no. */
export function terminalConfirm(context: RunContext, ui: Ui): RunInput['confirm'] {
  return async (question, details) => {
    for (const line of details) context.output.stderr(`${line}\n`);
    context.output.stderr(ui.strong(question));
    const rl = createInterface({ input: process.stdin, terminal: false });
    try {
      const answer = await new Promise<string>((resolve) => {
        rl.once('line', (line) => resolve(line));
        rl.once('close', () => resolve(''));
      });
      return /^\s*y(es)?\s*$/i.test(answer);
    } finally {
      rl.close();
    }
  };
}

/** Starts the run's engine, resolves the catalog (purpose apply unless it is a dry run) and the block list, and runs `work`. */
export async function withRunInput<T>(context: RunContext, options: ChangeOptions, ui: Ui, purpose: 'apply' | 'read', work: (input: Omit<RunInput, 'confirm'>, header: CatalogHeader, catalog: Catalog) => Promise<T>): Promise<T> {
  const { withEngine } = await import('../powershell/door.ts');
  return withEngine(() => context.startEngine(engineOptions(options.common, ui)), async (engine: Engine) => {
    // The worker that bounds the probes' regular expressions starts while PowerShell does (src/iis/regex-worker.ts).
    (await import('../iis/regex-worker.ts')).prestartRegexWorker();
    const [{ resolveCatalog }, { windowsHostFor }, { readCheckedConfig, blockedIds }, { resolveStateDir }, { catalogHeader, catalogUsed }, { faultFromEnv }] = await Promise.all([
      import('../catalog/source.ts'),
      import('../powershell/windows-host.ts'),
      import('../state/config.ts'),
      import('../state/paths.ts'),
      import('../output.ts'),
      import('./run.ts'),
    ]);
    const windows = windowsHostFor({ get: () => engine });
    if (options.common.target.kind === 'local' && process.platform === 'win32') {
      // A live server's ledger, journal and lock live in %ProgramData%\exmit: created with access for Administrators and SYSTEM only, and checked.
      const [{ guardStateWrite }, { defaultStateDir }] = await Promise.all([import('../state/windows-acl.ts'), import('../state/paths.ts')]);
      await guardStateWrite(defaultStateDir(), windows);
    }
    const resolved = await resolveCatalog({ catalog: options.common.catalog, stateDir: options.common.stateDir, purpose, trust: options.trust, allowUnsigned: options.allowUnsigned, windows });
    ui.debug(catalogUsed(resolved));
    const blocked = blockedIds(await readCheckedConfig(resolveStateDir(options.common.stateDir), windows));
    const header = catalogHeader(resolved);
    return work({ engine, target: options.common.target, catalog: resolved.catalog, catalogSerial: resolved.catalog.serial, blocked, yes: options.yes, dryRun: options.dryRun, fault: faultFromEnv(), progress: (text) => ui.debug(text), catalogWarnings: resolved.warnings }, header, resolved.catalog);
  });
}

/** The human rendering of an apply or rollback report. */
export function renderRun(report: RunReport, ui: Ui, verbose: boolean): string {
  const lines: string[] = [];
  const s = report.server;
  lines.push(`${ui.strong(s.name)} (${s.build})${report.dryRun ? ui.warn('  dry run: nothing was changed') : ''}`);
  for (const r of report.results) {
    const mark = r.outcome === 'applied' || r.outcome === 'rolled-back' ? ui.ok(r.outcome.padEnd(17)) : r.outcome === 'failed' || r.outcome === 'conflict' ? ui.bad(r.outcome.padEnd(17)) : ui.warn(r.outcome.padEnd(17));
    lines.push(`  ${r.id.padEnd(28)} ${report.dryRun && (r.outcome === 'applied' || r.outcome === 'rolled-back') ? ui.warn((r.outcome === 'applied' ? 'would apply' : 'would roll back').padEnd(17)) : mark}`);
    if (r.outcome !== 'applied' && r.outcome !== 'rolled-back') lines.push(`      ${r.reason}`);
    for (const c of r.changes) lines.push(`      ${c.kind} ${c.target}: ${fmt(c.before)} -> ${fmt(c.after)}`);
  }
  if (report.results.length === 0) lines.push('  nothing to do');
  if (report.dryRun || verbose) for (const d of report.diffs) lines.push('', d.diff.trimEnd());
  if (report.journal !== null) lines.push('', `journal: ${report.journal}`);
  return lines.join('\n');
}

function fmt(v: unknown): string {
  if (v === null || v === undefined) return 'absent';
  if (typeof v === 'string') return v;
  if (typeof v === 'object') return Object.entries(v as Record<string, unknown>).map(([k, x]) => `${k} ${String(x)}`).join(', ');
  return String(v);
}

/** The human rendering of `status`. */
export function renderStatus(report: StatusReport, ui: Ui): string {
  const lines = [`${ui.strong(report.server.name)} (${report.server.build})`];
  if (report.applied.length === 0) lines.push('  exmit has applied nothing here');
  for (const a of report.applied) {
    lines.push(`  ${a.id.padEnd(28)} ${a.inPlace ? ui.ok('in place') : ui.bad('drifted')}  applied ${a.appliedAt}, catalog ${a.catalogSerial}`);
    for (const d of a.drift) lines.push(`      ${d}`);
  }
  for (const i of report.interrupted) lines.push(ui.bad(`  interrupted run ${i.runId} (${i.mode}), journal ${i.journal}: run "exmit rollback --all" to repair it`));
  lines.push(report.exposed ? ui.bad('Exposed: see exmit audit for what this server needs.') : ui.ok('Not exposed to anything in the catalog.'));
  return lines.join('\n');
}

/** Exit code of a finished status. */
export function statusExit(report: StatusReport): number {
  return report.exposed ? ExitCode.exposed : ExitCode.ok;
}

/**
 * Runs apply or rollback as a command: the run, its warnings, then the report as one JSON document or
 * as text; a run that failed part way (exit 4 or 5) still prints its report, with the error.
 */
export async function runChangeCommand(context: RunContext, raw: Record<string, unknown>, purpose: 'apply' | 'read', run: (input: RunInput) => Promise<RunReport>): Promise<void> {
  const [{ createUi }, { printJson, printText }] = await Promise.all([import('../ui.ts'), import('../output.ts')]);
  const options = readChangeOptions(raw);
  const ui = createUi(options.common, context.output);
  try {
    const report = await withRunInput(context, options, ui, options.dryRun ? 'read' : purpose, (input, catalog) => run({ ...input, confirm: terminalConfirm(context, ui) }).then((r) => ({ ...r, catalog })));
    for (const w of report.warnings) ui.say(ui.err.warn(`warning: ${w}`));
    if (options.common.json) printJson(report, context.output);
    else printText(renderRun(report, ui, options.common.verbose), context.output);
    context.exitCode = ExitCode.ok;
  } catch (error) {
    const { RunFailure } = await import('./run.ts');
    if (!(error instanceof RunFailure)) throw error;
    if (options.common.json) printJson({ ...error.report, error: { code: error.code, message: error.message, hint: error.hint ?? null } }, context.output);
    else {
      printText(renderRun(error.report, ui, options.common.verbose), context.output);
      context.output.stderr(`exmit: ${error.message}\n${error.hint !== undefined ? `  ${error.hint}\n` : ''}`);
    }
    context.exitCode = error.code;
  }
}
