import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Probe } from '../../src/catalog/types.ts';
import { decodePercent, evaluateInbound, evaluateOutbound, expandInput, judgeProbes } from '../../src/iis/rewrite-eval.ts';
import {
  PATHS,
  RULES,
  e19,
  effectiveFor,
  inApphostLocation,
  inWebConfigSystemWebServer,
  probe,
  responseProbe,
  rules,
  type Scenario,
} from '../fixtures/iis/scenario.ts';

const inDws = (xml: string, s: Scenario = e19()): Scenario => inApphostLocation(s, 'Default Web Site', xml);
const judge = (s: Scenario, p: Probe) => evaluateInbound(effectiveFor(s, p.url), p);

test('ProxyNotShell: the final form stops the exploit and its bypasses; the 2022 forms miss the bypasses', async (t) => {
  const forms = {
    final: RULES.proxyNotShellFinal,
    '2022 with @': RULES.proxyNotShell2022At,
    '2022 without @': RULES.proxyNotShell2022,
  };
  type Form = keyof typeof forms;
  const cases: { p: Probe; blockedBy: Form[] }[] = [
    { p: probe('attack', '/autodiscover/autodiscover.json?@evil.com/PowerShell/?X-Rps-CAT=x'), blockedBy: ['final', '2022 with @', '2022 without @'] },
    {
      p: probe('attack', '/autodiscover/autodiscover.json?@evil.com/owa/&Email=autodiscover/autodiscover.json%3F@evil.com&Protocol=XYZ&FooProtocol=Powershell'),
      blockedBy: ['final', '2022 with @', '2022 without @'],
    },
    { p: probe('bypass', '/autodiscover/autodiscover.json?@evil.com/%50owershell'), blockedBy: ['final'] },
    { p: probe('bypass', '/autodiscover/autodiscover.json?@evil.com/%70ower%73hell/?X-Rps-CAT=x'), blockedBy: ['final'] },
    { p: probe('bypass', '/autodiscover/autodiscover.json?%40evil.com/PowerShell'), blockedBy: ['final', '2022 without @'] },
    { p: probe('bypass', '/Autodiscover/AutoDiscover.JSON?@evil.com/POWERSHELL'), blockedBy: ['final', '2022 with @', '2022 without @'] },
    { p: probe('ordinary', '/autodiscover/autodiscover.json?Email=user%40contoso.com&Protocol=ActiveSync&RedirectCount=1'), blockedBy: [] },
    { p: probe('ordinary', '/Autodiscover/Autodiscover.xml'), blockedBy: [] },
    { p: probe('ordinary', '/PowerShell/'), blockedBy: [] },
    { p: probe('ordinary', '/owa/'), blockedBy: [] },
  ];
  for (const [form, xml] of Object.entries(forms) as [Form, string][]) {
    const scenario = inDws(rules(xml));
    for (const c of cases) {
      await t.test(`${form}: ${c.p.kind} ${c.p.url}`, () => {
        const verdict = judge(scenario, c.p);
        assert.equal(verdict.blocked, c.blockedBy.includes(form));
        assert.equal(verdict.outcome, verdict.blocked ? 'blocked' : 'passed');
      });
    }
  }
});

test('ProxyLogon cookie rules', async (t) => {
  const scenario = inDws(rules(RULES.anonResource, RULES.beResource));
  const cases: { p: Probe; by: string | null }[] = [
    { p: probe('attack', '/ecp/y.js', { Cookie: 'X-BEResource=localhost/owa/auth/logon.aspx?~3;' }), by: 'X-BEResource Abort - inbound' },
    {
      p: probe('attack', '/ecp/default.flt', { Cookie: 'X-AnonResource=true; X-AnonResource-Backend=localhost/ecp/default.flt?~3; X-BEResource=localhost/owa/auth/logon.aspx?~3;' }),
      by: 'X-AnonResource-Backend Abort - inbound',
    },
    { p: probe('bypass', '/owa/auth/x.js', { cookie: 'x-beresource=admin@evil.com:444/autodiscover/autodiscover.xml?a=~1942062522' }), by: 'X-BEResource Abort - inbound' },
    { p: probe('ordinary', '/owa/', { Cookie: 'X-BackEndCookie=S-1-5-21-1=u56Lnp2ejJqB; ClientId=ABC' }), by: null },
    { p: probe('ordinary', '/ecp/'), by: null },
  ];
  for (const c of cases) {
    await t.test(`${c.p.kind} ${c.p.url} ${JSON.stringify(c.p.headers)}`, () => {
      const verdict = judge(scenario, c.p);
      assert.equal(verdict.blocked, c.by !== null);
      assert.equal(verdict.by?.name ?? null, c.by);
    });
  }
});

