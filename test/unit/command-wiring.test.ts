// How commands are wired: the services a run asks the engine for, defaults repeated to keep
// registration light, and --version answered without loading the commands.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_UPDATE_TIMEOUT_SECONDS } from '../../src/commands/catalog-update.ts';
import { DEFAULT_TIMEOUT_SECONDS } from '../../src/trust/update.ts';
import { servicesWanted } from '../../src/server.ts';
import { loadBundledCatalog } from '../../src/catalog/parse.ts';
import { main } from '../../src/cli.ts';
import { VERSION } from '../../src/version.ts';

test('catalog update\'s default timeout is the feed download default', () => {
  assert.equal(DEFAULT_UPDATE_TIMEOUT_SECONDS, DEFAULT_TIMEOUT_SECONDS);
});

test('the services a run asks for: EEMS for detect, and every service the catalog\'s actions name', () => {
  assert.deepEqual(servicesWanted(null), ['MSExchangeMitigation']);
  const wanted = servicesWanted(loadBundledCatalog());
  for (const name of ['MSExchangeMitigation', 'MSExchangeHM', 'MSExchangeHMRecovery', 'MSExchangeUM']) assert.ok(wanted.includes(name), name);
  assert.equal(new Set(wanted.map((n) => n.toLowerCase())).size, wanted.length, 'each name once');
});

test('--version prints the version and starts nothing', async () => {
  let stdout = '';
  const code = await main(['node', 'exmit', '--version'], {
    output: { stdout: (t) => { stdout += t; }, stderr: () => {}, stderrIsTty: false },
    startEngine: () => {
      throw new Error('no engine for --version');
    },
  });
  assert.equal(code, 0);
  assert.equal(stdout, `${VERSION}\n`);
});
