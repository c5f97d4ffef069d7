/**
 * Turns Microsoft's build list (data/ExchangeBuildNumbers.csv) into src/exchange/build-table.json.
 *
 * Usage: node scripts/make-build-table.ts [--csv FILE] [--out FILE] [--check]
 *   --check  write nothing; exit 1 when the output file differs from what the CSV gives.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { compareBuilds, formatBuild, parseBuild } from '../src/exchange/build.ts';
import type { Build } from '../src/exchange/build.ts';
import type { Product } from '../src/catalog/types.ts';

/** Where the CSV lives, found from this file, not the working directory. */
export const DEFAULT_CSV = fileURLToPath(new URL('../data/ExchangeBuildNumbers.csv', import.meta.url));

/** Where the generated table goes, found from this file, not the working directory. */
export const DEFAULT_OUT = fileURLToPath(new URL('../src/exchange/build-table.json', import.meta.url));

/** One row of the generated table; key order here is the key order in the JSON. */
export interface BuildTableRow {
  product: Product;
  name: string;
  build: string;
  cu: string;
  update: string | null;
  releaseDate: string;
  kb: string | null;
}

const PRODUCT_MINOR: Record<Product, number> = { '2013': 0, '2016': 1, '2019': 2, SE: 2 };
const NAME_PATTERN = /^Exchange (?:Server )?(\d{4}|SE) (.+)$/;
const CU_PATTERN = /^(?:RTM|Preview|SP\d+|CU\d+)$/;
const UPDATE_PATTERN = /^[A-Z][a-z]{2}\d{2}(?:SU|HU)(?:v\d+)?$/;
const NOTE_PATTERN = /^\(.*\)$/;

/** Splits CSV text into rows of fields (RFC 4180: quotes, doubled quotes, CRLF or LF); strips a BOM. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  for (; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') {
        quoted = false;
      } else {
        field += ch;
      }
    } else if (ch === '"') {
      quoted = true;
    } else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else {
      field += ch;
    }
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** Converts the list's M/D/YYYY (padded or not) or an ISO date into YYYY-MM-DD; throws on an impossible date. */
export function toIsoDate(text: string, where: string): string {
  const us = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(text);
  const iso = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  let year: number;
  let month: number;
  let day: number;
  if (us !== null) {
    [year, month, day] = [Number(us[3]), Number(us[1]), Number(us[2])];
  } else if (iso !== null) {
    [year, month, day] = [Number(iso[1]), Number(iso[2]), Number(iso[3])];
  } else {
    throw new Error(`${where}: date "${text}" is neither M/D/YYYY nor YYYY-MM-DD`);
  }
  const date = new Date(Date.UTC(year, month - 1, day));
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) {
    throw new Error(`${where}: date "${text}" does not exist`);
  }
  return date.toISOString().slice(0, 10);
}

/** Splits a release name into product, CU and update label; null for products exmit does not handle (2007, 2010). */
export function parseReleaseName(name: string, where: string): { product: Product; cu: string; update: string | null } | null {
  const match = NAME_PATTERN.exec(name);
  if (match === null) throw new Error(`${where}: name "${name}" does not start with "Exchange <product> "`);
  const [, productText = '', rest = ''] = match;
  if (productText === '2007' || productText === '2010') return null;
  if (productText !== '2013' && productText !== '2016' && productText !== '2019' && productText !== 'SE') {
    throw new Error(`${where}: unknown product "${productText}" in "${name}"`);
  }
  const tokens = rest.split(/\s+/);
  const cu = tokens.shift() ?? '';
  if (!CU_PATTERN.test(cu)) throw new Error(`${where}: "${cu}" in "${name}" is not RTM, Preview, SPn or CUn`);
  let update: string | null = null;
  if (tokens[0] !== undefined && UPDATE_PATTERN.test(tokens[0])) update = tokens.shift() ?? null;
  if (tokens.length > 0 && !tokens.every((t) => NOTE_PATTERN.test(t))) {
    throw new Error(`${where}: cannot read "${tokens.join(' ')}" in "${name}" (expected an update label such as Nov22SU)`);
  }
  return { product: productText, cu, update };
}

