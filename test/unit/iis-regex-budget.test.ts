// A compromised server's configuration cannot hang the audit: every URL Rewrite pattern runs within a time budget.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateInbound, evaluateOutbound, unevaluatedRules } from '../../src/iis/rewrite-eval.ts';
import { execBounded, prestartRegexWorker, stopRegexWorker } from '../../src/iis/regex-worker.ts';
import { RULES, e19, effectiveFor, inApphostLocation, probe, responseProbe, rules } from '../fixtures/iis/scenario.ts';

const HOSTILE = [
  '<rule name="hostile alternation"><match url="(.|.)*Q" /><action type="AbortRequest" /></rule>',
  '<rule name="hostile chain"><match url=".*" /><conditions><add input="{REQUEST_URI}" pattern=".*.*.*.*.*.*.*.*.*.*Q" /></conditions><action type="AbortRequest" /></rule>',
];

test('catastrophic patterns end within their budget, are named as not evaluated, and evaluation goes on to the next rule', { timeout: 20_000 }, () => {
  const s = inApphostLocation(e19(), 'Default Web Site', rules(...HOSTILE, RULES.proxyNotShellFinal));
  const url = `/autodiscover/autodiscover.json?@evil.com/powershell/&a=${'a'.repeat(5000)}`;
  const started = Date.now();
  const verdict = evaluateInbound(effectiveFor(s, url), probe('attack', url));
  const again = evaluateInbound(effectiveFor(s, url), probe('attack', url));
  assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
  assert.equal(verdict.outcome, 'blocked');
  assert.equal(verdict.by?.name, 'EEMS M1.1 PowerShell - inbound');
  const unevaluated = unevaluatedRules(verdict.trace);
  assert.deepEqual(unevaluated.map((u) => u.rule.name), ['hostile alternation', 'hostile chain']);
  assert.match(unevaluated[0]?.reason ?? '', /^pattern "\(\.\|\.\)\*Q" ran out of its time budget \(\d+ ms on a \d+-character input\)$/);
  assert.match(verdict.trace[0]?.notes.join() ?? '', /was not evaluated: it ran out of its time budget/);
  // A pattern that ran out is not run again in the same run.
  assert.deepEqual(unevaluatedRules(again.trace).map((u) => u.rule.name), ['hostile alternation', 'hostile chain']);
});

test('an outbound precondition with a catastrophic pattern is named too; ordinary patterns still evaluate normally', { timeout: 20_000 }, () => {
  const csp = RULES.owaCsp.replace('pattern="^text/html"', 'pattern="(.|.)*Q"');
  const s = inApphostLocation(e19(), 'Default Web Site/owa', csp);
  const result = evaluateOutbound(effectiveFor(s, '/owa/'), responseProbe('attack', '/owa/', `text/html; ${'x'.repeat(200)}`, {}));
  assert.deepEqual(unevaluatedRules(result.trace).map((u) => u.rule.name), ['EEMS M2.1 OWA CSP - outbound']);
  const plain = inApphostLocation(e19(), 'Default Web Site/owa', RULES.owaCsp);
  const ok = evaluateOutbound(effectiveFor(plain, '/owa/'), responseProbe('attack', '/owa/', 'text/html', {}));
  assert.equal(ok.headers['Content-Security-Policy'], "; script-src-attr 'none'");
  assert.deepEqual(unevaluatedRules(ok.trace), []);
});

test('a worker started ahead of the first match serves it, and a hostile pattern still ends only its own match', { timeout: 20_000 }, async () => {
  await stopRegexWorker();
  prestartRegexWorker();
  prestartRegexWorker(); // a second call while one is starting starts nothing more
  assert.deepEqual(execBounded('^/(owa)/', 'i', '/OWA/auth'), { kind: 'match', captures: ['/OWA/', 'OWA'] });
  const hostile = execBounded('(.|.)*Q', '', 'a'.repeat(5000));
  assert.equal(hostile.kind, 'timeout');
  // The worker that ran out was ended; the next match gets a fresh one.
  assert.deepEqual(execBounded('b', '', 'abc'), { kind: 'match', captures: ['b'] });
  await stopRegexWorker();
});
