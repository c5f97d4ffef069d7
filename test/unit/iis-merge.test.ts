import { test } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveRewrite } from '../../src/iis/merge.ts';
import { evaluateInbound } from '../../src/iis/rewrite-eval.ts';
import {
  PATHS,
  RULES,
  appendToWebConfig,
  e19,
  effectiveFor,
  fixture,
  inApphostLocation,
  inWebConfigSystemWebServer,
  probe,
  rules,
  type Scenario,
} from '../fixtures/iis/scenario.ts';

const ATTACK = '/autodiscover/autodiscover.json?@evil.com/PowerShell/?X-Rps-CAT=x';
const APPHOST = 'C:\\Windows\\System32\\inetsrv\\config\\applicationHost.config';

const inDws = (s: Scenario, xml: string): Scenario => inApphostLocation(s, 'Default Web Site', xml);
const sws = (xml: string): string => `<system.webServer>${xml}</system.webServer>`;

interface PlacementCase {
  name: string;
  scenario: () => Scenario;
  url: string;
  blocked: boolean;
  /** Name of the rule that blocks or ends evaluation. */
  by?: string;
}

const placements: PlacementCase[] = [
  { name: 'the real e19 configuration has no rule: the attack passes', scenario: e19, url: ATTACK, blocked: false },
  {
    name: 'rule in <location path="Default Web Site"> of applicationHost.config reaches /Autodiscover',
    scenario: () => inDws(e19(), rules(RULES.proxyNotShellFinal)),
    url: ATTACK,
    blocked: true,
    by: 'EEMS M1.1 PowerShell - inbound',
  },
  {
    name: 'rule in the wwwroot web.config inside <location inheritInChildApplications="false"> does not reach /Autodiscover',
    scenario: () =>
      appendToWebConfig(e19(), PATHS.wwwroot, `<location inheritInChildApplications="false">${sws(rules(RULES.proxyNotShellFinal))}</location>`),
    url: ATTACK,
    blocked: false,
  },
  {
    name: '... but it applies at the site root itself',
    scenario: () =>
      appendToWebConfig(e19(), PATHS.wwwroot, `<location inheritInChildApplications="false">${sws(rules(RULES.proxyNotShellFinal))}</location>`),
    url: '/autodiscover.json?@evil.com/PowerShell',
    blocked: true,
    by: 'EEMS M1.1 PowerShell - inbound',
  },
  {
    name: 'the real EEMS-written wwwroot web.config (rules at its root) reaches /Autodiscover',
    scenario: () => ({ ...e19(), webConfigs: { ...e19().webConfigs, [PATHS.wwwroot]: fixture('e19-wwwroot-web-eems.config') } }),
    url: ATTACK,
    blocked: true,
    by: 'EEMS M1.1 PowerShell - inbound',
  },
  {
    name: 'rule in <location path="Default Web Site" inheritInChildApplications="false"> does not reach /Autodiscover',
    scenario: () => inApphostLocation(e19(), 'Default Web Site', rules(RULES.proxyNotShellFinal), ' inheritInChildApplications="false"'),
    url: ATTACK,
    blocked: false,
  },
  {
    name: 'rule in <location path="Default Web Site/owa"> does not reach /Autodiscover',
    scenario: () => inApphostLocation(e19(), 'Default Web Site/owa', rules(RULES.proxyNotShellFinal)),
    url: ATTACK,
    blocked: false,
  },
  {
    name: 'rule in <location path="Default Web Site/Autodiscover"> reaches /Autodiscover (the site-name and path match is case-insensitive)',
    scenario: () => inApphostLocation(e19(), 'default web site/AUTODISCOVER', rules(RULES.proxyNotShellFinal)),
    url: ATTACK,
    blocked: true,
    by: 'EEMS M1.1 PowerShell - inbound',
  },
  {
    name: 'rule in the wwwroot web.config <location path="Autodiscover"> reaches /Autodiscover',
    scenario: () => appendToWebConfig(e19(), PATHS.wwwroot, `<location path="Autodiscover">${sws(rules(RULES.proxyNotShellFinal))}</location>`),
    url: ATTACK,
    blocked: true,
    by: 'EEMS M1.1 PowerShell - inbound',
  },
  {
    name: '<clear/> in the Autodiscover web.config cancels the apphost rule',
    scenario: () => inWebConfigSystemWebServer(inDws(e19(), rules(RULES.proxyNotShellFinal)), PATHS.autodiscover, '<rewrite><rules><clear /></rules></rewrite>'),
    url: ATTACK,
    blocked: false,
  },
  {
    name: '<remove name="..."/> of the rule in the Autodiscover web.config cancels it (name case-insensitive)',
    scenario: () =>
      inWebConfigSystemWebServer(
        inDws(e19(), rules(RULES.proxyNotShellFinal)),
        PATHS.autodiscover,
        '<rewrite><rules><remove name="eems m1.1 powershell - inbound" /></rules></rewrite>',
      ),
    url: ATTACK,
    blocked: false,
  },
  {
    name: '<remove> of another rule leaves it',
    scenario: () =>
      inWebConfigSystemWebServer(inDws(e19(), rules(RULES.proxyNotShellFinal)), PATHS.autodiscover, '<rewrite><rules><remove name="Other" /></rules></rewrite>'),
    url: ATTACK,
    blocked: true,
    by: 'EEMS M1.1 PowerShell - inbound',
  },
  {
    name: '<remove name="RewriteModule"/> in the Autodiscover web.config turns URL Rewrite off there',
    scenario: () => inWebConfigSystemWebServer(inDws(e19(), rules(RULES.proxyNotShellFinal)), PATHS.autodiscover, '<modules><remove name="RewriteModule" /></modules>'),
    url: ATTACK,
    blocked: false,
  },
  {
    name: '<clear/> of modules in the Autodiscover web.config turns URL Rewrite off there',
    scenario: () => inWebConfigSystemWebServer(inDws(e19(), rules(RULES.proxyNotShellFinal)), PATHS.autodiscover, '<modules><clear /></modules>'),
    url: ATTACK,
    blocked: false,
  },
  {
    name: 'a RewriteModule removal inside the wwwroot inheritInChildApplications="false" location does not reach /Autodiscover',
    scenario: () =>
      appendToWebConfig(
        inDws(e19(), rules(RULES.proxyNotShellFinal)),
        PATHS.wwwroot,
        `<location inheritInChildApplications="false">${sws('<modules><remove name="RewriteModule" /></modules>')}</location>`,
      ),
    url: ATTACK,
    blocked: true,
    by: 'EEMS M1.1 PowerShell - inbound',
  },
  {
    name: 'an earlier matching stopProcessing rule shadows the blocking rule',
    scenario: () =>
      inDws(
        e19(),
        rules(
          '<rule name="Allow Autodiscover" stopProcessing="true"><match url="^autodiscover/" /><action type="None" /></rule>',
          RULES.proxyNotShellFinal,
        ),
      ),
    url: ATTACK,
    blocked: false,
    by: 'Allow Autodiscover',
  },
  {
    name: 'a shadowing rule defined in a web.config lower down comes after the apphost rule and does not shadow it',
    scenario: () =>
      inWebConfigSystemWebServer(
        inDws(e19(), rules(RULES.proxyNotShellFinal)),
        PATHS.autodiscover,
        rules('<rule name="Allow" stopProcessing="true"><match url=".*" /><action type="None" /></rule>'),
      ),
    url: ATTACK,
    blocked: true,
    by: 'EEMS M1.1 PowerShell - inbound',
  },
  {
    name: 'a disabled rule does not block',
    scenario: () => inDws(e19(), rules(RULES.proxyNotShellFinal.replace('<rule ', '<rule enabled="false" '))),
    url: ATTACK,
    blocked: false,
  },
  {
    name: 'a negated condition does not block the attack',
    scenario: () => inDws(e19(), rules(RULES.proxyNotShellFinal.replace('<add input', '<add negate="true" input'))),
    url: ATTACK,
    blocked: false,
  },
  {
    name: 'a negated match url does not block the attack',
    scenario: () => inDws(e19(), rules(RULES.proxyNotShellFinal.replace('<match url=".*" />', '<match url=".*" negate="true" />'))),
    url: ATTACK,
    blocked: false,
  },
];