test('OWA CSP outbound rule: appended on OWA pages, not elsewhere', async (t) => {
  const withRule = inApphostLocation(e19(), 'Default Web Site/owa', RULES.owaCsp);
  const csp = { 'Content-Security-Policy': "default-src 'self'" };
  const cases: { name: string; s: Scenario; p: Probe; header: string | undefined }[] = [
    { name: 'OWA start page', s: withRule, p: responseProbe('attack', '/owa/', 'text/html; charset=utf-8', csp), header: "default-src 'self'; script-src-attr 'none'" },
    { name: 'OWA with a query', s: withRule, p: responseProbe('attack', '/owa/?path=/mail', 'text/html', csp), header: "default-src 'self'; script-src-attr 'none'" },
    { name: 'OWA projection page', s: withRule, p: responseProbe('attack', '/owa/projection.aspx', 'text/html', csp), header: "default-src 'self'; script-src-attr 'none'" },
    { name: '/owa without slash, upper case', s: withRule, p: responseProbe('attack', '/OWA', 'text/html', csp), header: "default-src 'self'; script-src-attr 'none'" },
    { name: 'no CSP header yet', s: withRule, p: responseProbe('attack', '/owa/', 'text/html', {}), header: "; script-src-attr 'none'" },
    { name: 'logon page is outside the precondition', s: withRule, p: responseProbe('ordinary', '/owa/auth/logon.aspx', 'text/html', csp), header: "default-src 'self'" },
    { name: 'JSON service answer', s: withRule, p: responseProbe('ordinary', '/owa/service.svc?action=GetItem', 'application/json', csp), header: "default-src 'self'" },
    { name: 'no rule on the real e19 configuration', s: e19(), p: responseProbe('attack', '/owa/', 'text/html', csp), header: "default-src 'self'" },
    {
      name: 'rule placed on /ecp does not reach /owa',
      s: inApphostLocation(e19(), 'Default Web Site/ecp', RULES.owaCsp),
      p: responseProbe('attack', '/owa/', 'text/html', csp),
      header: "default-src 'self'",
    },
    {
      name: 'disabled rule',
      s: inApphostLocation(e19(), 'Default Web Site/owa', RULES.owaCsp.replace('<rule name=', '<rule enabled="false" name=')),
      p: responseProbe('attack', '/owa/', 'text/html', csp),
      header: "default-src 'self'",
    },
    {
      name: 'RewriteModule removed in the OWA web.config',
      s: inWebConfigSystemWebServer(withRule, PATHS.owa, '<modules><remove name="RewriteModule" /></modules>'),
      p: responseProbe('attack', '/owa/', 'text/html', csp),
      header: "default-src 'self'",
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const result = evaluateOutbound(effectiveFor(c.s, c.p.url), c.p);
      assert.equal(result.headers['Content-Security-Policy'], c.header);
    });
  }
});

test('outbound rule whose precondition is not defined does not apply and says why', () => {
  const xml = RULES.owaCsp.replace(/<preConditions>.*<\/preConditions>/, '');
  const p = responseProbe('attack', '/owa/', 'text/html', {});
  const result = evaluateOutbound(effectiveFor(inApphostLocation(e19(), 'Default Web Site/owa', xml), p.url), p);
  assert.deepEqual(result.applied, []);
  assert.match(result.trace[0]?.notes.join(' ') ?? '', /preCondition "EEMS M2.1 OWA CSP precondition" is not defined.*500\.52/);
});

