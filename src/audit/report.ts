/** The audit report: plan every mitigation on a server as read, the advice, and the human rendering. */
import { wrapText, type Ui } from '../ui.ts';
import type { ResolvedCatalog } from '../catalog/source.ts';
import type { EngineTarget } from '../powershell/protocol.ts';
import type { IisReading, ServerReading } from '../server.ts';
import { actionApplies, auditServer, EXPOSED, type AuditEntry, type Status } from './plan.ts';
import { adviseServer, type Advice } from './advice.ts';
import { createIisJudge, rewriteModuleInstalled } from './iis-judge.ts';
import { catalogHeader, type CatalogHeader } from '../output.ts';
import type { DetectResult } from '../exchange/detect.ts';
import type { Catalog, Mitigation } from '../catalog/types.ts';
import type { ServerFacts } from '../facts.ts';

/** The result of an audit, as `audit --json` prints it. */
export interface AuditReport {
  server: DetectResult;
  catalog: CatalogHeader;
  mitigations: AuditEntry[];
  /** Some status is exposed, or the server's CU or product gets no more updates (`server.support`). */
  exposed: boolean;
  /** "Do this now", in order. */
  advice: Advice[];
  warnings: string[];
}

/** Plans every mitigation of the catalog on the server as read: the report `audit` prints. */
export function planAudit(target: EngineTarget, resolved: ResolvedCatalog, blocked: ReadonlySet<string>, reading: ServerReading, iis: IisReading | null): AuditReport {
  const judge = iis === null ? null : createIisJudge(iis);
  const mitigations = auditServer(resolved.catalog, {
    server: reading.server,
    facts: reading.facts,
    iis: judge,
    iisMissing: iis === null ? 'this server has no IIS roles' : null,
    blocked,
  });
  const exposed = mitigations.some((m) => EXPOSED.has(m.status)) || reading.server.support.state !== 'current';
  const warnings = [...resolved.warnings];
  if (target.kind === 'image') warnings.push(...missingExportWarnings(reading.facts, reading.server, resolved.catalog, mitigations));
  const targetArg = target.kind === 'image' ? `--target ${quoteArg(`image:${target.path}`)}` : null;
  const rewriteModule = judge === null ? null : rewriteModuleInstalled(judge);
  return { server: reading.server, catalog: catalogHeader(resolved), mitigations, exposed, advice: adviseServer(reading.server, mitigations, resolved.catalog, { targetArg, rewriteModule }), warnings };
}

/** An argument as a shell would need it: quoted when it holds anything but plain path characters. */
function quoteArg(arg: string): string {
  return /^[\w@%+=:,./\\-]+$/.test(arg) ? arg : `"${arg.replace(/(["\\$`])/g, '\\$1')}"`;
}

/** Which mitigation's status a missing export can change (a status that is not-applicable or blocked depends on nothing). */
function dependsOn(file: string, m: Mitigation, server: DetectResult): boolean {
  const kinds = m.actions.filter((a) => actionApplies(a, server)).map((a) => a.kind);
  switch (file.toLowerCase()) {
    case 'exsetup.xml':
      return m.fix.kind === 'exchange';
    case 'services.xml':
      return kinds.includes('service');
    case 'apppools.xml':
      return kinds.includes('app-pool');
    case 'cachtokn.xml':
    case 'os.xml':
      return m.fix.kind === 'windows';
    case 'environment.xml':
    case 'applicationhost.config':
      return kinds.some((k) => k === 'inbound-rule' || k === 'outbound-rule' || k === 'remove-global-module');
    default:
      return true;
  }
}

/** Warnings about missing exports, only for those a status depends on, naming the statuses. */
export function missingExportWarnings(facts: ServerFacts, server: DetectResult, catalog: Catalog, entries: AuditEntry[]): string[] {
  const live = entries.filter((e) => e.status !== 'not-applicable' && e.status !== 'blocked');
  const warnings: string[] = [];
  for (const file of facts.missing) {
    const ids = live.filter((e) => {
      const m = catalog.mitigations.find((x) => x.id === e.id);
      return m !== undefined && dependsOn(file, m, server);
    }).map((e) => e.id);
    if (ids.length > 0) warnings.push(`the image has no ${file}: the statuses that depend on it err on the side of caution (${ids.join(', ')})`);
  }
  return warnings;
}

