import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExmitError } from '../../src/errors.ts';
import { parseConfigXml } from '../../src/iis/config-xml.ts';
import { configLevelsFor, configPathsFor, expandEnv, findSite, readGlobalModules, readSites } from '../../src/iis/sites.ts';
import { fixture } from '../fixtures/iis/scenario.ts';

const apphost = parseConfigXml(fixture('e19-applicationHost.config'), 'applicationHost.config');
const FE = 'C:\\Program Files\\Microsoft\\Exchange Server\\V15\\FrontEnd\\HttpProxy';
const BE = 'C:\\Program Files\\Microsoft\\Exchange Server\\V15\\ClientAccess';

test('reads sites, applications and virtual directories of the real e19 applicationHost.config', () => {
  const sites = readSites(apphost);
  assert.deepEqual(
    sites.map((s) => s.name),
    ['Default Web Site', 'Exchange Back End'],
  );
  const dws = findSite(apphost, 'default web site');
  assert.equal(dws.id, '1');
  const autodiscover = dws.applications.find((a) => a.path === '/Autodiscover');
  assert.deepEqual(autodiscover, {
    path: '/Autodiscover',
    applicationPool: 'MSExchangeAutodiscoverAppPool',
    virtualDirectories: [{ path: '/', physicalPath: `${FE}\\Autodiscover` }],
  });
  assert.equal(dws.applications[0]?.virtualDirectories[0]?.physicalPath, '%SystemDrive%\\inetpub\\wwwroot');
  const be = findSite(apphost, 'Exchange Back End');
  assert.deepEqual(
    be.applications[0]?.virtualDirectories.map((v) => v.path),
    ['/', '/mapi', '/Exchange', '/Exchweb', '/Public'],
  );
});

test('an unknown site is an input error naming applicationHost.config', () => {
  assert.throws(
    () => findSite(apphost, 'Nope'),
    (err: unknown) => err instanceof ExmitError && /^applicationHost\.config: no site named "Nope"/.test(err.message),
  );
});

test('global modules: name and image, including RewriteModule and TokenCacheModule', () => {
  const modules = readGlobalModules(apphost);
  assert.deepEqual(
    modules.find((m) => m.name === 'TokenCacheModule'),
    { name: 'TokenCacheModule', image: '%windir%\\System32\\inetsrv\\cachtokn.dll', line: 568 },
  );
  assert.equal(modules.find((m) => m.name === 'RewriteModule')?.image, '%SystemRoot%\\system32\\inetsrv\\rewrite.dll');
  const removed = parseConfigXml(
    '<configuration><system.webServer><globalModules><add name="A" image="a.dll"/><add name="B" image="b.dll"/><remove name="a"/></globalModules></system.webServer></configuration>',
    'x',
  );
  assert.deepEqual(
    readGlobalModules(removed).map((m) => m.name),
    ['B'],
  );
});

test('expandEnv', async (t) => {
  const cases: [string, Record<string, string>, string][] = [
    ['%SystemDrive%\\inetpub\\wwwroot', {}, 'C:\\inetpub\\wwwroot'],
    ['%systemdrive%\\inetpub\\wwwroot', { SYSTEMDRIVE: 'D:' }, 'D:\\inetpub\\wwwroot'],
    ['%windir%\\System32\\RpcProxy', {}, 'C:\\Windows\\System32\\RpcProxy'],
    ['%SystemRoot%\\system32\\inetsrv\\rewrite.dll', { windir: 'E:\\Win' }, 'C:\\Windows\\system32\\inetsrv\\rewrite.dll'],
    ['%SystemRoot%\\x', { SystemRoot: 'E:\\Win' }, 'E:\\Win\\x'],
    ['%ExchangeInstallPath%FrontEnd\\HttpProxy', { ExchangeInstallPath: 'D:\\Exchange\\' }, 'D:\\Exchange\\FrontEnd\\HttpProxy'],
    ['%Unknown%\\x', {}, '%Unknown%\\x'],
    ['no variables', {}, 'no variables'],
  ];
  for (const [input, env, expected] of cases) {
    await t.test(`${input} with ${JSON.stringify(env)}`, () => assert.equal(expandEnv(input, env), expected));
  }
});

test('configPathsFor: the web.config files that apply to a URL, from the site root down', async (t) => {
  const cases: [string, string, Record<string, string>, string[]][] = [
    ['Default Web Site', '/autodiscover/autodiscover.json?@evil.com/PowerShell', {}, ['C:\\inetpub\\wwwroot\\web.config', `${FE}\\Autodiscover\\web.config`]],
    ['Default Web Site', '/Autodiscover', {}, ['C:\\inetpub\\wwwroot\\web.config', `${FE}\\Autodiscover\\web.config`]],
    ['Default Web Site', '/', {}, ['C:\\inetpub\\wwwroot\\web.config']],
    ['Default Web Site', '/owa/', { SystemDrive: 'D:' }, ['D:\\inetpub\\wwwroot\\web.config', `${FE}\\owa\\web.config`]],
    [
      'Default Web Site',
      '/owa/auth/logon.aspx',
      {},
      ['C:\\inetpub\\wwwroot\\web.config', `${FE}\\owa\\web.config`, `${FE}\\owa\\auth\\web.config`],
    ],
    [
      'Default Web Site',
      '/OWA/Calendar/x/',
      {},
      ['C:\\inetpub\\wwwroot\\web.config', `${FE}\\owa\\web.config`, `${FE}\\owa\\web.config`, `${FE}\\owa\\x\\web.config`],
    ],
    ['Exchange Back End', '/Rpc/rpcproxy.dll', {}, [`${BE}\\web.config`, 'C:\\Windows\\System32\\RpcProxy\\web.config']],
    ['Exchange Back End', '/mapi/emsmdb/', {}, [`${BE}\\web.config`, `${BE}\\mapi\\web.config`, `${BE}\\mapi\\emsmdb\\web.config`]],
  ];
  for (const [site, url, env, expected] of cases) {
    await t.test(`${site} ${url}`, () => assert.deepEqual(configPathsFor(apphost, site, url, env), expected));
  }
});

test('configPathsFor also takes the text of applicationHost.config', () => {
  assert.deepEqual(configPathsFor(fixture('e19-applicationHost.config'), 'Default Web Site', '/ecp/'), ['C:\\inetpub\\wwwroot\\web.config', `${FE}\\ecp\\web.config`]);
});

test('configLevelsFor marks application roots and the final file segment', () => {
  const levels = configLevelsFor(findSite(apphost, 'Default Web Site'), '/owa/auth/logon.aspx');
  assert.deepEqual(
    levels.map((l) => [l.urlPath, l.applicationRoot, l.webConfigPath !== null]),
    [
      ['/', true, true],
      ['/owa', true, true],
      ['/owa/auth', false, true],
      ['/owa/auth/logon.aspx', false, false],
    ],
  );
});