test('judgeProbes: each probe at its own path, inbound and outbound', () => {
  const s = inApphostLocation(inDws(rules(RULES.proxyNotShellFinal)), 'Default Web Site/owa', RULES.owaCsp);
  const probes = [
    probe('attack', '/autodiscover/autodiscover.json?@evil.com/PowerShell/?X-Rps-CAT=x'),
    probe('ordinary', '/autodiscover/autodiscover.json?Email=a%40b.com'),
    probe('ordinary', '/owa/?x=autodiscover-powershell'),
    responseProbe('attack', '/owa/', 'text/html', {}),
    responseProbe('ordinary', '/owa/service.svc', 'application/json', {}),
  ];
  const verdicts = judgeProbes((p) => effectiveFor(s, p.url, p.site), probes);
  assert.deepEqual(
    verdicts.map((v) => [v.direction, v.stopped, v.asExpected, v.by?.name ?? null]),
    [
      ['inbound', true, true, 'EEMS M1.1 PowerShell - inbound'],
      ['inbound', false, true, null],
      ['inbound', true, false, 'EEMS M1.1 PowerShell - inbound'],
      ['outbound', true, true, 'EEMS M2.1 OWA CSP - outbound'],
      ['outbound', false, true, null],
    ],
  );
});

test('rule semantics', async (t) => {
  const attack = '/autodiscover/autodiscover.json?@evil.com/PowerShell';
  const cases: { name: string; s: Scenario; url: string; headers?: Record<string, string>; outcome: string; note?: RegExp; finalUrl?: string }[] = [
    {
      name: 'case-sensitive condition misses mixed-case PowerShell',
      s: inDws(rules(RULES.proxyNotShellFinal.replace('<add input', '<add ignoreCase="false" input'))),
      url: attack,
      outcome: 'passed',
      note: /case-sensitive/,
    },
    {
      name: 'case-sensitive condition stops lower-case powershell',
      s: inDws(rules(RULES.proxyNotShellFinal.replace('<add input', '<add ignoreCase="false" input'))),
      url: attack.toLowerCase(),
      outcome: 'blocked',
      note: /case-sensitive/,
    },
    {
      name: 'Wildcard syntax with a wildcard pattern matches as IIS would, and is noted',
      s: inDws(rules('<rule name="w" patternSyntax="Wildcard" stopProcessing="true"><match url="*" /><conditions><add input="{URL}?{QUERY_STRING}" pattern="*autodiscover*powershell*" /></conditions><action type="AbortRequest" /></rule>')),
      url: attack,
      outcome: 'blocked',
      note: /patternSyntax Wildcard/,
    },
    {
      name: 'Wildcard syntax with a regular-expression pattern does not match',
      s: inDws(rules('<rule name="w" patternSyntax="Wildcard"><match url="*" /><conditions><add input="{REQUEST_URI}" pattern=".*autodiscover.*" /></conditions><action type="AbortRequest" /></rule>')),
      url: attack,
      outcome: 'passed',
      note: /patternSyntax Wildcard/,
    },
    {
      name: 'ExactMatch on the URL relative to the site root',
      s: inDws(rules('<rule name="e" patternSyntax="ExactMatch"><match url="autodiscover/autodiscover.json" /><action type="AbortRequest" /></rule>')),
      url: '/Autodiscover/Autodiscover.json?x',
      outcome: 'blocked',
    },
    {
      name: 'an invalid pattern does not match and is noted',
      s: inDws(rules('<rule name="bad"><match url="(" /><action type="AbortRequest" /></rule>')),
      url: attack,
      outcome: 'passed',
      note: /not evaluated as an ECMAScript regular expression \(Invalid regular expression/,
    },
    {
      name: 'a negated invalid pattern does not match either',
      s: inDws(rules('<rule name="bad"><match url="(" negate="true" /><action type="AbortRequest" /></rule>')),
      url: attack,
      outcome: 'passed',
      note: /Invalid regular expression/,
    },
    {
      name: 'a pattern with nested quantifiers is not run (it could hang on a crafted configuration)',
      s: inDws(rules('<rule name="redos"><match url="^(a+)+$" /><action type="AbortRequest" /></rule>', RULES.proxyNotShellFinal)),
      url: '/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab?autodiscover/powershell',
      outcome: 'blocked',
      note: /nests quantifiers/,
    },
    {
      name: 'IsFile cannot be judged: not matching, noted',
      s: inDws(rules('<rule name="f"><match url=".*" /><conditions><add input="{REQUEST_FILENAME}" matchType="IsFile" /></conditions><action type="AbortRequest" /></rule>')),
      url: attack,
      outcome: 'passed',
      note: /matchType IsFile/,
    },
    {
      name: 'MatchAny: one matching condition is enough',
      s: inDws(rules('<rule name="any"><match url=".*" /><conditions logicalGrouping="MatchAny"><add input="{REQUEST_FILENAME}" matchType="IsDirectory" /><add input="{HTTP_HOST}" pattern="^evil\\." /></conditions><action type="AbortRequest" /></rule>')),
      url: '/owa/',
      headers: { Host: 'evil.example' },
      outcome: 'blocked',
      note: /matchType IsDirectory/,
    },
    {
      name: 'MatchAll: one failing condition is enough to pass',
      s: inDws(rules('<rule name="all"><match url=".*" /><conditions><add input="{HTTP_HOST}" pattern="^evil\\." /><add input="{HTTP_X_FORWARDED_FOR}" pattern="." /></conditions><action type="AbortRequest" /></rule>')),
      url: '/owa/',
      headers: { Host: 'evil.example' },
      outcome: 'passed',
    },
    {
      name: '{HTTP_X_...} reads the header with - as _',
      s: inDws(rules('<rule name="h"><match url=".*" /><conditions><add input="{HTTP_X_FORWARDED_FOR}" pattern="^10\\." /></conditions><action type="AbortRequest" /></rule>')),
      url: '/owa/',
      headers: { 'x-forwarded-for': '10.1.2.3' },
      outcome: 'blocked',
    },
    {
      name: 'CustomResponse 403 blocks',
      s: inDws(rules('<rule name="c"><match url="^ecp/" /><action type="CustomResponse" statusCode="403" statusReason="Forbidden" statusDescription="no" /></rule>')),
      url: '/ecp/default.aspx',
      outcome: 'blocked',
    },
    {
      name: 'CustomResponse 404 ends processing but does not count as blocked',
      s: inDws(rules('<rule name="c"><match url="^ecp/" /><action type="CustomResponse" statusCode="404" /></rule>', RULES.proxyNotShellFinal)),
      url: '/ecp/autodiscover/powershell',
      outcome: 'responded',
    },
    {
      name: 'Redirect ends processing without blocking',
      s: inDws(rules('<rule name="r"><match url=".*" /><action type="Redirect" url="https://mail.contoso.com/{R:0}" /></rule>', RULES.proxyNotShellFinal)),
      url: attack,
      outcome: 'redirected',
    },
    {
      name: 'Rewrite changes the URL seen by later rules',
      s: inDws(
        rules(
          '<rule name="rw"><match url="^old/(.*)" /><action type="Rewrite" url="/new/{R:1}" /></rule>',
          '<rule name="block-new"><match url="^new/secret" /><action type="AbortRequest" /></rule>',
        ),
      ),
      url: '/old/secret?a=1',
      outcome: 'blocked',
      finalUrl: '/new/secret?a=1',
    },
    {
      name: 'None without stopProcessing continues to the next rule',
      s: inDws(rules('<rule name="n"><match url=".*" /><action type="None" /></rule>', RULES.proxyNotShellFinal)),
      url: attack,
      outcome: 'blocked',
    },
    {
      name: '<match url> sees the path relative to the web.config that defines the rule',
      s: inWebConfigSystemWebServer(e19(), PATHS.autodiscover, rules('<rule name="rel"><match url="^autodiscover\\.json$" /><action type="AbortRequest" /></rule>')),
      url: '/Autodiscover/autodiscover.json?x=1',
      outcome: 'blocked',
    },
    {
      name: '... and the same pattern at the site root does not match',
      s: inDws(rules('<rule name="rel"><match url="^autodiscover\\.json$" /><action type="AbortRequest" /></rule>')),
      url: '/Autodiscover/autodiscover.json?x=1',
      outcome: 'passed',
    },
    {
      name: '<match url> sees the decoded path without the query string',
      s: inDws(rules('<rule name="dec"><match url="^autodiscover/autodiscover\\.json$" /><action type="AbortRequest" /></rule>')),
      url: '/autodiscover/autodiscover%2Ejson?@evil.com/x',
      outcome: 'blocked',
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const verdict = judge(c.s, probe('attack', c.url, c.headers ?? {}));
      assert.equal(verdict.outcome, c.outcome);
      if (c.note) assert.match(verdict.trace.flatMap((e) => e.notes).join('\n'), c.note);
      if (c.finalUrl) assert.equal(verdict.finalUrl, c.finalUrl);
    });
  }
});

