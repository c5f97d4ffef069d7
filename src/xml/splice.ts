/** Byte-exact edits of XML text: insert an element, take one out, undo either; the rest of the file keeps its bytes. */
import { escapeAttribute, parseXml, type XmlDocument, type XmlElement } from './document.ts';

/** One replaced range, as plain data a journal can keep: at `start`, `removed` was replaced by `inserted`. */
export interface Edit {
  start: number;
  removed: string;
  inserted: string;
}

/** The text after an edit, the edit (to undo it), and where the element inserted or removed starts in the new text. */
export interface Splice {
  text: string;
  edit: Edit;
  at: number;
}

/** Where a new child goes among its siblings. */
export type Position = 'first' | 'last' | { before: XmlElement } | { after: XmlElement };

/** One step of a path from the root: an element name and attribute values it must carry (exact match). */
export interface PathStep {
  name: string;
  attributes?: Record<string, string>;
}

/** Largest fragment accepted, in UTF-8 bytes. */
const MAX_FRAGMENT_BYTES = 1024 * 1024;

/** The file's dominant newline: '\r\n' or '\n' (a file without any gets '\r\n', as IIS writes). */
export function newlineOf(text: string): '\r\n' | '\n' {
  let crlf = 0;
  let lf = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) {
    if (i > 0 && text.charCodeAt(i - 1) === 13) crlf++;
    else lf++;
  }
  return lf > crlf ? '\n' : '\r\n';
}

/** The file's indentation step: '\t' when most indented lines start with a tab, else the most common increase in spaces between consecutive lines (two when there is none). */
export function indentUnitOf(text: string): string {
  let tabs = 0;
  let spaces = 0;
  const steps = new Map<number, number>();
  let previous = -1;
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (line.trim() === '') continue;
    const lead = /^[ \t]*/.exec(line)?.[0] ?? '';
    if (lead.startsWith('\t')) tabs++;
    else if (lead.startsWith(' ')) spaces++;
    const width = lead.includes('\t') ? -1 : lead.length;
    if (width >= 0 && previous >= 0 && width > previous) steps.set(width - previous, (steps.get(width - previous) ?? 0) + 1);
    previous = width;
  }
  if (tabs > spaces) return '\t';
  let best = 2;
  let count = 0;
  for (const [step, n] of steps) {
    if (n > count || (n === count && step < best)) {
      best = step;
      count = n;
    }
  }
  return ' '.repeat(best);
}

/** The indentation of the line the element starts on. */
export function indentOf(text: string, el: XmlElement): string {
  const start = lineStartOf(text, el.start);
  return /^[ \t]*/.exec(text.slice(start, el.start))?.[0] ?? '';
}

/** The indentation the parent's children use: that of its first child that starts a line, else the parent's plus the file's indent unit. */
export function childIndent(text: string, parent: XmlElement): string {
  const child = parent.children.find((c) => isBlank(text.slice(lineStartOf(text, c.start), c.start)));
  return child === undefined ? indentOf(text, parent) + indentUnitOf(text) : indentOf(text, child);
}

/** Inserts one element (`fragment`, written with '\n' and relative indentation) as a child of `parent`, re-indented and in the file's newline style; a self-closing parent is opened up. */
export function insertChild(text: string, parent: XmlElement, fragment: string, position: Position): Splice {
  assertFresh(text, parent);
  const lines = reindent(checkFragment(fragment), indentUnitOf(text));
  const nl = newlineOf(text);
  const ci = childIndent(text, parent);
  const pi = indentOf(text, parent);
  const block = lines.map((l) => (l === '' ? '' : ci + l)).join(nl) + nl;
  const inline = lines.map((l, i) => (i === 0 || l === '' ? l : ci + l)).join(nl);

  if (parent.selfClosing) {
    let cut = parent.end - 2;
    while (isSpaceAt(text, cut - 1)) cut--;
    const inserted = `>${nl}${block}${pi}</${parent.name}>`;
    return splice(text, cut, parent.end, inserted, cut + 1 + nl.length + ci.length);
  }
  const closeStart = parent.closeStart ?? parent.end;
  const anchor = resolve(parent, position);
  if (anchor === null) {
    // No child elements: the new one goes just before the close tag.
    if (isBlank(text.slice(lineStartOf(text, closeStart), closeStart)) && lineStartOf(text, closeStart) > parent.openEnd) {
      const at = lineStartOf(text, closeStart);
      return splice(text, at, at, block, at + ci.length);
    }
    const between = text.slice(parent.openEnd, closeStart);
    const from = isBlank(between) ? parent.openEnd : closeStart;
    return splice(text, from, closeStart, `${nl}${block}${pi}`, from + nl.length + ci.length);
  }
  if ('before' in anchor) {
    const el = anchor.before;
    const lineStart = lineStartOf(text, el.start);
    if (isBlank(text.slice(lineStart, el.start))) return splice(text, lineStart, lineStart, block, lineStart + ci.length);
    return splice(text, el.start, el.start, inline, el.start);
  }
  const el = anchor.after;
  if (position === 'last' && isBlank(text.slice(lineStartOf(text, closeStart), closeStart))) {
    const at = lineStartOf(text, closeStart);
    return splice(text, at, at, block, at + ci.length);
  }
  const lineEnd = lineEndOf(text, el.end);
  if (isBlank(text.slice(el.end, lineEnd)) && lineEnd < text.length) {
    const at = nextLineStart(text, lineEnd);
    return splice(text, at, at, block, at + ci.length);
  }
  return splice(text, el.end, el.end, inline, el.end);
}

