// An image whose web.config holds patterns that never end: the audit still ends in seconds and says which rules were not evaluated.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { image, parseJson, runCli } from '../support/cli.ts';

interface Doc {
  mitigations: { id: string; status: string; reason: string }[];
}

it('a catastrophic pattern in a web.config: the audit ends in seconds, names the rule, and errs on the side of caution', { timeout: 120_000 }, () => {
  const dir = path.join(mkdtempSync(path.join(tmpdir(), 'exmit-redos-')), 'image');
  cpSync(image('e19-cu12-oct22su-eems-rule'), dir, { recursive: true });
  const webConfig = path.join(dir, 'fs', 'C', 'inetpub', 'wwwroot', 'web.config');
  const text = readFileSync(webConfig, 'utf8');
  const hostile =
    '<rule name="hostile alternation" stopProcessing="true"><match url="(.|.)*Q" /><action type="AbortRequest" /></rule>' +
    '<rule name="hostile chain"><match url=".*" /><conditions><add input="{REQUEST_URI}" pattern=".*.*.*.*.*.*.*.*.*.*Q" /></conditions><action type="None" /></rule>';
  assert.ok(text.includes('<rule name="EEMS M1.1 PowerShell - inbound"'));
  writeFileSync(webConfig, text.replace('<rule name="EEMS M1.1 PowerShell - inbound"', `${hostile}<rule name="EEMS M1.1 PowerShell - inbound"`));
  const started = Date.now();
  const run = runCli(['audit', '--json', '--target', `image:${dir}`, '--state-dir', mkdtempSync(path.join(tmpdir(), 'exmit-state-'))]);
  const seconds = (Date.now() - started) / 1000;
  assert.equal(run.code, 3, run.stderr);
  assert.ok(seconds < 60, `the audit took ${seconds} s`);
  const pns = parseJson<Doc>(run).mitigations.find((m) => m.id === 'proxynotshell-autodiscover');
  // Without the hostile rules this image is "mitigated" (test/e2e/audit-images.test.ts).
  assert.equal(pns?.status, 'needed');
  assert.match(pns?.reason ?? '', /rule "hostile alternation" \(C:\\inetpub\\wwwroot\\web\.config\) was not evaluated \(pattern "\(\.\|\.\)\*Q" ran out of its time budget/);
  assert.match(pns?.reason ?? '', /rule "hostile chain" \(C:\\inetpub\\wwwroot\\web\.config\) was not evaluated \(pattern "\.\*\.\*\.\*\.\*\.\*\.\*\.\*\.\*\.\*\.\*Q" ran out/);
});
