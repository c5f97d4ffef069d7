/** Exchange build numbers: four integers compared part by part, never semver (house-style.md). */

import { inputError } from '../errors.ts';

/** An Exchange build: major, minor, build, revision ("15.2.1118.20" is [15, 2, 1118, 20]). */
export type Build = readonly [number, number, number, number];

/** Largest value of one part: Windows file versions keep each part in 16 bits. */
export const MAX_BUILD_PART = 65535;

const BUILD_PATTERN = /^(\d{1,10})\.(\d{1,10})\.(\d{1,10})\.(\d{1,10})$/;

/** Parses "15.2.1118.20" or Microsoft's zero-padded "15.02.1118.020" into a Build; null for anything else. */
export function parseBuild(text: string): Build | null {
  const match = BUILD_PATTERN.exec(text);
  if (match === null) return null;
  return buildFromParts(match[1], match[2], match[3], match[4]);
}

/** Builds a Build from four parts given as numbers or digit strings (registry values come as either); null when any part is not an integer in 0..65535. */
export function buildFromParts(major: unknown, minor: unknown, build: unknown, revision: unknown): Build | null {
  const parts = [major, minor, build, revision].map(parseBuildPart);
  const [a, b, c, d] = parts;
  if (a === undefined || b === undefined || c === undefined || d === undefined) return null;
  if (a === null || b === null || c === null || d === null) return null;
  return [a, b, c, d];
}

/** One part as an integer in 0..MAX_BUILD_PART, or null: accepts integers and digit strings (zero padding allowed). */
export function parseBuildPart(value: unknown): number | null {
  if (typeof value === 'number') {
    return Number.isInteger(value) && value >= 0 && value <= MAX_BUILD_PART ? value : null;
  }
  if (typeof value === 'string' && /^\d{1,10}$/.test(value)) {
    const n = Number(value);
    return n <= MAX_BUILD_PART ? n : null;
  }
  return null;
}

/** Parses a build that must be valid, throwing a user-facing error that names where it came from. */
export function parseBuildOrThrow(text: string, where: string): Build {
  const build = parseBuild(text);
  if (build === null) {
    throw inputError(
      `${where}: "${text}" is not an Exchange build number`,
      'an Exchange build is four numbers separated by dots, such as 15.2.1118.20',
    );
  }
  return build;
}

/** Formats a Build as four numbers without padding ("15.2.1118.20"), the form every output uses. */
export function formatBuild(build: Build): string {
  return build.join('.');
}

/** Normalises build text to four numbers without padding ("15.02.1118.020" → "15.2.1118.20"); null when it is not a build. */
export function normalizeBuild(text: string): string | null {
  const build = parseBuild(text);
  return build === null ? null : formatBuild(build);
}

/** Orders two builds part by part: negative when a is older, 0 when equal, positive when a is newer. */
export function compareBuilds(a: Build, b: Build): number {
  for (let i = 0; i < 4; i++) {
    const diff = (a[i] ?? 0) - (b[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}

/** True when two builds are equal in all four parts. */
export function buildsEqual(a: Build, b: Build): boolean {
  return compareBuilds(a, b) === 0;
}

/** True when two builds belong to the same CU line: the first three numbers match (15.2.1118.7 and 15.2.1118.20). */
export function sameCuLine(a: Build, b: Build): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2];
}