/** Removes an element; when it is alone on its line(s), the whole line(s) with the newline go too, so a line-wise insert is undone exactly even in a file edited since. */
export function removeElement(text: string, el: XmlElement): Splice {
  assertFresh(text, el);
  const lineStart = lineStartOf(text, el.start);
  const lineEnd = lineEndOf(text, el.end);
  if (isBlank(text.slice(lineStart, el.start)) && isBlank(text.slice(el.end, lineEnd))) {
    if (lineEnd < text.length) return splice(text, lineStart, nextLineStart(text, lineEnd), '', lineStart);
    // The last line of the file: take the newline before it instead.
    let from = lineStart;
    if (from > 0 && text[from - 1] === '\n') from--;
    if (from > 0 && text[from - 1] === '\r') from--;
    return splice(text, from, lineEnd, '', from);
  }
  return splice(text, el.start, el.end, '', el.start);
}

/** Undoes an edit: the text before it, or null when the text no longer holds what the edit inserted (someone changed it since). */
export function revertEdit(text: string, edit: Edit): string | null {
  if (text.slice(edit.start, edit.start + edit.inserted.length) !== edit.inserted) return null;
  return text.slice(0, edit.start) + edit.removed + text.slice(edit.start + edit.inserted.length);
}

/** Replays an edit: the text after it, or null when the text does not hold what the edit removed. */
export function applyEdit(text: string, edit: Edit): string | null {
  if (text.slice(edit.start, edit.start + edit.removed.length) !== edit.removed) return null;
  return text.slice(0, edit.start) + edit.inserted + text.slice(edit.start + edit.removed.length);
}

/** The first child of `parent` matching a step (name and every given attribute value), or null. */
export function findChild(parent: XmlElement, step: PathStep): XmlElement | null {
  const wanted = Object.entries(step.attributes ?? {});
  return parent.children.find((c) => c.name === step.name && wanted.every(([k, v]) => Object.hasOwn(c.attributes, k) && c.attributes[k] === v)) ?? null;
}

/** Follows `path` from the root (the root itself not included); the element at its end, or null when a step is missing. */
export function findPath(doc: XmlDocument, path: readonly PathStep[]): XmlElement | null {
  let current: XmlElement | null = doc.root;
  for (const step of path) {
    if (current === null) return null;
    current = findChild(current, step);
  }
  return current;
}

/** Creates the missing end of `path` below the root as one nested insert (the last step self-closing, as `<rules />`); null when the whole path exists. */
export function ensurePath(text: string, doc: XmlDocument, path: readonly PathStep[]): Splice | null {
  return insertAlong(text, doc, path, null);
}

/** Inserts `fragment` as the last child of the element at the end of `path`, creating whatever is missing in the same single edit. */
export function insertAtPath(text: string, doc: XmlDocument, path: readonly PathStep[], fragment: string): Splice {
  const found = findPath(doc, path);
  if (found !== null) return insertChild(text, found, fragment, 'last');
  const result = insertAlong(text, doc, path, fragment);
  if (result === null) throw new Error('XML splice: the path exists and does not');
  return result;
}

function insertAlong(text: string, doc: XmlDocument, path: readonly PathStep[], fragment: string | null): Splice | null {
  if (doc.text !== text) throw new Error('XML splice: the document was parsed from another text');
  let current = doc.root;
  let index = 0;
  for (; index < path.length; index++) {
    const step = path[index];
    if (step === undefined) break;
    const next = findChild(current, step);
    if (next === null) break;
    current = next;
  }
  if (index === path.length) return null;
  const missing = path.slice(index);
  const inner = fragment === null ? null : reindent(checkFragment(fragment), '  ');
  return insertChild(text, current, nest(missing, inner), 'last');
}

