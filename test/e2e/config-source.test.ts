// Sections kept in another file (configSource) on copies of server images, with the real PowerShell
// engine: the audit reads them as IIS does, reports what IIS would refuse, and apply neither adds a
// second rule beside one it could not see nor writes into such a section.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { image, parseJson, hasStackTrace } from '../support/cli.ts';
import { runInProcess, sharedEngine } from '../support/in-process.ts';

const engine = sharedEngine();
const copies: string[] = [];
after(() => {
  for (const dir of copies) rmSync(path.dirname(dir), { recursive: true, force: true });
});
const ID = 'proxynotshell-autodiscover';
const WWWROOT = 'fs/C/inetpub/wwwroot';
const APPHOST = 'fs/C/Windows/System32/inetsrv/config/applicationHost.config';

interface AuditDoc {
  mitigations: { id: string; status: string; reason: string }[];
}
interface RunDoc {
  results: { id: string; outcome: string; reason: string }[];
}

/** A fresh copy of an image in a temporary folder (the committed images stay as they are). */
function copyImage(name: string): string {
  const dir = path.join(mkdtempSync(path.join(tmpdir(), 'exmit-cfgsrc-')), name.replace(/\W+/g, '-'));
  cpSync(image(name), dir, { recursive: true });
  copies.push(dir);
  return dir;
}

/** Every file of the image with its SHA-256. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (at: string, rel: string): void => {
    for (const entry of readdirSync(at)) {
      const full = path.join(at, entry);
      const r = rel === '' ? entry : `${rel}/${entry}`;
      if (statSync(full).isDirectory()) walk(full, r);
      else out.set(r, createHash('sha256').update(readFileSync(full)).digest('hex'));
    }
  };
  walk(dir, '');
  return out;
}

/** The eems-rule image with the rules of its wwwroot web.config moved into rewriteRules.config (`configSource`) beside it. */
function rulesKeptApart(fileName = 'rewriteRules.config'): string {
  const dir = copyImage('e19-cu12-oct22su-eems-rule');
  const webConfig = path.join(dir, WWWROOT, 'web.config');
  const text = readFileSync(webConfig, 'utf8');
  const rules = /<rules>[\s\S]*<\/rules>/.exec(text)?.[0];
  assert.ok(rules, 'the image keeps its rules in wwwroot/web.config');
  writeFileSync(webConfig, text.replace(rules, `<rules configSource="${fileName}" />`));
  writeFileSync(path.join(dir, WWWROOT, 'rewriteRules.config'), `<?xml version="1.0" encoding="UTF-8"?>\n${rules}\n`);
  return dir;
}

async function audit(dir: string) {
  const r = await runInProcess(engine, ['audit', '--json', '--target', `image:${dir}`]);
  const entry = parseJson<AuditDoc>(r).mitigations.find((m) => m.id === ID);
  assert.ok(entry, r.stdout);
  return { run: r, entry };
}

describe('configSource: a server protected by rules kept in another file', () => {
  it('audits as mitigated, naming the file the rule lives in, and apply finds it already mitigated without changing a byte', async () => {
    const dir = rulesKeptApart();
    const { entry } = await audit(dir);
    assert.equal(entry.status, 'mitigated', entry.reason);
    assert.match(entry.reason, /"EEMS M1\.1 PowerShell - inbound" \(C:\\inetpub\\wwwroot\\rewriteRules\.config\)/);

    const before = snapshot(dir);
    const r = await runInProcess(engine, ['apply', ID, '--yes', '--json', '--target', `image:${dir}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(parseJson<RunDoc>(r).results[0]?.outcome, 'already-mitigated');
    assert.deepEqual(snapshot(dir), before);
  });

  it('a configSource file that is missing is a configuration error the audit shows, and the status is not mitigated', async () => {
    const dir = rulesKeptApart();
    rmSync(path.join(dir, WWWROOT, 'rewriteRules.config'));
    const { run, entry } = await audit(dir);
    assert.equal(run.code, 3);
    assert.equal(entry.status, 'needed');
    assert.match(entry.reason, /configuration error .*C:\\inetpub\\wwwroot\\web\.config line \d+: configSource="rewriteRules\.config" of <rules>: C:\\inetpub\\wwwroot\\rewriteRules\.config does not exist/);
  });

  it('a configSource path outside the folder is a configuration error, and nothing outside the folder is read', async () => {
    const dir = rulesKeptApart('..\\rewriteRules.config');
    // The file sits where the path points too: IIS still refuses it, and so does exmit.
    writeFileSync(path.join(dir, 'fs/C/inetpub/rewriteRules.config'), readFileSync(path.join(dir, WWWROOT, 'rewriteRules.config')));
    const { entry } = await audit(dir);
    assert.equal(entry.status, 'needed');
    assert.match(entry.reason, /configSource "\.\.\\rewriteRules\.config" leaves the folder of C:\\inetpub\\wwwroot\\web\.config/);
  });
});

describe('configSource: apply does not write into a section kept in another file', () => {
  it('refuses with one line naming the section and its file, exit 1, and nothing changes', async () => {
    const dir = copyImage('examples/e19-cu12-oct22su');
    const apphostPath = path.join(dir, APPHOST);
    const text = readFileSync(apphostPath, 'utf8');
    // The first real <location path="Default Web Site"> (the file's header comment shows one too).
    const first = /^ {4}<location path="Default Web Site"[^>]*>\s*<system\.webServer>/m.exec(text);
    assert.ok(first);
    const at = first.index + first[0].length;
    writeFileSync(apphostPath, `${text.slice(0, at)}\n                <rewrite><rules configSource="dws-rules.config" /></rewrite>${text.slice(at)}`);
    writeFileSync(path.join(path.dirname(apphostPath), 'dws-rules.config'), '<rules>\n</rules>\n');

    const { entry } = await audit(dir);
    assert.equal(entry.status, 'needed', entry.reason);
    assert.doesNotMatch(entry.reason, /configuration error/);

    const before = snapshot(dir);
    const r = await runInProcess(engine, ['apply', ID, '--yes', '--target', `image:${dir}`]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const message = /system\.webServer\/rewrite\/rules of <location path="Default Web Site"> \(applicationHost\.config line \d+\) is kept in another file, C:\\Windows\\System32\\inetsrv\\config\\dws-rules\.config \(configSource="dws-rules\.config"\), and exmit does not edit such files: nothing was changed/;
    assert.match(r.stderr, message, r.stderr);
    assert.equal(r.stderr.split('\n').filter((l) => message.test(l)).length, 1, r.stderr);
    assert.equal(hasStackTrace(r.stderr), false);
    assert.deepEqual(snapshot(dir), before);
  });
});
