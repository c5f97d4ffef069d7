/**
 * apply, rollback and status as services over the run's one engine: read the server, plan (pure),
 * show or confirm, then have the engine lock, journal and execute, read the server again and
 * verify; on failure undo the run. Commands only parse options and render what these return.
 */
import { randomBytes } from 'node:crypto';
import type { Engine } from '../context.ts';
import type { EngineTarget } from '../powershell/protocol.ts';
import type { Catalog } from '../catalog/types.ts';
import type { ServerFacts } from '../facts.ts';
import type { DetectResult } from '../exchange/detect.ts';
import type { AuditEntry } from '../audit/plan.ts';
import { ExitCode, ExmitError, inputError, usageError } from '../errors.ts';
import { readIis, readServer, servicesWanted, type IisReading, type ServerReading } from '../server.ts';
import { auditServer } from '../audit/plan.ts';
import { createIisJudge, rewriteModuleInstalled } from '../audit/iis-judge.ts';
import { probePaths } from '../audit/report.ts';
import { URL_REWRITE_DOWNLOAD } from '../audit/advice.ts';
import { parseConfigXml } from '../iis/config-xml.ts';
import { parseSectionFile, REWRITE_SECTIONS } from '../iis/config-source.ts';
import { readGlobalModules } from '../iis/sites.ts';
import { decodeText, sha256Of } from '../text/encoding.ts';
import { selectForApply, resolveIds, type Selected } from './select.ts';
import { describeChange, planChanges, type ChangePlan, type HeldChange } from './changes.ts';
import { emptyLedger, ledgerAfterApply, ledgerAfterRollback, parseLedger, serializeLedger, type Ledger, type LedgerFile, type LedgerResource } from './ledger.ts';
import { parseJournal, stepsToRepair, unfinishedRuns, type JournalRun } from './journal.ts';
import { globalModuleOrigin, parseApphost, ruleNamesIn, applyToApphost, restoreInApphost } from './apphost-edit.ts';
import { imageApplyWrites, imageRollbackWrites, poolsFromApphost, type FileChange, type FileStep, type ImageFile, type ImageFileId } from './image.ts';
import { liveApplySteps, liveRestoreSteps, type LiveStep } from './live-steps.ts';
import { factsAfterChanges } from './simulate.ts';
import { confirmQuestion, describePlan, unifiedDiff } from './render.ts';
import { readAppPoolState, readServiceState } from './clixml-edit.ts';

/** An outcome of the contract (product.md, "JSON output"). */
export type Outcome = 'applied' | 'already-mitigated' | 'rolled-back' | 'not-applied' | 'failed' | 'skipped' | 'conflict';

/** One change as the JSON output reports it. */
export interface ChangeRecord {
  kind: string;
  target: string;
  before: unknown;
  after: unknown;
}

/** One mitigation's result. */
export interface RunResult {
  id: string;
  outcome: Outcome;
  reason: string;
  changes: ChangeRecord[];
}

/** What apply and rollback report. */
export interface RunReport {
  server: DetectResult;
  dryRun: boolean;
  results: RunResult[];
  /** The plan in words (also shown before the prompt). */
  plan: string[];
  /** Unified diffs of image files (dry run and --verbose). */
  diffs: { file: string; diff: string }[];
  /** The run's journal file name; null when nothing was executed. */
  journal: string | null;
  warnings: string[];
}

/** A run that failed part way: the report so far and the error, for one JSON document with both. */
export class RunFailure extends ExmitError {
  readonly report: RunReport;

  constructor(error: ExmitError, report: RunReport, code: 4 | 5) {
    super(code, error.message, error.hint, error.kind, error.details);
    this.report = report;
  }
}

/** How a run asks the person at the terminal; resolves false for "no". */
export type Confirm = (question: string, details: readonly string[]) => Promise<boolean>;

/** What every run of these services needs. */
export interface RunInput {
  engine: Engine;
  target: EngineTarget;
  catalog: Catalog;
  catalogSerial: number;
  blocked: ReadonlySet<string>;
  /** Yes without asking (--yes). */
  yes: boolean;
  dryRun: boolean;
  confirm: Confirm;
  /** A test hook passed to the engine (EXMIT_TEST_FAULT, honoured only by an engine run with EXMIT_TEST_HOOKS=1). */
  fault: unknown;
  progress: (text: string) => void;
  /** The catalog's own warnings (an old bundled catalog, a feed that could not be reached), carried into the report. */
  catalogWarnings?: readonly string[];
}

const APPHOST_PATH = 'C:\\Windows\\System32\\inetsrv\\config\\applicationHost.config';