/** Nested start/close tags for `steps` around `inner` (lines, two-space indented), the innermost self-closing when there is no inner content. */
function nest(steps: readonly PathStep[], inner: string[] | null): string {
  const lines: string[] = [];
  steps.forEach((step, depth) => {
    const attrs = Object.entries(step.attributes ?? {})
      .map(([k, v]) => ` ${k}="${escapeAttribute(v)}"`)
      .join('');
    const pad = '  '.repeat(depth);
    lines.push(depth === steps.length - 1 && inner === null ? `${pad}<${step.name}${attrs} />` : `${pad}<${step.name}${attrs}>`);
  });
  if (inner !== null) for (const line of inner) lines.push(line === '' ? '' : '  '.repeat(steps.length) + line);
  for (let depth = steps.length - 1; depth >= 0; depth--) {
    if (depth === steps.length - 1 && inner === null) continue;
    const step = steps[depth];
    if (step !== undefined) lines.push(`${'  '.repeat(depth)}</${step.name}>`);
  }
  return lines.join('\n');
}

/** The fragment must be exactly one well-formed element (no DOCTYPE, no CDATA). */
function checkFragment(fragment: string): string {
  parseXml(fragment, 'XML fragment', { kind: 'fragment', maxBytes: MAX_FRAGMENT_BYTES, allowCdata: false });
  return fragment;
}

/** The fragment's lines without blank lines at either end, the common indentation removed and each level re-expressed in `unit`. */
function reindent(fragment: string, unit: string): string[] {
  const lines = fragment.split(/\r\n|\r|\n/);
  while (lines.length > 0 && isBlank(lines[0] ?? '')) lines.shift();
  while (lines.length > 0 && isBlank(lines[lines.length - 1] ?? '')) lines.pop();
  const leads = lines.filter((l) => !isBlank(l)).map((l) => /^[ \t]*/.exec(l)?.[0] ?? '');
  const common = leads.reduce((min, lead) => (lead.length < min ? lead.length : min), Number.POSITIVE_INFINITY);
  const dedented = lines.map((l) => (isBlank(l) ? '' : l.slice(Number.isFinite(common) ? common : 0)));
  const own = indentUnitOf(dedented.join('\n'));
  return dedented.map((line) => {
    const lead = /^[ \t]*/.exec(line)?.[0] ?? '';
    if (lead === '') return line;
    const rest = line.slice(lead.length);
    if (own === '\t') {
      const levels = /^\t*/.exec(lead)?.[0].length ?? 0;
      return unit.repeat(levels) + lead.slice(levels) + rest;
    }
    const width = lead.replace(/\t/g, own).length;
    return unit.repeat(Math.floor(width / own.length)) + ' '.repeat(width % own.length) + rest;
  });
}

function resolve(parent: XmlElement, position: Position): { before: XmlElement } | { after: XmlElement } | null {
  const children = parent.children;
  if (position === 'first') {
    const first = children[0];
    return first === undefined ? null : { before: first };
  }
  if (position === 'last') {
    const last = children[children.length - 1];
    return last === undefined ? null : { after: last };
  }
  const sibling = 'before' in position ? position.before : position.after;
  if (!children.includes(sibling)) throw new Error(`XML splice: <${sibling.name}> at line ${sibling.line} is not a child of <${parent.name}>`);
  return position;
}

function splice(text: string, start: number, end: number, inserted: string, at: number): Splice {
  const removed = text.slice(start, end);
  return { text: text.slice(0, start) + inserted + text.slice(end), edit: { start, removed, inserted }, at };
}

/** An element must come from a parse of this very text: edits shift offsets, so re-parse after each. */
function assertFresh(text: string, el: XmlElement): void {
  if (!text.startsWith(`<${el.name}`, el.start) || text[el.end - 1] !== '>' || (el.closeStart !== null && !text.startsWith(`</${el.name}`, el.closeStart))) {
    throw new Error(`XML splice: <${el.name}> (line ${el.line}) does not match this text; parse the text again after each edit`);
  }
}

function lineStartOf(text: string, index: number): number {
  let i = index;
  while (i > 0 && text[i - 1] !== '\n' && text[i - 1] !== '\r') i--;
  return i;
}

function lineEndOf(text: string, index: number): number {
  let i = index;
  while (i < text.length && text[i] !== '\n' && text[i] !== '\r') i++;
  return i;
}

function nextLineStart(text: string, lineEnd: number): number {
  if (text[lineEnd] === '\r' && text[lineEnd + 1] === '\n') return lineEnd + 2;
  return Math.min(lineEnd + 1, text.length);
}

function isBlank(s: string): boolean {
  return /^[ \t\r\n]*$/.test(s);
}

function isSpaceAt(text: string, i: number): boolean {
  return i >= 0 && /[ \t\r\n]/.test(text[i] ?? '');
}