test('placement: where a rule takes effect', async (t) => {
  for (const c of placements) {
    await t.test(c.name, () => {
      const verdict = evaluateInbound(effectiveFor(c.scenario(), c.url), probe('attack', c.url));
      assert.equal(verdict.blocked, c.blocked);
      assert.equal(verdict.stoppedBy?.name ?? null, c.by ?? null);
    });
  }
});

test('rules come in IIS order with their origin and base directory', () => {
  const s = inWebConfigSystemWebServer(
    appendToWebConfig(inDws(e19(), rules(RULES.anonResource)), PATHS.wwwroot, sws(rules(RULES.proxyNotShellFinal))),
    PATHS.autodiscover,
    rules(RULES.beResource),
  );
  const effective = effectiveFor(s, '/Autodiscover/autodiscover.json');
  assert.deepEqual(
    effective.inboundRules.map((r) => [r.name, r.ref.origin.file, r.ref.origin.location, r.baseUrlPath]),
    [
      ['X-AnonResource-Backend Abort - inbound', APPHOST, 'Default Web Site', '/'],
      ['EEMS M1.1 PowerShell - inbound', PATHS.wwwroot, null, '/'],
      ['X-BEResource Abort - inbound', PATHS.autodiscover, null, '/Autodiscover'],
    ],
  );
  assert.deepEqual(effective.configFiles, [PATHS.wwwroot, PATHS.autodiscover]);
  assert.deepEqual(effective.unread, []);
  assert.equal(effective.rewriteModuleActive, true);
  assert.equal(effective.rewriteModuleNote, null);
});