test('the trace records disabled, non-matching and matching rules in order', () => {
  const s = inDws(rules(RULES.anonResource.replace('<rule ', '<rule enabled="false" '), RULES.beResource, RULES.proxyNotShellFinal));
  const verdict = judge(s, probe('attack', '/autodiscover/autodiscover.json?@evil.com/PowerShell'));
  assert.deepEqual(
    verdict.trace.map((e) => [e.rule.name, e.result, e.stopped]),
    [
      ['X-AnonResource-Backend Abort - inbound', 'disabled', false],
      ['X-BEResource Abort - inbound', 'no-match', false],
      ['EEMS M1.1 PowerShell - inbound', 'matched', true],
    ],
  );
  assert.equal(verdict.trace[2]?.rule.origin.location, 'Default Web Site');
});

test('decodePercent never throws', async (t) => {
  const cases: [string, string][] = [
    ['%50owershell', 'Powershell'],
    ['a%40b', 'a@b'],
    ['%E2%82%AC', '\u20ac'],
    ['%FF', '\ufffd'],
    ['100%', '100%'],
    ['%zz%2', '%zz%2'],
    ['%%41', '%A'],
    ['plus+stays', 'plus+stays'],
  ];
  for (const [input, expected] of cases) {
    await t.test(input, () => assert.equal(decodePercent(input), expected));
  }
});