/** Turns the CSV's text into the table: 2013, 2016, 2019 and SE only, deduplicated by build, sorted by build. */
export function makeBuildTable(csvText: string): BuildTableRow[] {
  const records = parseCsv(csvText);
  const header = records[0];
  if (header === undefined) throw new Error('the build list is empty');
  const column = (title: string): number => {
    const index = header.findIndex((h) => h.trim().toLowerCase() === title.toLowerCase());
    if (index < 0) throw new Error(`the build list has no "${title}" column`);
    return index;
  };
  const nameCol = column('Product Name');
  const buildCol = column('Build Number');
  const dateCol = column('Date');
  const kbCol = column('KB');

  const byBuild = new Map<string, { row: BuildTableRow; parsed: Build; line: number }>();
  records.forEach((fields, index) => {
    const line = index + 1;
    const where = `ExchangeBuildNumbers.csv line ${line}`;
    if (index === 0 || fields.every((f) => f.trim() === '')) return;
    const name = (fields[nameCol] ?? '').trim();
    if (name.toLowerCase() === header[nameCol]?.trim().toLowerCase()) return; // a repeated header row
    const release = parseReleaseName(name, where);
    if (release === null) return;
    const buildText = (fields[buildCol] ?? '').trim();
    const parsed = parseBuild(buildText);
    if (parsed === null) throw new Error(`${where}: build "${buildText}" is not four numbers`);
    if (parsed[0] !== 15 || parsed[1] !== PRODUCT_MINOR[release.product]) {
      throw new Error(`${where}: build ${buildText} does not belong to Exchange ${release.product}`);
    }
    const kbText = (fields[kbCol] ?? '').trim();
    if (kbText !== '' && !/^KB\d+$/.test(kbText)) throw new Error(`${where}: KB "${kbText}" is not KBnnnnnnn`);
    const row: BuildTableRow = {
      product: release.product,
      name,
      build: formatBuild(parsed),
      cu: release.cu,
      update: release.update,
      releaseDate: toIsoDate((fields[dateCol] ?? '').trim(), where),
      kb: kbText === '' ? null : kbText,
    };
    const seen = byBuild.get(row.build);
    if (seen === undefined) {
      byBuild.set(row.build, { row, parsed, line });
      return;
    }
    const merged = mergeDuplicate(seen.row, row);
    if (merged === null) {
      throw new Error(`${where}: build ${row.build} is listed again (line ${seen.line}) with different details`);
    }
    seen.row = merged;
  });

  return [...byBuild.values()].sort((a, b) => compareBuilds(a.parsed, b.parsed)).map((entry) => entry.row);
}

/** Merges two rows for the same build when they agree (a missing KB may be filled in); null when they disagree. */
function mergeDuplicate(a: BuildTableRow, b: BuildTableRow): BuildTableRow | null {
  const sameKb = a.kb === b.kb || a.kb === null || b.kb === null;
  if (a.name !== b.name || a.releaseDate !== b.releaseDate || !sameKb) return null;
  return { ...a, kb: a.kb ?? b.kb };
}

/** Renders the table as JSON with one row per line, so a new build list shows as a small diff. */
export function renderBuildTable(rows: readonly BuildTableRow[]): string {
  const lines = rows.map((row) =>
    JSON.stringify({
      product: row.product,
      name: row.name,
      build: row.build,
      cu: row.cu,
      update: row.update,
      releaseDate: row.releaseDate,
      kb: row.kb,
    }),
  );
  return `[\n${lines.map((l) => `  ${l}`).join(',\n')}\n]\n`;
}

/** The script's entry: reads the CSV, writes (or with --check compares) the JSON. */
function main(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      csv: { type: 'string', default: DEFAULT_CSV },
      out: { type: 'string', default: DEFAULT_OUT },
      check: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const text = renderBuildTable(makeBuildTable(readFileSync(values.csv, 'utf8')));
  if (values.check) {
    let current: string | null = null;
    try {
      current = readFileSync(values.out, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (current !== text) {
      process.stderr.write(`${values.out} is out of date: run npm run build-table\n`);
      process.exitCode = 1;
    }
    return;
  }
  writeFileSync(values.out, text);
  process.stderr.write(`wrote ${values.out}\n`);
}

if (import.meta.main) {
  try {
    main(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`make-build-table: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
