import { test } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveRewrite } from '../../src/iis/merge.ts';
import { evaluateInbound, evaluateOutbound } from '../../src/iis/rewrite-eval.ts';
import { configSourceRefs, parseSectionFile, resolveConfigSource } from '../../src/iis/config-source.ts';
import { parseConfigXml } from '../../src/iis/config-xml.ts';
import { applyToApphost, ruleNamesIn } from '../../src/apply/apphost-edit.ts';
import type { Change } from '../../src/apply/changes.ts';
import { PATHS, RULES, appendToWebConfig, e19, inApphostLocation, probe, responseProbe, type Scenario } from '../fixtures/iis/scenario.ts';

const ATTACK = '/autodiscover/autodiscover.json?@evil.com/PowerShell/?X-Rps-CAT=x';
const APPHOST = 'C:\\Windows\\System32\\inetsrv\\config\\applicationHost.config';
const APPHOST_DIR = 'C:\\Windows\\System32\\inetsrv\\config';
const WWWROOT_RULES = 'C:\\inetpub\\wwwroot\\rewriteRules.config';
const RULES_FILE = `<?xml version="1.0" encoding="UTF-8"?>\n<rules>\n  ${RULES.proxyNotShellFinal}\n</rules>\n`;

/** The effective configuration with configSource files given by Windows path. */
function effective(s: Scenario, url: string, sources: Record<string, string | null>) {
  const webConfigs = new Map(Object.entries(s.webConfigs).map(([k, v]) => [k.toLowerCase(), v]));
  const configSources = new Map(Object.entries(sources).map(([k, v]) => [k.toLowerCase(), v]));
  return effectiveRewrite({ apphost: s.apphost, webConfigs, site: 'Default Web Site', urlPath: url, env: {}, configSources });
}

const wwwrootRules = (attrs: string, inner = ''): Scenario =>
  appendToWebConfig(e19(), PATHS.wwwroot, `<system.webServer><rewrite><rules ${attrs}${inner === '' ? ' />' : `>${inner}</rules>`}</rewrite></system.webServer>`);

test('configSource paths resolve against the folder of the file that holds them, and only inside it', () => {
  const cases: [string, string][] = [
    ['rewriteRules.config', `${APPHOST_DIR}\\rewriteRules.config`],
    ['.\\rewrite\\rules.config', `${APPHOST_DIR}\\rewrite\\rules.config`],
    ['sub/rules.config', `${APPHOST_DIR}\\sub\\rules.config`],
  ];
  for (const [value, path] of cases) assert.deepEqual(resolveConfigSource(APPHOST, value), { path }, value);
  const refused: [string, RegExp][] = [
    ['..\\rules.config', /leaves the folder/],
    ['sub\\..\\..\\x.config', /leaves the folder/],
    ['C:\\rules.config', /not a path relative/],
    ['\\\\server\\share\\rules.config', /not a path relative/],
    ['/rules.config', /not a path relative/],
    ['rules.config:stream', /character Windows does not allow/],
    ['', /empty/],
  ];
  for (const [value, problem] of refused) {
    const r = resolveConfigSource(APPHOST, value);
    assert.ok('problem' in r, value);
    assert.match(r.problem, problem, value);
  }
});

test('configSourceRefs finds the sections exmit reads, at the root and in locations', () => {
  const s = inApphostLocation(e19(), 'Default Web Site', '<rewrite><rules configSource="dws.config" /><outboundRules configSource="..\\out.config" /></rewrite>');
  const refs = configSourceRefs(parseConfigXml(s.apphost, APPHOST));
  assert.deepEqual(
    refs.map((r) => [r.element.name, r.value, 'path' in r.resolved ? r.resolved.path : 'refused']),
    [
      ['rules', 'dws.config', `${APPHOST_DIR}\\dws.config`],
      ['outboundRules', '..\\out.config', 'refused'],
    ],
  );
});

test('found: rules kept in another file take effect, and their origin names that file and its line', () => {
  const e = effective(wwwrootRules('configSource="rewriteRules.config"'), ATTACK, { [WWWROOT_RULES]: RULES_FILE });
  assert.deepEqual(e.problems, []);
  const rule = e.inboundRules.find((r) => r.name === 'EEMS M1.1 PowerShell - inbound');
  assert.ok(rule);
  assert.deepEqual(rule.ref.origin, { file: WWWROOT_RULES, location: null, line: 3 });
  assert.equal(evaluateInbound(e, probe('attack', ATTACK)).blocked, true);

  // Without the file's text the same rules are not there (what exmit saw before).
  const unseen = effective(wwwrootRules('configSource="rewriteRules.config"'), ATTACK, {});
  assert.equal(evaluateInbound(unseen, probe('attack', ATTACK)).blocked, false);
  assert.match(unseen.problems[0]?.message ?? '', /rewriteRules\.config was not read/);
});

test('found: an apphost location keeps its rules, and outbound rules with their preconditions, in files beside applicationHost.config', () => {
  const s = inApphostLocation(e19(), 'Default Web Site', '<rewrite><rules configSource="dws-rules.config" /><outboundRules configSource="rewrite\\dws-out.config" /></rewrite>');
  const e = effective(s, '/owa/', {
    [`${APPHOST_DIR}\\dws-rules.config`]: RULES_FILE,
    [`${APPHOST_DIR}\\rewrite\\dws-out.config`]: RULES.owaCsp.replace(/^<rewrite>|<\/rewrite>$/g, ''),
  });
  assert.deepEqual(e.problems, []);
  assert.deepEqual(
    e.inboundRules.map((r) => [r.name, r.ref.origin.file, r.ref.origin.location]),
    [['EEMS M1.1 PowerShell - inbound', `${APPHOST_DIR}\\dws-rules.config`, 'Default Web Site']],
  );
  assert.deepEqual(e.preConditions.map((p) => p.origin.file), [`${APPHOST_DIR}\\rewrite\\dws-out.config`]);
  const out = evaluateOutbound(e, responseProbe('attack', '/owa/', 'text/html', { 'Content-Security-Policy': "default-src 'self'" }));
  assert.match(out.headers['Content-Security-Policy'] ?? '', /script-src-attr 'none'/);
});