test('expandInput', async (t) => {
  const vars = (name: string): string => ({ REQUEST_URI: '/a%2Fb?x=%50', HTTP_HOST: 'Mail.Contoso.com', URL: '/a/b' })[name] ?? '';
  const caps = { r: ['all', 'one'], c: ['c0', 'c1', 'c2'] };
  const cases: [string, string][] = [
    ['{UrlDecode:{REQUEST_URI}}', '/a/b?x=P'],
    ['{REQUEST_URI}', '/a%2Fb?x=%50'],
    ['{ToLower:{HTTP_HOST}}', 'mail.contoso.com'],
    ['{HTTP_HOST}{URL}', 'Mail.Contoso.com/a/b'],
    ['{R:1}; script-src-attr', 'one; script-src-attr'],
    ['{C:2}-{R:0}-{R:9}', 'c2-all-'],
    ['{NOT_A_VARIABLE}', ''],
    ['{MyMap:{URL}}', ''],
    ['{UrlEncode:a b}', 'a%20b'],
    ['unbalanced {HTTP_HOST', 'unbalanced {HTTP_HOST'],
    ['literal', 'literal'],
  ];
  for (const [input, expected] of cases) {
    await t.test(input, () => assert.equal(expandInput(input, vars, caps), expected));
  }
});
