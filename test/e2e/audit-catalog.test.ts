// audit with a catalog from outside the package: only signed by a trusted key, and it says which it used.
// In-process against one engine for the file (support/in-process.ts).
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { image, parseJson, ROOT } from '../support/cli.ts';
import { runInProcess, sharedEngine } from '../support/in-process.ts';

const engine = sharedEngine();
const exmit = (args: string[]) => runInProcess(engine, args);

describe('audit --catalog FILE', () => {
  let dir = '';
  let catalog = '';
  let stateDir = '';
  const target = `image:${image('examples/e19-cu12-oct22su')}`;
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'exmit-audit-catalog-'));
    stateDir = mkdtempSync(path.join(tmpdir(), 'exmit-state-'));
    catalog = path.join(dir, 'catalog.xml');
    const bundled = readFileSync(path.join(ROOT, 'mitigations', 'catalog.xml'), 'utf8');
    writeFileSync(catalog, bundled.replace(/serial="\d+"/, 'serial="2026112899"'));
    assert.equal((await exmit(['catalog', 'keygen', '--out', dir, '--name', 'test'])).code, 0);
    assert.equal((await exmit(['catalog', 'sign', catalog, '--key', path.join(dir, 'test.key')])).code, 0);
  });

  it('signed by a key given with --trust: used, and the output says so', async () => {
    const run = await exmit(['audit', '--json', '--target', target, '--catalog', catalog, '--trust', path.join(dir, 'test.pub'), '--state-dir', stateDir]);
    assert.equal(run.code, 3, run.stderr);
    const doc = parseJson<{ catalog: { source: string; serial: number } }>(run);
    assert.equal(doc.catalog.source, 'file');
    assert.equal(doc.catalog.serial, 2026112899);
  });

  it('without a trusted key: exit 1 naming the file, nothing audited', async () => {
    const run = await exmit(['audit', '--json', '--target', target, '--catalog', catalog, '--state-dir', stateDir]);
    assert.equal(run.code, 1);
    const doc = parseJson<{ error: { message: string } }>(run);
    assert.match(doc.error.message, /catalog\.xml/);
  });

  it('unsigned: refused unless --allow-unsigned, which warns', async () => {
    const unsigned = path.join(dir, 'unsigned.xml');
    copyFileSync(catalog, unsigned);
    const refused = await exmit(['audit', '--target', target, '--catalog', unsigned, '--state-dir', stateDir]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /no signature/);
    const allowed = await exmit(['audit', '--json', '--target', target, '--catalog', unsigned, '--allow-unsigned', '--state-dir', stateDir]);
    assert.equal(allowed.code, 3);
    assert.match(allowed.stderr, /unsigned/);
  });
});
