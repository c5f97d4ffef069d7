/**
 * Files shipped with exmit (the engine, the bundled catalog, package.json), found from the package
 * folder, or from the assets embedded in exmit.exe when exmit runs as a Node single executable
 * (scripts/package.ts). The executable never looks at files beside itself: a folder an attacker can
 * write must not be able to swap the engine or the catalog.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as sea from 'node:sea';

/** The package-relative paths of the shipped files; in exmit.exe each is an asset of the same name. */
export const SHIPPED = {
  engine: 'engine/exmit-engine.ps1',
  catalog: 'mitigations/catalog.xml',
  packageJson: 'package.json',
} as const;

/** A shipped file's package-relative path. */
export type ShippedFile = (typeof SHIPPED)[keyof typeof SHIPPED];

/** True when this process is exmit.exe (a Node single executable application). */
export function isExecutable(): boolean {
  return sea.isSea();
}

/** The bytes of a shipped file: the embedded asset in exmit.exe, else the file in the package folder. */
export function readShipped(file: ShippedFile): Buffer {
  if (sea.isSea()) return Buffer.from(sea.getAsset(file));
  return readFileSync(packagePath(file));
}

/** How messages name a shipped file: its path in the package, or the asset inside exmit.exe. */
export function shippedName(file: ShippedFile): string {
  return sea.isSea() ? `${process.execPath}:${file}` : packagePath(file);
}

const extracted = new Map<ShippedFile, string>();

/**
 * A path to a shipped file on disk. In the package it is the file itself. In exmit.exe the asset is
 * written once per run into a new folder of its own under the user's temporary folder (created by
 * mkdtemp with a random name, so no other user can have prepared it; the file with exclusive
 * create, mode 0600) and removed when the process exits, since PowerShell can only run a script
 * from a file (-File).
 */
export function shippedFilePath(file: ShippedFile): string {
  if (!sea.isSea()) return packagePath(file);
  const known = extracted.get(file);
  if (known !== undefined) return known;
  const dir = mkdtempSync(path.join(tmpdir(), 'exmit-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const target = path.join(dir, path.basename(file));
  writeFileSync(target, Buffer.from(sea.getAsset(file)), { flag: 'wx', mode: 0o600 });
  extracted.set(file, target);
  return target;
}

function packagePath(file: ShippedFile): string {
  // src/sea.ts and dist/sea.js are both one level below the package root.
  return fileURLToPath(new URL(`../${file}`, import.meta.url));
}