test('merge goes level by level: an apphost location for /owa comes after the site root web.config and before the OWA web.config', () => {
  const s = inWebConfigSystemWebServer(
    appendToWebConfig(inApphostLocation(inDws(e19(), rules(RULES.anonResource)), 'Default Web Site/owa', rules(RULES.beResource)), PATHS.wwwroot, sws(rules(RULES.proxyNotShellFinal))),
    PATHS.owa,
    rules('<rule name="owa own"><match url=".*" /><action type="None" /></rule>'),
  );
  assert.deepEqual(
    effectiveFor(s, '/owa/').inboundRules.map((r) => [r.name, r.baseUrlPath]),
    [
      ['X-AnonResource-Backend Abort - inbound', '/'],
      ['EEMS M1.1 PowerShell - inbound', '/'],
      ['X-BEResource Abort - inbound', '/owa'],
      ['owa own', '/owa'],
    ],
  );
});

test('schema defaults apply where attributes are absent', () => {
  const effective = effectiveFor(inDws(e19(), rules('<rule name="bare"><match url="x" /><conditions><add input="{URL}" pattern="y" /></conditions></rule>')), '/');
  const rule = effective.inboundRules[0];
  assert.ok(rule);
  assert.equal(rule.enabled, true);
  assert.equal(rule.stopProcessing, false);
  assert.equal(rule.patternSyntax, 'ECMAScript');
  assert.deepEqual(rule.match, { url: 'x', negate: false, ignoreCase: true });
  assert.equal(rule.conditions.logicalGrouping, 'MatchAll');
  assert.equal(rule.conditions.trackAllCaptures, false);
  assert.deepEqual(
    rule.conditions.items.map((c) => [c.negate, c.ignoreCase, c.matchType]),
    [[false, true, 'Pattern']],
  );
  assert.equal(rule.action.type, 'None');
});

test('what does not reach, what was not read, and what IIS would reject are reported', () => {
  const wrapped = appendToWebConfig(e19(), PATHS.wwwroot, `<location inheritInChildApplications="false">${sws(rules(RULES.proxyNotShellFinal))}</location>`);
  const effective = effectiveFor(wrapped, ATTACK);
  assert.equal(effective.notReaching.length, 1);
  assert.equal(effective.notReaching[0]?.origin.file, PATHS.wwwroot);
  assert.match(effective.notReaching[0]?.reason ?? '', /child application \/autodiscover/);

  const unreadMap = new Map<string, string | null>([[PATHS.wwwroot.toLowerCase(), null]]);
  const unread = effectiveRewrite({ apphost: fixture('e19-applicationHost.config'), webConfigs: unreadMap, site: 'Default Web Site', urlPath: ATTACK });
  assert.deepEqual(unread.unread, [PATHS.autodiscover]);
  assert.deepEqual(unread.configFiles, []);

  const dup = effectiveFor(
    inWebConfigSystemWebServer(inDws(e19(), rules(RULES.proxyNotShellFinal)), PATHS.autodiscover, rules(RULES.proxyNotShellFinal)),
    ATTACK,
  );
  assert.equal(dup.inboundRules.length, 1);
  assert.match(dup.problems[0]?.message ?? '', /duplicate rule name "EEMS M1.1 PowerShell - inbound".*500\.19/);
  assert.equal(dup.problems[0]?.origin.file, PATHS.autodiscover);
});

test('RewriteModule: removal is reported with its file and line; a server without the global module has URL Rewrite off', () => {
  const s = inWebConfigSystemWebServer(e19(), PATHS.autodiscover, '<modules><remove name="RewriteModule" /></modules>');
  const off = effectiveFor(s, ATTACK);
  assert.equal(off.rewriteModuleActive, false);
  assert.match(off.rewriteModuleNote ?? '', /removed from system\.webServer\/modules in C:\\Program Files\\.*\\Autodiscover\\web\.config line 19/);
  assert.equal(effectiveFor(s, '/owa/').rewriteModuleActive, true);

  const noGlobal = { ...e19(), apphost: e19().apphost.replace(/<add name="RewriteModule" image="[^"]*" \/>/, '') };
  const inactive = effectiveFor(noGlobal, ATTACK);
  assert.equal(inactive.rewriteModuleActive, false);
  assert.match(inactive.rewriteModuleNote ?? '', /not registered in system\.webServer\/globalModules/);
});

test('a web.config that is not well-formed is an input error naming its Windows path and line', () => {
  const s = { ...e19(), webConfigs: { ...e19().webConfigs, [PATHS.wwwroot]: fixture('e19-wwwroot-web-eems-broken.config') } };
  assert.throws(() => effectiveFor(s, ATTACK), /^ExmitError: C:\\inetpub\\wwwroot\\web\.config line 42: not well-formed/);
});
