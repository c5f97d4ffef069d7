/**
 * Reading the engine's journals (one JSON-lines file per run): which runs ended, and for a run that
 * did not (killed at any instant), what each step had reached. Pure and strict: a journal in an
 * image is untrusted input.
 */
import { inputError } from '../errors.ts';

/** A step as the journal's begin line records it (the engine's step, see apply-engine steps). */
export type JournalStep = Record<string, unknown> & { kind: string };

/** What the journal says about one step. */
export interface StepRecord {
  index: number;
  step: JournalStep;
  /** The state recorded before the change (files: {sha256}). */
  prior: Record<string, unknown> | null;
  /** The state recorded after the change. */
  after: Record<string, unknown> | null;
  undone: boolean;
}

/** One run, as its journal tells it. */
export interface JournalRun {
  runId: string;
  mode: string;
  catalogSerial: number | null;
  at: string | null;
  /** done, undone, undo-failed; null when the run never wrote its end line (killed, crashed). */
  outcome: string | null;
  steps: StepRecord[];
}

/** Parses one journal file; lines after a torn last line (a crash mid-write) are ignored, anything else malformed is an error naming the file and line. */
export function parseJournal(text: string, file: string): JournalRun {
  const lines = text.split('\n');
  let run: JournalRun | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').replace(/\r$/, '');
    if (line.trim() === '') continue;
    let entry: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(line);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      entry = parsed as Record<string, unknown>;
    } catch {
      // Only the last line can be torn by a crash; elsewhere it is damage.
      if (lines.slice(i + 1).every((l) => l.trim() === '')) break;
      throw inputError(`${file} line ${i + 1}: not a journal entry`, 'Journals are written only by exmit: someone changed this one.');
    }
    const kind = entry['t'];
    if (i === 0 || run === null) {
      if (kind !== 'begin' || typeof entry['runId'] !== 'string' || !Array.isArray(entry['steps'])) throw inputError(`${file} line ${i + 1}: a journal must start with its begin entry`);
      const steps = (entry['steps'] as unknown[]).map((s, index) => {
        if (typeof s !== 'object' || s === null || typeof (s as { kind?: unknown }).kind !== 'string') throw inputError(`${file} line ${i + 1}: step ${index} has no kind`);
        return { index, step: s as JournalStep, prior: null, after: null, undone: false };
      });
      run = {
        runId: entry['runId'] as string,
        mode: typeof entry['mode'] === 'string' ? entry['mode'] : 'apply',
        catalogSerial: typeof entry['catalogSerial'] === 'number' ? entry['catalogSerial'] : null,
        at: typeof entry['at'] === 'string' ? entry['at'] : null,
        outcome: null,
        steps,
      };
      continue;
    }
    const stepOf = (): StepRecord => {
      const index = entry['step'];
      const record = typeof index === 'number' ? run?.steps[index] : undefined;
      if (record === undefined) throw inputError(`${file} line ${i + 1}: step ${String(index)} is not in the run`);
      return record;
    };
    const state = (v: unknown): Record<string, unknown> | null => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null);
    switch (kind) {
      case 'intent':
        stepOf().prior = state(entry['prior']);
        break;
      case 'done':
        stepOf().after = state(entry['after']);
        break;
      case 'undone':
        stepOf().undone = true;
        break;
      case 'end':
        run.outcome = typeof entry['outcome'] === 'string' ? entry['outcome'] : 'unknown';
        break;
      default:
        throw inputError(`${file} line ${i + 1}: unknown journal entry "${String(kind)}"`);
    }
  }
  if (run === null) throw inputError(`${file}: empty journal`);
  return run;
}

/** Runs that need attention: never ended (killed) or whose undo failed. */
export function unfinishedRuns(runs: readonly JournalRun[]): JournalRun[] {
  return runs.filter((r) => r.outcome === null || r.outcome === 'undo-failed');
}

/** Steps of an unfinished run that may have changed something and were not undone, in reverse order (the order to repair them in). */
export function stepsToRepair(run: JournalRun): StepRecord[] {
  return run.steps.filter((s) => s.prior !== null && !s.undone).reverse();
}