/** A new run id: UTC time and random hex ("20261201T051500Z-1a2b3c"). */
export function newRunId(now: Date = new Date()): string {
  return `${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

/** The fault hook from EXMIT_TEST_FAULT (JSON), for the engine's test hooks; null when unset. */
export function faultFromEnv(env: NodeJS.ProcessEnv = process.env): unknown {
  const raw = env['EXMIT_TEST_FAULT'];
  if (raw === undefined || raw === '') return null;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw usageError(`EXMIT_TEST_FAULT="${raw}" is not JSON`);
  }
}

interface ServerState {
  reading: ServerReading;
  iis: IisReading | null;
  audit: AuditEntry[];
}

async function readState(input: RunInput, blocked: ReadonlySet<string>): Promise<ServerState> {
  const reading = await readServer(input.engine, input.target, servicesWanted(input.catalog));
  const iis = await readIis(input.engine, input.target, reading, probePaths(input.catalog));
  const audit = auditOf(input.catalog, reading, iis, blocked);
  return { reading, iis, audit };
}

function auditOf(catalog: Catalog, reading: { facts: ServerFacts; server: DetectResult }, iis: IisReading | null, blocked: ReadonlySet<string>): AuditEntry[] {
  return auditServer(catalog, { server: reading.server, facts: reading.facts, iis: iis === null ? null : createIisJudge(iis), iisMissing: iis === null ? 'this server has no IIS roles' : null, blocked });
}

/** The ledger and journals of the target's state folder (image: DIR/.exmit; live: %ProgramData%\exmit). */
export interface ExmitState {
  ledger: Ledger;
  ledgerBytes: Uint8Array | null;
  journals: { name: string; run: JournalRun }[];
  where: string;
}

/** Reads and checks the ledger and journals; damage is an error naming the file. */
export async function readExmitState(engine: Engine, target: EngineTarget): Promise<ExmitState> {
  const state = await engine.call('readState', { target });
  const where = target.kind === 'image' ? `${target.path}/.exmit` : '%ProgramData%\\exmit';
  const ledger = state.ledger === null ? emptyLedger() : parseLedger(decodeText(state.ledger.data).text, `${where}/ledger.json`);
  const journals = state.journals.map((j) => ({ name: j.name, run: parseJournal(decodeText(j.data).text, `${where}/journal/${j.name}`) }));
  return { ledger, ledgerBytes: state.ledger?.data ?? null, journals, where };
}

function interruptedOf(state: ExmitState): { name: string; run: JournalRun }[] {
  // A run that wrote the ledger finished its changes even if its end line is missing.
  return unfinishedRuns(state.journals.map((j) => j.run))
    .filter((r) => r.runId !== state.ledger.lastRun && !state.ledger.settled.includes(r.runId))
    .map((run) => ({ name: state.journals.find((j) => j.run === run)?.name ?? run.runId, run }));
}

function requireRewriteModule(changes: readonly HeldChange[], iis: IisReading | null): void {
  if (iis === null || !changes.some((c) => c.change.kind === 'inbound-rule' || c.change.kind === 'outbound-rule')) return;
  if (!rewriteModuleInstalled(createIisJudge(iis))) {
    throw inputError('the IIS URL Rewrite module (RewriteModule) is not installed on this server, so its rules cannot take effect; nothing was changed', `Install IIS URL Rewrite 2.1 (${URL_REWRITE_DOWNLOAD}), then run exmit apply again; the mitigations that are not rules can be applied now by naming them.`);
  }
}

function existingNames(iis: IisReading | null): Set<string> {
  const names = new Set<string>();
  if (iis === null) return names;
  for (const n of ruleNamesIn(parseApphost(iis.apphost.text, iis.apphost.file))) names.add(n);
  for (const [key, text] of iis.webConfigs) {
    if (text === null) continue;
    try {
      for (const n of ruleNamesIn(parseApphost(text, key))) names.add(n);
    } catch {
      // An unreadable web.config was already reported by the audit; it adds no names.
    }
  }
  // Rules in sections kept in another file (configSource) exist too.
  for (const [key, text] of iis.configSources ?? []) {
    if (text === null) continue;
    try {
      const doc = parseSectionFile(text, key);
      for (const n of ruleNamesIn(doc, REWRITE_SECTIONS.has(doc.root.name))) names.add(n);
    } catch {
      // A configSource file that is not well-formed was already reported by the audit; it adds no names.
    }
  }
  return names;
}

function modulesOf(iis: IisReading | null): Map<string, { image: string; xml: string | null; after: string | null }> {
  const out = new Map<string, { image: string; xml: string | null; after: string | null }>();
  if (iis === null) return out;
  const doc = parseApphost(iis.apphost.text, iis.apphost.file);
  for (const g of readGlobalModules(iis.apphost)) out.set(g.name.toLowerCase(), { image: g.image, ...(globalModuleOrigin(doc, g.name) ?? { xml: null, after: null }) });
  return out;
}

/** The image files exmit may change, as they are now. */
async function readImageFiles(engine: Engine, target: EngineTarget, reading: ServerReading): Promise<Record<ImageFileId, ImageFile>> {
  const answer = await engine.call('readFiles', { target, paths: ['services.xml', 'apppools.xml'] });
  const byName = new Map(answer.files.map((f) => [f.path.toLowerCase(), f.data]));
  const apphost = reading.facts.applicationHost;
  return {
    apphost: { id: 'apphost', path: apphost?.path ?? APPHOST_PATH, label: 'applicationHost.config', bytes: apphost?.data ?? null },
    services: { id: 'services', path: 'services.xml', label: 'services.xml', bytes: byName.get('services.xml') ?? null },
    apppools: { id: 'apppools', path: 'apppools.xml', label: 'apppools.xml', bytes: byName.get('apppools.xml') ?? null },
  };
}

/** The IIS reading with a new applicationHost.config text (to judge a plan before executing it). */
function iisWith(iis: IisReading, text: string): IisReading {
  return { ...iis, apphost: parseConfigXml(text, iis.apphost.file) };
}

function recordOf(change: HeldChange['change']): ChangeRecord {
  switch (change.kind) {
    case 'service':
      return { kind: 'service', target: change.name, before: change.before, after: change.after };
    case 'app-pool':
      return { kind: 'app-pool', target: change.name, before: change.before, after: change.after };
    case 'inbound-rule':
    case 'outbound-rule':
      return { kind: change.kind, target: `${change.location}: ${change.name}`, before: null, after: 'present' };
    case 'remove-global-module':
      return { kind: 'global-module', target: change.name, before: 'present', after: null };
  }
}

function releaseRecord(r: LedgerResource): ChangeRecord {
  switch (r.kind) {
    case 'service':
      return { kind: 'service', target: r.name, before: r.applied, after: r.original };
    case 'app-pool':
      return { kind: 'app-pool', target: r.name, before: r.applied, after: r.original };
    case 'inbound-rule':
    case 'outbound-rule':
      return { kind: r.kind, target: `${r.location}: ${r.name}`, before: 'present', after: null };
    case 'remove-global-module':
      return { kind: 'global-module', target: r.name, before: null, after: 'present' };
  }
}

/** Sends a run to the engine; a failure becomes exit 4 (undone) or 5 (not undone) with the report. */
async function execute(input: RunInput, runId: string, mode: 'apply' | 'rollback' | 'repair' | 'undo', plan: unknown, steps: readonly (FileStep | LiveStep)[], ledger: Ledger | null, report: RunReport, failedIds: readonly string[]): Promise<string> {
  try {
    const answer = await input.engine.call(
      'execute',
      { target: input.target, runId, mode, catalogSerial: input.catalogSerial, plan, steps, ledger: ledger === null ? null : { data: Buffer.from(serializeLedger(ledger)).toString('base64') }, fault: input.fault },
      { onEvent: (e) => input.progress(e.message) },
    );
    return answer.journal;
  } catch (error) {
    if (!(error instanceof ExmitError) || (error.kind !== 'conflict' && error.kind !== 'step' && error.kind !== 'fault')) throw error;
    const undone = error.details?.['undone'] === true;
    for (const r of report.results) if (failedIds.includes(r.id)) r.outcome = 'failed';
    const journal = `${input.target.kind === 'image' ? `${input.target.path}/.exmit` : '%ProgramData%\\exmit'}/journal/${runId}.jsonl`;
    report.journal = `${runId}.jsonl`;
    const hint = undone
      ? `Every change of this run was undone; the server is as it was. The journal is ${journal}.`
      : `Undoing failed too: run "exmit rollback --all${input.target.kind === 'image' ? ` --target image:${input.target.path}` : ''}" to repair, and "exmit status" to see what is in place. The journal is ${journal}.`;
    throw new RunFailure(new ExmitError(undone ? ExitCode.failedUndone : ExitCode.failedNotUndone, `${mode === 'rollback' ? 'rollback' : 'apply'} failed: ${error.message}`, hint, error.kind, error.details), report, undone ? 4 : 5);
  }
}

async function withLock<T>(input: RunInput, runId: string, work: () => Promise<T>): Promise<T> {
  await input.engine.call('lock', { target: input.target, runId });
  try {
    return await work();
  } finally {
    try {
      await input.engine.call('unlock', { target: input.target, runId });
    } catch {
      // The engine releases its lock when it exits, too.
    }
  }
}

async function ask(input: RunInput, question: string, details: readonly string[]): Promise<void> {
  if (input.yes) return;
  if (!(await input.confirm(question, details))) throw new ExmitError(ExitCode.error, 'nothing was changed: the answer was not yes', undefined);
}

/** `exmit apply`: plan, show or confirm, execute, verify; all or nothing. */
export async function runApply(input: RunInput, request: { ids: string[]; needed: boolean; allowBreaking: boolean }): Promise<RunReport> {
  if (request.ids.length === 0 && !request.needed) throw usageError('name the mitigations to apply (ids or CVE numbers), or use --needed', 'exmit catalog list shows the ids; exmit audit shows what this server needs.');
  resolveIds(input.catalog, request.ids);
  const runId = newRunId();
  const body = async (): Promise<RunReport> => {
    const state = await readExmitState(input.engine, input.target);
    const interrupted = interruptedOf(state);
    if (interrupted.length > 0 && !input.dryRun) {
      throw inputError(`an earlier exmit run on this server was interrupted (${interrupted.map((i) => i.name).join(', ')} in ${state.where}/journal): nothing was changed`, `Run "exmit rollback --all${input.target.kind === 'image' ? ` --target image:${input.target.path}` : ''}" first: it repairs what the interrupted run left.`);
    }
    const server = await readState(input, input.blocked);
    const selected = selectForApply(input.catalog, server.audit, request);
    const plan = planChanges(selected, planInputOf(server));
    requireRewriteModule(plan.changes, server.iis);
    const report: RunReport = { server: server.reading.server, dryRun: input.dryRun, results: resultsOf(selected, plan), plan: plan.changes.map((c) => describeChange(c.change)), diffs: [], journal: null, warnings: [...(input.catalogWarnings ?? []), ...(interrupted.length > 0 ? [`an earlier run was interrupted (${interrupted.map((i) => i.name).join(', ')}): "exmit rollback --all" repairs it`] : [])] };
    const applying = selected.filter((s) => s.skip === null && !s.already && (plan.byMitigation.get(s.mitigation.id) ?? []).length > 0);
    if (plan.changes.length === 0) return report;

    const at = new Date().toISOString();
    let steps: (FileStep | LiveStep)[];
    let writes: FileChange[] = [];
    let newApphost: string | null = null;
    if (input.target.kind === 'image') {
      const files = await readImageFiles(input.engine, input.target, server.reading);
      writes = imageApplyWrites(files, plan.changes, poolsFromApphost(appPoolsOfApphost(server.iis)));
      steps = writes.map((w) => w.step);
      newApphost = writes.find((w) => w.file.id === 'apphost')?.afterText ?? null;
      report.diffs = writes.map((w) => ({ file: w.file.label, diff: unifiedDiff(w.file.label, w.beforeText ?? '', w.afterText ?? '') }));
    } else {
      steps = liveApplySteps(plan.changes);
      if (server.iis !== null) {
        let text = server.iis.apphost.text;
        for (const c of plan.changes) text = applyToApphost(text, server.iis.apphost.file, c.change);
        newApphost = text;
      }
    }
    // Judge the plan before anything changes: every mitigation applied must be in effect on the new configuration.
    const predicted = auditOf(input.catalog, { facts: factsAfterChanges(server.reading.facts, plan.changes), server: server.reading.server }, server.iis === null ? null : newApphost === null ? server.iis : iisWith(server.iis, newApphost), input.blocked);
    const short = applying.map((s) => predicted.find((e) => e.id === s.mitigation.id)).filter((e): e is AuditEntry => e !== undefined && e.status !== 'mitigated');
    if (short.length > 0) {
      throw inputError(`the plan would not put ${short.map((e) => `${e.id} (${e.status}: ${e.reason})`).join('; ')} in effect, so nothing was changed`, 'Something on this server overrides exmit\'s rules (an earlier rule that stops processing, a <clear/>, a removed RewriteModule): run exmit audit --verbose to see it.');
    }
    if (input.dryRun) return report;
    await ask(input, confirmQuestion('Apply', applying.length, serverName(server.reading)), describePlan(applying.map((s) => s.mitigation), plan.changes));

    const ledgerFiles: Record<string, LedgerFile> = {};
    for (const w of writes) ledgerFiles[w.file.id] = { original: w.step.before, written: w.step.after?.sha256 ?? null, ...(w.created !== undefined && w.created.length > 0 ? { created: w.created } : {}) };
    const newLedger = ledgerAfterApply(state.ledger, { runId, at, catalogSerial: input.catalogSerial }, plan.changes, plan.byMitigation, ledgerFiles);
    const ids = applying.map((s) => s.mitigation.id);
    report.journal = await execute(input, runId, 'apply', { mitigations: ids, changes: report.plan }, steps, newLedger, report, ids);

    // Read the server again: anything not in effect undoes the run.
    const after = await readState(input, input.blocked);
    const notInEffect = ids.map((id) => after.audit.find((e) => e.id === id)).filter((e): e is AuditEntry => e !== undefined && e.status !== 'mitigated');
    if (notInEffect.length > 0) {
      const undoRun = `${runId}-undo`;
      const undoSteps = input.target.kind === 'image' ? writes.map((w) => undoFileStep(w)).reverse() : liveRestoreSteps(plan.changes.map((c) => newLedger.resources[c.change.key] ?? null).filter((r): r is LedgerResource => r !== null));
      const failure = new ExmitError(ExitCode.failedUndone, `after the change the server still shows ${notInEffect.map((e) => `${e.id} as ${e.status}`).join(', ')}`, undefined, 'step', { undone: true });
      await execute(input, undoRun, 'undo', { undo: runId }, undoSteps, state.ledger, report, ids);
      for (const r of report.results) if (ids.includes(r.id)) r.outcome = 'failed';
      throw new RunFailure(new ExmitError(ExitCode.failedUndone, `apply failed: ${failure.message}; every change of this run was undone`, `Journal: ${runId}.jsonl and ${undoRun}.jsonl. Run exmit audit --verbose to see why the mitigation does not take effect.`, 'step'), report, 4);
    }
    return report;
  };
  return input.dryRun ? body() : withLock(input, runId, body);
}

function planInputOf(server: ServerState) {
  return { server: server.reading.server, facts: server.reading.facts, existingNames: existingNames(server.iis), globalModules: modulesOf(server.iis) };
}

function appPoolsOfApphost(iis: IisReading | null): { name: string; autoStart: boolean; startMode: string }[] {
  if (iis === null) return [];
  const pools: { name: string; autoStart: boolean; startMode: string }[] = [];
  for (const sa of iis.apphost.root.children.filter((c) => c.name === 'system.applicationHost')) {
    for (const ap of sa.children.filter((c) => c.name === 'applicationPools')) {
      for (const add of ap.children.filter((c) => c.name === 'add')) {
        const name = add.attributes['name'];
        if (name === undefined) continue;
        pools.push({ name, autoStart: (add.attributes['autoStart'] ?? 'true').toLowerCase() !== 'false', startMode: add.attributes['startMode'] ?? 'OnDemand' });
      }
    }
  }
  return pools;
}

function undoFileStep(w: FileChange): FileStep {
  const original = w.file.bytes;
  return { kind: 'file', path: w.file.path, before: w.step.after?.sha256 ?? null, after: original === null ? null : { data: Buffer.from(original).toString('base64'), sha256: sha256Of(original) } };
}

function serverName(reading: ServerReading): string {
  return reading.facts.target.computerName ?? (reading.facts.target.path !== null ? `the image ${reading.facts.target.path}` : 'this server');
}

function resultsOf(selected: readonly Selected[], plan: ChangePlan): RunResult[] {
  return selected.map((s) => {
    if (s.skip !== null) return { id: s.mitigation.id, outcome: 'skipped', reason: s.skip, changes: [] };
    const keys = plan.byMitigation.get(s.mitigation.id) ?? [];
    if (s.already || keys.length === 0) return { id: s.mitigation.id, outcome: 'already-mitigated', reason: `already in effect, nothing to change: ${s.entry.reason}`, changes: [] };
    const changes = plan.changes.filter((c) => keys.includes(c.change.key)).map((c) => recordOf(c.change));
    return { id: s.mitigation.id, outcome: 'applied', reason: s.entry.reason, changes };
  });
}

const EEMS_STEPS = 'EEMS applied it and would apply it again: to remove it, first block it in EEMS (Set-OrganizationConfig -MitigationsBlocked, or on one server Set-ExchangeServer -MitigationsBlocked), then remove the rule in IIS Manager.';

/** `exmit rollback`: undo exactly what exmit applied (ids or --all), repairing interrupted runs first. */
export async function runRollback(input: RunInput, request: { ids: string[]; all: boolean }): Promise<RunReport> {
  if (request.ids.length === 0 && !request.all) throw usageError('name the mitigations to roll back, or use --all', 'exmit status shows what exmit applied here.');
  const named = resolveIds(input.catalog, request.ids);
  const runId = newRunId();
  const body = async (): Promise<RunReport> => {
    const state = await readExmitState(input.engine, input.target);
    const server = await readState(input, new Set());
    const report: RunReport = { server: server.reading.server, dryRun: input.dryRun, results: [], plan: [], diffs: [], journal: null, warnings: [...(input.catalogWarnings ?? [])] };
    const ids = request.all ? Object.keys(state.ledger.mitigations) : named.map((m) => m.id);
    for (const m of named) {
      if (state.ledger.mitigations[m.id] !== undefined) continue;
      const entry = server.audit.find((e) => e.id === m.id);
      const inPlace = entry !== undefined && (entry.status === 'mitigated' || entry.stillApplied);
      const eems = inPlace && /EEMS/.test(entry.reason);
      report.results.push({ id: m.id, outcome: 'not-applied', reason: eems ? `exmit did not apply it; ${EEMS_STEPS}` : inPlace ? 'exmit did not apply it; what is in place (another tool\'s or a hand-made rule) is left alone' : 'exmit did not apply it here', changes: [] });
    }

    // Repair interrupted runs first: state equal to the prior one needs nothing, equal to what was written is undone, anything else is a conflict.
    const repairs = await repairSteps(input, state, server);
    const toRelease = ids.filter((id) => state.ledger.mitigations[id] !== undefined);
    const { released, ledger: nextLedger } = ledgerAfterRollback(state.ledger, toRelease, runId, {});
    // The interrupted runs this run repairs are settled once it succeeds.
    nextLedger.settled = [...new Set([...nextLedger.settled, ...interruptedOf(state).map((i) => i.run.runId)])];
    let steps: (FileStep | LiveStep)[] = [...repairs.steps];
    const conflicts: { key: string; detail: string; holders: string[] }[] = repairs.conflicts.map((c) => ({ key: c, detail: c, holders: [] }));
    if (input.target.kind === 'image') {
      const files = await readImageFiles(input.engine, input.target, server.reading);
      const originals = new Map<string, Uint8Array>();
      for (const f of Object.values(state.ledger.files)) {
        if (f.original === null || f.foreign === true) continue;
        const blob = await input.engine.call('readBlob', { target: input.target, sha256: f.original });
        if (blob.data !== null) {
          const bytes = new Uint8Array(Buffer.from(blob.data, 'base64'));
          if (sha256Of(bytes) === f.original) originals.set(f.original, bytes);
        }
      }
      const text = (id: ImageFileId): string => (files[id].bytes === null ? '' : decodeText(files[id].bytes ?? new Uint8Array()).text);
      const result = imageRollbackWrites(files, state.ledger, released, originals, {
        service: (name) => readServiceState(text('services'), 'services.xml', name),
        appPool: (name) => readAppPoolState(text('apppools'), 'apppools.xml', name),
      });
      for (const c of result.conflicts) conflicts.push({ key: c.key, detail: c.detail, holders: c.resource.holders });
      steps = [...steps, ...result.writes.map((w) => w.step)];
      report.diffs = result.writes.map((w) => ({ file: w.file.label, diff: unifiedDiff(w.file.label, w.beforeText ?? '', w.afterText ?? '') }));
      for (const w of result.writes) {
        const record = state.ledger.files[w.file.id];
        if (record === undefined) continue;
        const remaining = Object.values(nextLedger.resources).some((r) => fileIdOf(r) === w.file.id);
        nextLedger.files[w.file.id] = remaining ? { original: record.original, written: w.step.after?.sha256 ?? null, ...(w.created !== undefined && w.created.length > 0 ? { created: w.created } : {}), ...(w.foreign === true || record.foreign === true ? { foreign: true } : {}) } : { original: null, written: null };
        if (!remaining) delete nextLedger.files[w.file.id];
        if (w.foreign === true) report.warnings.push(`${w.file.label} was changed by someone else after exmit wrote it: only exmit's own elements were taken out`);
      }
    } else {
      const current = (r: LedgerResource): boolean => {
        if (r.kind === 'service') {
          const f = server.reading.facts.services?.find((s) => s.name.toLowerCase() === r.name.toLowerCase());
          return f !== undefined && f.status === r.applied.status && f.startType === r.applied.startType;
        }
        if (r.kind === 'app-pool') {
          const f = server.reading.facts.appPools?.find((p) => p.name.toLowerCase() === r.name.toLowerCase());
          return f !== undefined && f.state === r.applied.state && f.autoStart === r.applied.autoStart;
        }
        return true;
      };
      const restorable = released.filter((r) => current(r.resource));
      for (const r of released.filter((x) => !current(x.resource))) conflicts.push({ key: r.key, detail: `${r.resource.kind} ${r.resource.kind === 'inbound-rule' || r.resource.kind === 'outbound-rule' ? r.resource.name : r.resource.name} was changed by someone else since exmit set it: left as it is`, holders: r.resource.holders });
      steps = [...steps, ...liveRestoreSteps(restorable.map((r) => r.resource))];
    }
    for (const id of toRelease) {
      const mine = released.filter((r) => state.ledger.resources[r.key]?.holders.includes(id));
      const conflicted = conflicts.filter((c) => c.holders.includes(id));
      report.results.push({
        id,
        outcome: conflicted.length > 0 ? 'conflict' : 'rolled-back',
        reason: conflicted.length > 0 ? conflicted.map((c) => c.detail).join('; ') : mine.length === 0 ? 'released; what it shares with mitigations still applied stays in place' : 'restored to what was there before exmit applied it',
        changes: mine.filter((r) => !conflicted.some((c) => c.key === r.key)).map((r) => releaseRecord(r.resource)),
      });
    }
    report.plan = [...repairs.plan, ...released.map((r) => `restore ${releaseRecord(r.resource).kind} ${releaseRecord(r.resource).target}`)];
    if (steps.length === 0 && toRelease.length === 0 && interruptedOf(state).length === 0) return report;
    if (input.dryRun) return report;
    await ask(input, confirmQuestion('Roll back', toRelease.length, serverName(server.reading)), report.plan);
    report.journal = await execute(input, runId, repairs.steps.length > 0 && toRelease.length === 0 ? 'repair' : 'rollback', { rollback: toRelease, repairs: repairs.plan }, steps, nextLedger, report, toRelease);
    if (conflicts.length > 0) {
      throw new RunFailure(new ExmitError(ExitCode.failedNotUndone, `rollback left ${conflicts.length} change${conflicts.length === 1 ? '' : 's'} in place that someone else made since: ${conflicts.map((c) => c.detail).join('; ')}`, 'Check those services or app pools by hand; exmit does not overwrite what others changed.', 'conflict'), report, 5);
    }
    return report;
  };
  return input.dryRun ? body() : withLock(input, runId, body);
}

