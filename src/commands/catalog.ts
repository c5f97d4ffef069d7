/** `exmit catalog list | show ID`: the catalog's mitigations. */
import { Command } from 'commander';
import type { RunContext } from '../cli.ts';
import { addCatalogTrustOptions, addCommonOptions, engineOptions, readCatalogTrustOptions, readCommonOptions, type CatalogTrustOptions, type CommonOptions } from '../options.ts';
import { withLazyEngine } from '../powershell/door.ts';
import { windowsHostFor } from '../powershell/windows-host.ts';
import { createUi, type Ui } from '../ui.ts';
import { resolveCatalog, type ResolvedCatalog } from '../catalog/source.ts';
import { findMitigation } from '../catalog/parse.ts';
import type { Mitigation } from '../catalog/types.ts';
import { printJson, printText } from '../output.ts';
import { usageError } from '../errors.ts';
import { trustCommands } from './catalog-trust.ts';

/** The `catalog` command group. */
export function catalogCommand(context: RunContext): Command {
  const catalog = new Command('catalog').description('the catalog of mitigations: list, show, verify, update, keygen, sign');
  const list = addCatalogTrustOptions(addCommonOptions(new Command('list').description('list the catalog\'s mitigations'), false)).action(async (raw) => {
    const options = readCommonOptions(raw);
    const trust = readCatalogTrustOptions(raw);
    const ui = createUi(options);
    const resolved = await resolveForRead(options, trust, ui);
    for (const warning of resolved.warnings) ui.say(ui.warn(`warning: ${warning}`));
    if (options.json) {
      printJson({ catalog: catalogHeader(resolved), mitigations: resolved.catalog.mitigations });
    } else {
      printText(renderList(resolved, ui));
    }
    context.exitCode = 0;
  });
  const show = addCatalogTrustOptions(addCommonOptions(new Command('show').description('show one mitigation (by id or CVE)').argument('<id>', 'mitigation id or CVE number'), false)).action(async (id: string, raw) => {
    const options = readCommonOptions(raw);
    const trust = readCatalogTrustOptions(raw);
    const ui = createUi(options);
    const resolved = await resolveForRead(options, trust, ui);
    for (const warning of resolved.warnings) ui.say(ui.warn(`warning: ${warning}`));
    const found = findMitigation(resolved.catalog, id);
    if (found.length === 0) throw usageError(`unknown mitigation id "${id}"`, 'Run "exmit catalog list" to see the ids.');
    if (options.json) {
      printJson({ catalog: catalogHeader(resolved), mitigations: found });
    } else {
      printText(found.map((m) => renderOne(m, ui)).join('\n'));
    }
    context.exitCode = 0;
  });
  catalog.addCommand(list);
  catalog.addCommand(show);
  for (const command of trustCommands(context)) catalog.addCommand(command);
  return catalog;
}

/** The catalog for a read-only command; on Windows the engine checks the state folder first. */
function resolveForRead(options: CommonOptions, trust: CatalogTrustOptions, ui: Ui): Promise<ResolvedCatalog> {
  return withLazyEngine(engineOptions(options, ui), (engine) =>
    resolveCatalog({ catalog: options.catalog, stateDir: options.stateDir, purpose: 'read', trust: trust.trust, allowUnsigned: trust.allowUnsigned, windows: windowsHostFor(engine) }),
  );
}

/** The `catalog` object of JSON outputs: where it came from and which serial. */
export function catalogHeader(resolved: ResolvedCatalog): { source: string; serial: number; published: string; expires: string; location: string } {
  return { source: resolved.source, serial: resolved.catalog.serial, published: resolved.catalog.published, expires: resolved.catalog.expires, location: resolved.location };
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
