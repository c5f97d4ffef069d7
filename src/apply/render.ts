/** Words for people: the plan before a change, the confirmation question, unified diffs of image files. */
import { createTwoFilesPatch } from 'diff';
import type { Mitigation } from '../catalog/types.ts';
import { describeChange, recyclesIis, type HeldChange } from './changes.ts';

/** A unified diff of one file (the plan of an image apply), with Windows line ends shown as plain lines. */
export function unifiedDiff(label: string, before: string, after: string): string {
  const patch = createTwoFilesPatch(`a/${label}`, `b/${label}`, before.replace(/\r\n/g, '\n'), after.replace(/\r\n/g, '\n'), '', '', { context: 3 });
  // The first line is the "Index:"-less header jsdiff writes as "===": drop it.
  return patch.replace(/^=+\n/, '');
}

/** The lines that say what each mitigation changes and breaks, for the plan and the prompt. */
export function describePlan(mitigations: readonly Mitigation[], changes: readonly HeldChange[]): string[] {
  const lines: string[] = [];
  for (const m of mitigations) {
    const mine = changes.filter((c) => c.holders.includes(m.id));
    lines.push(`${m.id}: ${m.title}`);
    for (const c of mine) lines.push(`  - ${describeChange(c.change)}${c.holders.length > 1 ? ` (shared with ${c.holders.filter((h) => h !== m.id).join(', ')})` : ''}`);
    if (m.breaks !== null) lines.push(`  breaks: ${m.breaks}`);
    for (const s of m.sideEffects) lines.push(`  side effect: ${s}`);
  }
  if (mitigations.some(recyclesIis)) lines.push('IIS will recycle its worker processes for the changed sites: open sessions reconnect.');
  return lines;
}

/** The confirmation question. */
export function confirmQuestion(verb: 'Apply' | 'Roll back', count: number, server: string): string {
  return `${verb} ${count} mitigation${count === 1 ? '' : 's'} ${verb === 'Apply' ? 'to' : 'on'} ${server}? [y/N] `;
}