function fileIdOf(r: LedgerResource): ImageFileId {
  return r.kind === 'service' ? 'services' : r.kind === 'app-pool' ? 'apppools' : 'apphost';
}

/** Steps that repair interrupted runs (files of images; live resources are restored to the prior state the journal recorded). */
async function repairSteps(input: RunInput, state: ExmitState, server: ServerState): Promise<{ steps: (FileStep | LiveStep)[]; plan: string[]; conflicts: string[] }> {
  const steps: (FileStep | LiveStep)[] = [];
  const plan: string[] = [];
  const conflicts: string[] = [];
  for (const { name, run } of interruptedOf(state)) {
    for (const record of stepsToRepair(run)) {
      const step = record.step;
      if (step.kind !== 'file') {
        const live = liveRepairStep(record.step, record.prior, server);
        if (live.kind === 'conflict') conflicts.push(`${name}: step ${record.index}: ${live.detail}`);
        else if (live.kind === 'step') {
          steps.push(live.step);
          plan.push(`repair ${live.detail} from interrupted run ${run.runId}`);
        }
        continue;
      }
      const path = String(step['path']);
      const prior = record.prior?.['sha256'] ?? null;
      const after = (step['after'] as { sha256?: string } | null)?.sha256 ?? null;
      const answer = await input.engine.call('readFiles', { target: input.target, paths: [path] });
      const current = answer.files[0]?.sha256 ?? null;
      if (current === prior) continue;
      if (current === after) {
        let data: Uint8Array | null = null;
        if (typeof prior === 'string') {
          const blob = await input.engine.call('readBlob', { target: input.target, sha256: prior });
          if (blob.data === null) {
            conflicts.push(`${name}: the saved copy of ${path} (${prior}) is missing`);
            continue;
          }
          data = new Uint8Array(Buffer.from(blob.data, 'base64'));
        }
        steps.push({ kind: 'file', path, before: current, after: data === null ? null : { data: Buffer.from(data).toString('base64'), sha256: sha256Of(data) } });
        plan.push(`repair ${path} from interrupted run ${run.runId}`);
      } else {
        conflicts.push(`${path} changed since the interrupted run ${run.runId}: left as it is`);
      }
    }
  }
  return { steps, plan, conflicts };
}