/** Every site path that a probe of the catalog targets. */
export function probePaths(catalog: Catalog): { site: string; url: string }[] {
  return catalog.mitigations.flatMap((m) => m.probes.map((p) => ({ site: p.site, url: p.url })));
}

const STATUS_ORDER: Status[] = ['needed', 'partial', 'outdated', 'patch-only', 'mitigated', 'blocked', 'fixed', 'not-applicable'];

function colourStatus(status: Status, ui: Ui): string {
  const text = status.padEnd(14);
  if (status === 'needed' || status === 'partial' || status === 'outdated' || status === 'patch-only') return ui.bad(text);
  if (status === 'mitigated' || status === 'blocked') return ui.warn(text);
  if (status === 'fixed') return ui.ok(text);
  return ui.dim(text);
}

/** The human rendering: a compact table with each reason wrapped under its row, a verdict, the support line, and "Do this now". */
export function renderAudit(report: AuditReport, ui: Ui): string {
  const s = report.server;
  const width = ui.width;
  const header = wrapText(`${s.name} (${s.build}${s.suLevelKnown ? '' : ', SU level unknown'}), ${s.roles.join(', ')}`, width, '', '  ');
  header[0] = (header[0] ?? '').replace(s.name, ui.strong(s.name));
  const lines = [...header, ui.dim(`catalog ${report.catalog.serial} (${report.catalog.source})`), ''];
  const idWidth = Math.max(...report.mitigations.map((m) => m.id.length));
  const sorted = [...report.mitigations].sort((a, b) => STATUS_ORDER.indexOf(a.status) - STATUS_ORDER.indexOf(b.status));
  const under = ' '.repeat(17);
  for (const m of sorted) {
    lines.push(`  ${colourStatus(m.status, ui)} ${ui.strong(m.id.padEnd(idWidth))}  ${m.cves.join(', ')}`);
    lines.push(...wrapText(m.reason, width, under));
    if (ui.options.verbose) for (const b of m.bypasses) lines.push(...wrapText(`gets through: ${b}`, width, `${under}- `, `${under}  `));
    if (m.breaks !== null && (m.status === 'needed' || m.status === 'partial')) lines.push(...wrapText(`applying it stops: ${m.breaks}`, width, under).map((l) => ui.warn(l)));
  }
  lines.push('');
  const counts = new Map<Status, number>();
  for (const m of report.mitigations) counts.set(m.status, (counts.get(m.status) ?? 0) + 1);
  const summary = STATUS_ORDER.filter((st) => counts.has(st)).map((st) => `${counts.get(st)} ${st}`).join(', ');
  const statusesExposed = report.mitigations.some((m) => EXPOSED.has(m.status));
  if (statusesExposed) lines.push(ui.bad(`EXPOSED: ${summary}`));
  else if (report.exposed) lines.push(...wrapText(`EXPOSED: nothing in the catalog is open (${summary}), but this server gets no more updates`, width, '', '  ').map((l) => ui.bad(l)));
  else lines.push(ui.ok(`Not exposed to anything in the catalog: ${summary}`));
  if (s.support.state !== 'current') {
    const label = s.support.state === 'product-ended' ? 'PRODUCT ENDED: ' : 'CU BEHIND: ';
    lines.push(...wrapText(label + s.support.reason, width, '', '  ').map((l) => ui.bad(l)));
  }
  if (report.advice.length > 0) {
    lines.push('', ui.strong('Do this now:'));
    report.advice.forEach((a, i) => {
      const n = `${i + 1}. `;
      lines.push(...wrapText(a.text, width, `  ${n}`, ' '.repeat(2 + n.length)));
    });
  }
  return lines.join('\n');
}
