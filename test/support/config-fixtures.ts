/** Test helper: every distinct real IIS configuration file under test/fixtures (iis and the images' fs folders). */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));

/** A configuration file's text and where it came from (relative to test/fixtures). */
export interface ConfigFixture {
  name: string;
  text: string;
}

/** Distinct (by content) .config files under test/fixtures/iis and test/fixtures/images/<image>/fs, the broken ones included. */
export function configFixtures(): ConfigFixture[] {
  const seen = new Set<string>();
  const out: ConfigFixture[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.config')) {
        const text = readFileSync(full, 'utf8');
        if (seen.has(text)) continue;
        seen.add(text);
        out.push({ name: path.relative(fixtures, full), text });
      }
    }
  };
  walk(path.join(fixtures, 'iis'));
  walk(path.join(fixtures, 'images'));
  return out;
}

/** Whether a fixture is one of the deliberately broken files (the broken web.config, the broken applicationHost.config image). */
export function isBroken(f: ConfigFixture): boolean {
  return f.name.includes('broken') || (f.name.includes('apphost-not-well-formed') && f.name.endsWith('applicationHost.config'));
}