type LiveRepair = { kind: 'none' } | { kind: 'step'; step: LiveStep; detail: string } | { kind: 'conflict'; detail: string };

/**
 * What an interrupted live step needs, from the state the journal recorded before it and the server
 * as read now: equal to the prior state, nothing; equal to what the step set, set the prior state
 * back; anything else is a conflict, reported and not overwritten.
 */
export function liveRepairStep(step: Record<string, unknown>, prior: Record<string, unknown> | null, server: { reading: ServerReading; iis: IisReading | null }): LiveRepair {
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  const name = str(step['name']);
  if (prior === null) return { kind: 'none' };
  if (step['kind'] === 'service') {
    const now = server.reading.facts.services?.find((f) => f.name.toLowerCase() === name.toLowerCase());
    const to = step['to'] as { status?: unknown; startType?: unknown } | undefined;
    if (now === undefined) return { kind: 'conflict', detail: `service ${name} cannot be read now` };
    if (now.status === str(prior['status']) && now.startType === str(prior['startType'])) return { kind: 'none' };
    if (to !== undefined && now.status === str(to.status) && now.startType === str(to.startType)) {
      return { kind: 'step', step: { kind: 'service', name, expect: { status: now.status, startType: now.startType }, to: { status: str(prior['status']), startType: str(prior['startType']) } }, detail: `service ${name}` };
    }
    return { kind: 'conflict', detail: `service ${name} is ${now.status}, ${now.startType}: neither what it was nor what the run set; left as it is` };
  }
  if (step['kind'] === 'appPool') {
    const now = server.reading.facts.appPools?.find((f) => f.name.toLowerCase() === name.toLowerCase());
    const to = step['to'] as { state?: unknown; autoStart?: unknown } | undefined;
    if (now === undefined) return { kind: 'conflict', detail: `app pool ${name} cannot be read now` };
    if (now.state === str(prior['state']) && now.autoStart === prior['autoStart']) return { kind: 'none' };
    if (to !== undefined && now.state === str(to.state) && now.autoStart === to.autoStart) {
      return { kind: 'step', step: { kind: 'appPool', name, expect: { state: now.state, autoStart: now.autoStart }, to: { state: str(prior['state']), autoStart: prior['autoStart'] === true } }, detail: `app pool ${name}` };
    }
    return { kind: 'conflict', detail: `app pool ${name} is ${now.state}, autoStart ${String(now.autoStart)}: neither what it was nor what the run set; left as it is` };
  }
  if (step['kind'] === 'iisElement' && server.iis !== null) {
    const key = (step['key'] as { name?: unknown } | undefined)?.name;
    const element = step['element'] as { name?: unknown } | undefined;
    const location = step['location'] === null ? null : str(step['location']);
    if (typeof key !== 'string' || location === null) return { kind: 'conflict', detail: `an IIS element step without a name or location` };
    const present = ruleNamesIn(parseApphost(server.iis.apphost.text, server.iis.apphost.file)).has(key.toLowerCase());
    const wasPresent = prior['present'] === true;
    if (present === wasPresent) return { kind: 'none' };
    if (step['op'] === 'add' && present) {
      return { kind: 'step', step: { kind: 'iisElement', op: 'remove', location, section: str(step['section']), collection: step['collection'] === null ? null : str(step['collection']), element: { name: str(element?.name), attributes: { name: key }, children: [] }, key: { name: key } }, detail: `"${key}" at ${location}` };
    }
    return { kind: 'conflict', detail: `"${key}" at ${location} was removed by the interrupted run; put it back by hand from the journal's prior state` };
  }
  if (step['kind'] === 'globalModule' && server.iis !== null) {
    const present = readGlobalModules(server.iis.apphost).some((g) => g.name.toLowerCase() === name.toLowerCase());
    if (present === (prior['present'] === true)) return { kind: 'none' };
    if (step['op'] === 'remove' && !present && typeof prior['image'] === 'string') {
      return { kind: 'step', step: { kind: 'globalModule', op: 'add', name, image: prior['image'] }, detail: `global module ${name}` };
    }
    return { kind: 'conflict', detail: `global module ${name} is ${present ? 'registered' : 'missing'}; check it by hand` };
  }
  return { kind: 'conflict', detail: `a ${String(step['kind'])} step needs a check by hand` };
}

