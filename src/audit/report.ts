/** The audit report: plan every mitigation on a server as read, the advice, and the human rendering. */
import type { Ui } from '../ui.ts';
import type { ResolvedCatalog } from '../catalog/source.ts';
import type { EngineTarget } from '../powershell/protocol.ts';
import type { IisReading, ServerReading } from '../server.ts';
import { auditServer, EXPOSED, type AuditEntry, type Status } from './plan.ts';
import { createIisJudge } from './iis-judge.ts';
import { catalogHeader, type CatalogHeader } from '../output.ts';
import type { DetectResult } from '../exchange/detect.ts';
import { entriesOfProduct, latestForCu } from '../exchange/build-table.ts';
import type { Catalog } from '../catalog/types.ts';

/** The result of an audit, as `audit --json` prints it. */
export interface AuditReport {
  server: DetectResult;
  catalog: CatalogHeader;
  mitigations: AuditEntry[];
  exposed: boolean;
  advice: string[];
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
  const exposed = mitigations.some((m) => EXPOSED.has(m.status));
  const warnings = [...resolved.warnings];
  if (target.kind === 'image' && reading.facts.missing.length > 0) {
    warnings.push(`the image has no ${reading.facts.missing.join(', ')}: statuses that depend on them err on the side of caution`);
  }
  return { server: reading.server, catalog: catalogHeader(resolved), mitigations, exposed, advice: advise(reading.server, mitigations), warnings };
}

/** Every site path that a probe of the catalog targets. */
export function probePaths(catalog: Catalog): { site: string; url: string }[] {
  return catalog.mitigations.flatMap((m) => m.probes.map((p) => ({ site: p.site, url: p.url })));
}

/** What to do next, in words: the update to install and the reminder that mitigating is not remediating. */
export function advise(server: DetectResult, entries: AuditEntry[]): string[] {
  const vulnerable = entries.filter((e) => EXPOSED.has(e.status) || e.status === 'mitigated');
  const advice: string[] = [];
  if (vulnerable.length > 0) {
    const noUpdate = vulnerable.filter((e) => e.fixedBy === null && e.id !== 'tokencache-module');
    const windowsOnly = vulnerable.some((e) => e.id === 'tokencache-module');
    if (noUpdate.length > 0) {
      const newest = [...entriesOfProduct(server.productKey)].reverse().find((e) => e.update === null);
      advice.push(`${server.name} has no update that fixes ${noUpdate.map((e) => e.id).join(', ')}: move to a supported CU${newest !== undefined ? ` (the newest is ${newest.name}, ${newest.build})` : ''} and its latest security update.`);
    } else if (vulnerable.some((e) => e.fixedBy !== null)) {
      const latest = server.cu !== null ? latestForCu(server.productKey, server.cu) : null;
      advice.push(`Install the latest security update for ${server.cu ?? 'this CU'}${latest !== null ? `: ${latest.name} (${latest.build})` : ''}.`);
    }
    if (windowsOnly) advice.push('Install the Windows security updates from October 2023 or later (IIS token cache, CVE-2023-21709/CVE-2023-36434).');
  }
  advice.push('Mitigating is not remediating: a server exposed before it was mitigated may already be compromised. Install the security update, then check for compromise (Microsoft\'s Test-ProxyLogon, MSERT, HealthChecker).');
  return advice;
}

const STATUS_ORDER: Status[] = ['needed', 'partial', 'outdated', 'patch-only', 'mitigated', 'blocked', 'fixed', 'not-applicable'];

function colourStatus(status: Status, ui: Ui): string {
  const text = status.padEnd(14);
  if (status === 'needed' || status === 'partial' || status === 'outdated' || status === 'patch-only') return ui.bad(text);
  if (status === 'mitigated' || status === 'blocked') return ui.warn(text);
  if (status === 'fixed') return ui.ok(text);
  return ui.dim(text);
}

/** The human rendering: a compact table, a one-line verdict, the update to install, the reminder. */
export function renderAudit(report: AuditReport, ui: Ui): string {
  const s = report.server;
  const lines = [
    `${ui.strong(s.name)} (${s.build}${s.suLevelKnown ? '' : ', SU level unknown'}), ${s.roles.join(', ')}`,
    ui.dim(`catalog ${report.catalog.serial} (${report.catalog.source})`),
    '',
  ];
  const idWidth = Math.max(...report.mitigations.map((m) => m.id.length));
  const sorted = [...report.mitigations].sort((a, b) => STATUS_ORDER.indexOf(a.status) - STATUS_ORDER.indexOf(b.status));
  for (const m of sorted) {
    lines.push(`  ${colourStatus(m.status, ui)} ${ui.strong(m.id.padEnd(idWidth))}  ${m.cves.join(', ')}`);
    lines.push(`  ${' '.repeat(14)} ${ui.dim(m.reason)}`);
    if (m.breaks !== null && (m.status === 'needed' || m.status === 'partial')) lines.push(`  ${' '.repeat(14)} ${ui.warn(`applying it stops: ${m.breaks}`)}`);
  }
  lines.push('');
  const counts = new Map<Status, number>();
  for (const m of report.mitigations) counts.set(m.status, (counts.get(m.status) ?? 0) + 1);
  const summary = STATUS_ORDER.filter((st) => counts.has(st)).map((st) => `${counts.get(st)} ${st}`).join(', ');
  lines.push(report.exposed ? ui.bad(`EXPOSED: ${summary}`) : ui.ok(`Not exposed to anything in the catalog: ${summary}`));
  for (const a of report.advice) lines.push(a);
  return lines.join('\n');
}
