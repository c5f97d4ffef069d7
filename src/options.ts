/** Options every command takes, turned into one typed, validated object before anything runs. */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { inputError, usageError } from './errors.ts';
import { colorWanted } from './ui.ts';
import type { EngineOptions } from './context.ts';
import type { EngineTarget } from './powershell/protocol.ts';
import { timeoutFromEnv } from './powershell/timeout.ts';

/** The common options after validation. */
export interface CommonOptions {
  target: EngineTarget;
  catalog: string | undefined;
  json: boolean;
  color: boolean;
  verbose: boolean;
  powershell: string | undefined;
  stateDir: string | undefined;
  /** EXMIT_TIMEOUT_SECONDS in milliseconds: every engine request's timeout; undefined: each operation's default. */
  timeoutMs: number | undefined;
}

/** Raw values of the common options as commander hands them over. */
export interface RawCommon {
  target?: string;
  catalog?: string;
  json?: boolean;
  color?: boolean;
  verbose?: boolean;
  powershell?: string;
  stateDir?: string;
}

/** Which of the common options a command uses: it shows and takes only those (--json, --no-color, --verbose and --powershell always). */
export interface CommonOptionUse {
  /** --target: the command reads a server (local or an image). */
  target: boolean;
  /** --catalog: the command reads the catalog. */
  catalog: boolean;
  /** --state-dir: the command reads or writes the state folder. */
  stateDir: boolean;
}

/** Every common option: commands that read a server, the catalog and the state folder (audit, apply, rollback, status). */
export const ALL_COMMON: CommonOptionUse = { target: true, catalog: true, stateDir: true };

/** Adds the common options `uses` names, and --json, --no-color, --verbose and --powershell. */
export function addCommonOptions(command: Command, uses: CommonOptionUse = ALL_COMMON): Command {
  if (uses.target) command.option('--target <target>', 'local (this server) or image:DIR (a server image)', 'local');
  if (uses.catalog) command.option('--catalog <file|url>', 'catalog to use (default: newest verified: cached download or bundled)');
  command
    .option('--json', 'print exactly one JSON document on stdout')
    .option('--no-color', 'no colours (also: NO_COLOR)')
    .option('--verbose', 'say more on stderr')
    .addOption(new Option('--powershell <path>', 'PowerShell to run the engine with'));
  if (uses.stateDir) command.addOption(new Option('--state-dir <dir>', 'configuration, trusted keys and catalog cache'));
  return command;
}

/** Parses `local` or `image:DIR`; an image folder must exist. */
export function parseTarget(value: string, cwd: string = process.cwd()): EngineTarget {
  if (value === 'local') return { kind: 'local' };
  if (value.startsWith('image:')) {
    const dir = value.slice('image:'.length);
    if (dir === '') throw usageError('--target image: needs a folder, as in --target image:./server-image');
    const full = path.resolve(cwd, dir);
    let isDir = false;
    try {
      isDir = statSync(full).isDirectory();
    } catch {
      throw inputError(`server image not found: ${full}`, 'Make one with "exmit collect --out DIR" on the server.');
    }
    if (!isDir) throw inputError(`server image is not a folder: ${full}`);
    checkImageFolder(dir, full);
    return { kind: 'image', path: full };
  }
  throw usageError(`unknown --target "${value}": use local or image:DIR`);
}

const IMAGE_HINT = 'A server image is one server\'s folder with registry.xml and fs/, made by "exmit collect --out DIR" on the server.';

/**
 * Refuses a folder that is not one server's image before the engine reads it: a folder that holds
 * images (as examples/ does) names the ones inside; a folder with nothing of an image says what one is.
 * A folder with some of an image's files is left to the engine, which names the file that is missing.
 */
function checkImageFolder(written: string, full: string): void {
  if (existsSync(path.join(full, 'registry.xml'))) return;
  const entries = readdirSync(full, { withFileTypes: true });
  if (entries.some((e) => e.name === 'fs' || /\.xml$/i.test(e.name))) return;
  const inside = imagesInside(full, 2).map((p) => `--target image:${path.join(written, path.relative(full, p))}`);
  if (inside.length > 0) {
    throw inputError(`${full} is a folder of server images, not one image`, `${IMAGE_HINT} Found inside: ${inside.slice(0, 5).join(', ')}${inside.length > 5 ? ' and more' : ''}.`);
  }
  throw inputError(`${full} is not a server image: it has no registry.xml`, IMAGE_HINT);
}

/** Image folders (with registry.xml) under `dir`, up to `depth` levels down, in name order. */
function imagesInside(dir: string, depth: number): string[] {
  if (depth === 0) return [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const found: string[] = [];
  for (const entry of entries.filter((e) => e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules').sort((a, b) => a.name.localeCompare(b.name))) {
    const sub = path.join(dir, entry.name);
    if (existsSync(path.join(sub, 'registry.xml'))) found.push(sub);
    else found.push(...imagesInside(sub, depth - 1));
    if (found.length > 20) break;
  }
  return found;
}

/** Validates the common options into one object. */
export function readCommonOptions(raw: RawCommon): CommonOptions {
  const json = raw.json === true;
  return {
    target: parseTarget(raw.target ?? 'local'),
    catalog: raw.catalog,
    json,
    color: colorWanted(raw.color !== false),
    verbose: raw.verbose === true,
    powershell: raw.powershell,
    stateDir: raw.stateDir,
    timeoutMs: timeoutFromEnv(),
  };
}

/** The catalog-trust options of commands that read a catalog: --trust (repeatable) and --allow-unsigned. */
export interface CatalogTrustOptions {
  trust: string[];
  allowUnsigned: boolean;
}

/** Adds --trust PUBFILE (repeatable) and --allow-unsigned to a command that reads a catalog. */
export function addCatalogTrustOptions(command: Command): Command {
  return command
    .option('--trust <pubfile>', 'also trust this public key file for --catalog (repeatable)', (value: string, previous: string[]) => [...previous, value], [] as string[])
    .option('--allow-unsigned', 'use an unsigned --catalog (authoring and dry runs only)');
}

/** Reads the catalog-trust options. */
export function readCatalogTrustOptions(raw: { trust?: string[]; allowUnsigned?: boolean }): CatalogTrustOptions {
  return { trust: (raw.trust ?? []).map((t) => path.resolve(t)), allowUnsigned: raw.allowUnsigned === true };
}

/** The engine options of a run: --powershell, EXMIT_TIMEOUT_SECONDS, and with --verbose which PowerShell runs, what it writes on stderr and its progress. */
export function engineOptions(options: CommonOptions, ui: { debug(text: string): void }): EngineOptions {
  return {
    powershell: options.powershell,
    timeoutMs: options.timeoutMs,
    onStart: (executable, script) => ui.debug(`PowerShell: ${executable}${options.powershell !== undefined && options.powershell !== '' ? ' (--powershell)' : process.env['EXMIT_POWERSHELL'] !== undefined && process.env['EXMIT_POWERSHELL'] !== '' ? ' (EXMIT_POWERSHELL)' : ''}, engine script ${script}`),
    onStderr: (line) => ui.debug(`powershell: ${line}`),
    onEvent: (event) => ui.debug(`engine: ${event.message}`),
  };
}