test('globalModules and modules kept in another file are read from it', () => {
  const apphost = e19().apphost;
  const gm = /^\s*<globalModules>[\s\S]*?<\/globalModules>/m.exec(apphost)?.[0];
  assert.ok(gm);
  const moved = { ...e19(), apphost: apphost.replace(gm, '<globalModules configSource="globalModules.config" />') };
  const found = effective(moved, ATTACK, { [`${APPHOST_DIR}\\globalModules.config`]: gm });
  assert.equal(found.rewriteModuleActive, true);
  const missing = effective(moved, ATTACK, { [`${APPHOST_DIR}\\globalModules.config`]: null });
  assert.equal(missing.rewriteModuleActive, false);
  assert.match(missing.problems.map((p) => p.message).join('\n'), /globalModules\.config does not exist/);

  const modulesOff = appendToWebConfig(e19(), PATHS.wwwroot, '<system.webServer><modules configSource="modules.config" /></system.webServer>');
  const off = effective(modulesOff, ATTACK, { 'C:\\inetpub\\wwwroot\\modules.config': '<modules><remove name="RewriteModule" /></modules>' });
  assert.equal(off.rewriteModuleActive, false);
  assert.match(off.rewriteModuleNote ?? '', /removed from system\.webServer\/modules in C:\\inetpub\\wwwroot\\modules\.config line 1/);
});

test('what IIS refuses is a problem naming both files, and no rule is read from it', async (t) => {
  const cases: { name: string; scenario: Scenario; sources: Record<string, string | null>; message: RegExp }[] = [
    {
      name: 'missing',
      scenario: wwwrootRules('configSource="rewriteRules.config"'),
      sources: { [WWWROOT_RULES]: null },
      message: /^configSource="rewriteRules\.config" of <rules>: C:\\inetpub\\wwwroot\\rewriteRules\.config does not exist$/,
    },
    {
      name: 'outside the folder',
      scenario: wwwrootRules('configSource="..\\rewriteRules.config"'),
      sources: { 'C:\\inetpub\\rewriteRules.config': RULES_FILE },
      message: /configSource "\.\.\\rewriteRules\.config" leaves the folder of C:\\inetpub\\wwwroot\\web\.config/,
    },
    {
      name: 'rooted',
      scenario: wwwrootRules('configSource="C:\\inetpub\\wwwroot\\rewriteRules.config"'),
      sources: { [WWWROOT_RULES]: RULES_FILE },
      message: /is not a path relative to the folder of C:\\inetpub\\wwwroot\\web\.config/,
    },
    {
      name: 'wrong root element',
      scenario: wwwrootRules('configSource="rewriteRules.config"'),
      sources: { [WWWROOT_RULES]: `<outboundRules>${RULES.proxyNotShellFinal}</outboundRules>` },
      message: /the root element of C:\\inetpub\\wwwroot\\rewriteRules\.config is <outboundRules>, expected <rules>/,
    },
    {
      name: 'not well-formed',
      scenario: wwwrootRules('configSource="rewriteRules.config"'),
      sources: { [WWWROOT_RULES]: '<rules>\n<rule name="x">\n</rules>' },
      message: /configSource="rewriteRules\.config" of <rules>: C:\\inetpub\\wwwroot\\rewriteRules\.config line \d: not well-formed/,
    },
    {
      name: 'children beside configSource',
      scenario: wwwrootRules('configSource="rewriteRules.config"', RULES.proxyNotShellFinal),
      sources: { [WWWROOT_RULES]: RULES_FILE },
      message: /configSource="rewriteRules\.config" of <rules> has child elements beside it/,
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const e = effective(c.scenario, ATTACK, c.sources);
      assert.equal(e.problems.length, 1, JSON.stringify(e.problems));
      assert.match(e.problems[0]?.message ?? '', c.message);
      assert.equal(e.problems[0]?.origin.file, PATHS.wwwroot);
      assert.equal(e.inboundRules.some((r) => r.name === 'EEMS M1.1 PowerShell - inbound'), false);
    });
  }
});

test('apply refuses to write into a section kept in another file, and counts the names in it', () => {
  const s = inApphostLocation(e19(), 'Default Web Site', '<rewrite><rules configSource="dws-rules.config" /></rewrite>');
  const change: Change = {
    kind: 'inbound-rule',
    key: 'inbound-rule:Default Web Site:exmit x',
    location: 'Default Web Site',
    name: 'exmit x',
    action: { kind: 'inbound-rule', location: 'Default Web Site', name: 'exmit x', matchUrl: '.*', logicalGrouping: 'MatchAll', conditions: [], action: { type: 'AbortRequest' }, stopProcessing: true },
  };
  assert.throws(
    () => applyToApphost(s.apphost, 'applicationHost.config', change),
    (error: Error) => {
      assert.match(error.message, /^system\.webServer\/rewrite\/rules of <location path="Default Web Site"> \(applicationHost\.config line \d+\) is kept in another file, C:\\Windows\\System32\\inetsrv\\config\\dws-rules\.config \(configSource="dws-rules\.config"\), and exmit does not edit such files: nothing was changed$/);
      return true;
    },
  );
  assert.deepEqual([...ruleNamesIn(parseSectionFile(RULES_FILE, WWWROOT_RULES), true)], ['eems m1.1 powershell - inbound']);
});
