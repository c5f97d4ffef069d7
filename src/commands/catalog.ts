/** `exmit catalog list | show ID`, and the group that holds verify, update, keygen and sign. */
import { Command } from 'commander';
import type { RunContext } from '../context.ts';
import { addCatalogTrustOptions, addCommonOptions, engineOptions, readCatalogTrustOptions, readCommonOptions, type CatalogTrustOptions, type CommonOptions } from '../options.ts';
import type { Ui } from '../ui.ts';
import type { ResolvedCatalog } from '../catalog/source.ts';
import type { Mitigation } from '../catalog/types.ts';
import { usageError } from '../errors.ts';
import { catalogVerifyCommand } from './catalog-verify.ts';
import { catalogUpdateCommand } from './catalog-update.ts';
import { catalogKeygenCommand } from './catalog-keygen.ts';
import { catalogSignCommand } from './catalog-sign.ts';

/** The `catalog` command group. */
export function catalogCommand(context: RunContext): Command {
  const catalog = new Command('catalog').description('the catalog of mitigations: list, show, verify, update, keygen, sign');
  const list = addCatalogTrustOptions(addCommonOptions(new Command('list').description('list the catalog\'s mitigations'), { target: false, catalog: true, stateDir: true })).action(async (raw) => {
    const options = readCommonOptions(raw);
    const trust = readCatalogTrustOptions(raw);
    const [{ createUi }, { printJson, printText, catalogHeader }] = await Promise.all([import('../ui.ts'), import('../output.ts')]);
    const ui = createUi(options, context.output);
    const resolved = await resolveForRead(context, options, trust, ui);
    for (const warning of resolved.warnings) ui.say(ui.warn(`warning: ${warning}`));
    if (options.json) {
      printJson({ catalog: catalogHeader(resolved), mitigations: resolved.catalog.mitigations, warnings: resolved.warnings }, context.output);
    } else {
      printText(renderList(resolved, ui), context.output);
    }
    context.exitCode = 0;
  });
  const show = addCatalogTrustOptions(addCommonOptions(new Command('show').description('show one mitigation (by id or CVE)').argument('<id>', 'mitigation id or CVE number'), { target: false, catalog: true, stateDir: true })).action(async (id: string, raw) => {
    const options = readCommonOptions(raw);
    const trust = readCatalogTrustOptions(raw);
    const [{ createUi }, { printJson, printText, catalogHeader }, { findMitigation }, { nearestId }] = await Promise.all([import('../ui.ts'), import('../output.ts'), import('../catalog/parse.ts'), import('../apply/select.ts')]);
    const ui = createUi(options, context.output);
    const resolved = await resolveForRead(context, options, trust, ui);
    for (const warning of resolved.warnings) ui.say(ui.warn(`warning: ${warning}`));
    const found = findMitigation(resolved.catalog, id);
    if (found.length === 0) {
      const near = nearestId(resolved.catalog, id.toLowerCase());
      throw usageError(`unknown mitigation id "${id}"`, near !== null ? `Did you mean "${near}"? "exmit catalog list" shows every id.` : '"exmit catalog list" shows every id and CVE.');
    }
    if (options.json) {
      printJson({ catalog: catalogHeader(resolved), mitigations: found, warnings: resolved.warnings }, context.output);
    } else {
      printText(found.map((m) => renderOne(m, ui)).join('\n'), context.output);
    }
    context.exitCode = 0;
  });
  catalog.addCommand(list);
  catalog.addCommand(show);
  catalog.addCommand(catalogVerifyCommand(context));
  catalog.addCommand(catalogUpdateCommand(context));
  catalog.addCommand(catalogKeygenCommand(context));
  catalog.addCommand(catalogSignCommand(context));
  return catalog;
}

/** The catalog for a read-only command; on Windows the engine (started only there) checks the state folder first. */
async function resolveForRead(context: RunContext, options: CommonOptions, trust: CatalogTrustOptions, ui: Ui): Promise<ResolvedCatalog> {
  const [{ withLazyEngine }, { windowsHostFor }, { resolveCatalog }] = await Promise.all([import('../powershell/door.ts'), import('../powershell/windows-host.ts'), import('../catalog/source.ts')]);
  const { catalogUsed } = await import('../output.ts');
  const resolved = await withLazyEngine(() => context.startEngine(engineOptions(options, ui)), (engine) =>
    resolveCatalog({ catalog: options.catalog, stateDir: options.stateDir, purpose: 'read', trust: trust.trust, allowUnsigned: trust.allowUnsigned, windows: windowsHostFor(engine) }),
  );
  ui.debug(catalogUsed(resolved));
  return resolved;
}

function renderList(resolved: ResolvedCatalog, ui: Ui): string {
  const rows = resolved.catalog.mitigations.map((m) => [m.id, m.cves.join(', '), m.breaks === null ? '' : `breaks: ${m.breaks}`, m.title]);
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const lines = rows.map((r) => `${ui.strong((r[0] ?? '').padEnd(widths[0] ?? 0))}  ${(r[1] ?? '').padEnd(widths[1] ?? 0)}  ${r[3] ?? ''}${r[2] === '' ? '' : ui.warn(`  (${r[2]})`)}`);
  return [`catalog ${resolved.catalog.serial} (${resolved.source}, published ${resolved.catalog.published})`, '', ...lines].join('\n');
}

function renderOne(m: Mitigation, ui: Ui): string {
  const lines = [
    ui.strong(`${m.id}: ${m.title}`),
    `  CVEs:       ${m.cves.join(', ')}`,
    `  severity:   ${m.severity}`,
    `  products:   ${m.products.map((p) => (p === 'SE' ? 'SE' : `Exchange ${p}`)).join(', ')}; roles: ${m.roles.join(', ')}`,
    `  breaks:     ${m.breaks ?? 'nothing'}`,
  ];
  if (m.sideEffects.length > 0) lines.push(`  side effects: ${m.sideEffects.join('; ')}`);
  lines.push('', `  ${m.description}`, '', '  actions:');
  if (m.actions.length === 0) lines.push('    none: only the security update helps');
  for (const action of m.actions) lines.push(`    - ${describeAction(action)}`);
  lines.push('', '  references:', ...m.references.map((r) => `    ${r}`));
  return lines.join('\n');
}

/** One line describing an action, for people. */
export function describeAction(action: Mitigation['actions'][number]): string {
  switch (action.kind) {
    case 'inbound-rule':
      return `inbound URL Rewrite rule "${action.name}" at ${action.location} (${action.action.type === 'AbortRequest' ? 'abort request' : '403'})`;
    case 'outbound-rule':
      return `outbound URL Rewrite rule "${action.name}" at ${action.location} rewriting ${action.serverVariable}`;
    case 'app-pool':
      return `stop app pool ${action.name} and set autoStart false`;
    case 'service':
      return `stop and disable service ${action.name}${action.products.length > 0 ? ` (Exchange ${action.products.join('/')})` : ''}${action.roles.length > 0 ? ` on ${action.roles.join('/')}` : ''}, where present`;
    case 'remove-global-module':
      return `remove IIS global module ${action.name} (IIS recycles its worker processes)`;
  }
}