/** One applied mitigation as `status` reports it. */
export interface AppliedStatus {
  id: string;
  appliedAt: string;
  catalogSerial: number;
  inPlace: boolean;
  /** What is no longer as exmit left it. */
  drift: string[];
}

/** What `exmit status` reports. */
export interface StatusReport {
  server: DetectResult;
  applied: AppliedStatus[];
  interrupted: { runId: string; mode: string; journal: string }[];
  exposed: boolean;
  mitigations: AuditEntry[];
}

/** `exmit status`: what exmit applied here and whether it is still in place. */
export async function runStatus(input: RunInput): Promise<StatusReport> {
  const state = await readExmitState(input.engine, input.target);
  const server = await readState(input, input.blocked);
  const apphost = server.iis === null ? null : parseApphost(server.iis.apphost.text, server.iis.apphost.file);
  const applied: AppliedStatus[] = Object.entries(state.ledger.mitigations).map(([id, m]) => {
    const drift: string[] = [];
    for (const key of m.resources) {
      const r = state.ledger.resources[key];
      if (r === undefined) continue;
      const d = driftOf(r, server.reading.facts, apphost === null ? null : apphost.text, server.iis?.apphost.file ?? 'applicationHost.config');
      if (d !== null) drift.push(d);
    }
    const entry = server.audit.find((e) => e.id === id);
    if (entry !== undefined && entry.status !== 'mitigated' && entry.status !== 'fixed' && entry.status !== 'blocked' && entry.status !== 'not-applicable') drift.push(`the audit says ${entry.status}: ${entry.reason}`);
    return { id, appliedAt: m.appliedAt, catalogSerial: m.catalogSerial, inPlace: drift.length === 0, drift };
  });
  const interrupted = interruptedOf(state).map(({ name, run }) => ({ runId: run.runId, mode: run.mode, journal: name }));
  const exposedStatus = server.audit.some((e) => e.status === 'needed' || e.status === 'partial' || e.status === 'outdated' || e.status === 'patch-only');
  return { server: server.reading.server, applied, interrupted, exposed: exposedStatus || applied.some((a) => !a.inPlace) || interrupted.length > 0, mitigations: server.audit };
}

