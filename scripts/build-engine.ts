// Joins engine/src/*.ps1 (in file-name order) into the one self-contained engine/exmit-engine.ps1 that
// the door starts and that remoting can send: `node scripts/build-engine.ts`. Deterministic: the same
// sources always give the same bytes. No dependencies.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const GENERATED_NOTE = [
  '# GENERATED FILE: do not edit. Built from engine/src/*.ps1 by `node scripts/build-engine.ts`',
  '# (npm run build); edit the sources and build again.',
];

/** The engine's source files in build order: engine/src/*.ps1 sorted by name, ordinal. */
export function listEngineSources(root: string): string[] {
  const dir = path.join(root, 'engine', 'src');
  const names = readdirSync(dir).filter((name) => name.endsWith('.ps1'));
  names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return names.map((name) => path.join(dir, name));
}

/** The built engine's text from the sources: LF line ends, one region per source file. */
export function buildEngineText(root: string): string {
  const sources = listEngineSources(root);
  if (sources.length === 0) throw new Error('build-engine: no engine/src/*.ps1 files');
  const parts: string[] = [...GENERATED_NOTE, ''];
  for (const file of sources) {
    const name = path.basename(file);
    const text = readFileSync(file, 'utf8').replace(/\r\n?/g, '\n').replace(/^\n+|\n+$/g, '');
    if (/^\s*\.\s+\S/m.test(text)) {
      throw new Error(`build-engine: ${name} dot-sources a file; the built engine must be self-contained`);
    }
    parts.push(`#region ${name}`, stripComments(text), `#endregion ${name}`, '');
  }
  return parts.join('\n');
}

/**
 * The source without its comments and comment-based help: lines that are only a comment, and
 * `<# ... #>` blocks that start a line. PowerShell parses the whole engine at every start, so what it
 * need not read is time saved on every run; the sources keep their comments. Here-strings are kept
 * exactly as written (a line in one may look like a comment).
 */
export function stripComments(text: string): string {
  const out: string[] = [];
  let inBlock = false;
  let hereEnd: string | null = null;
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (hereEnd !== null) {
      out.push(line);
      if (line.startsWith(hereEnd)) hereEnd = null;
      continue;
    }
    if (/@['"]$/.test(trimmed)) {
      hereEnd = trimmed.endsWith("'") ? "'@" : '"@';
      out.push(line);
      continue;
    }
    if (inBlock) {
      if (trimmed.includes('#>')) {
        inBlock = false;
        if (!trimmed.endsWith('#>')) throw new Error(`build-engine: code after a comment block's end: ${trimmed}`);
      }
      continue;
    }
    if (trimmed.startsWith('<#')) {
      if (!trimmed.includes('#>', 2)) inBlock = true;
      else if (!trimmed.endsWith('#>')) throw new Error(`build-engine: code after a one-line comment block: ${trimmed}`);
      continue;
    }
    if (trimmed.startsWith('#') && !/^#requires\b/i.test(trimmed)) continue;
    if (trimmed === '') continue;
    out.push(line);
  }
  return out.join('\n');
}

/** Writes engine/exmit-engine.ps1 from the sources; returns its path. */
export function buildEngine(root: string): string {
  const out = path.join(root, 'engine', 'exmit-engine.ps1');
  const text = buildEngineText(root);
  // Unchanged sources leave the file alone: an engine starting right now never reads it half-written.
  if (!existsSync(out) || readFileSync(out, 'utf8') !== text) writeFileSync(out, text, 'utf8');
  return out;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const out = buildEngine(fileURLToPath(new URL('..', import.meta.url)));
    console.log(`build-engine: wrote ${path.relative(process.cwd(), out) || out}`);
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  }
}