function driftOf(r: LedgerResource, facts: ServerFacts, apphostText: string | null, file: string): string | null {
  switch (r.kind) {
    case 'service': {
      const f = facts.services?.find((s) => s.name.toLowerCase() === r.name.toLowerCase());
      if (f === undefined) return `service ${r.name} is gone`;
      return f.status === r.applied.status && f.startType === r.applied.startType ? null : `service ${r.name} is ${f.status}, ${f.startType} (exmit set ${r.applied.status}, ${r.applied.startType})`;
    }
    case 'app-pool': {
      const f = facts.appPools?.find((p) => p.name.toLowerCase() === r.name.toLowerCase());
      if (f === undefined) return `app pool ${r.name}: state unknown`;
      return f.state === r.applied.state && f.autoStart === r.applied.autoStart ? null : `app pool ${r.name} is ${f.state}, autoStart ${String(f.autoStart)} (exmit set ${r.applied.state}, autoStart ${String(r.applied.autoStart)})`;
    }
    case 'inbound-rule':
    case 'outbound-rule': {
      if (apphostText === null) return null;
      const found = restoreInApphost(apphostText, file, r).found;
      return found ? null : `rule "${r.name}" at ${r.location} is no longer in applicationHost.config`;
    }
    case 'remove-global-module': {
      if (apphostText === null) return null;
      const doc = parseApphost(apphostText, file);
      const present = readGlobalModules(parseConfigXml(doc.text, file)).some((g) => g.name.toLowerCase() === r.name.toLowerCase());
      return present ? `global module ${r.name} is registered again` : null;
    }
  }
}
