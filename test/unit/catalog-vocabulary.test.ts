// A correctly signed but hostile catalog (a stolen key) is still refused by `catalog verify`, naming the element and the rule it breaks.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ExmitError } from '../../src/errors.ts';
import { verifyCatalog } from '../../src/trust/verify.ts';
import { makeKey } from './trust-fixtures.ts';

const key = makeKey('stolen');
const BUNDLED = readFileSync(fileURLToPath(new URL('../../mitigations/catalog.xml', import.meta.url)), 'utf8');
const NOW = new Date('2026-12-01T10:00:00Z');

function replaceOnce(text: string, from: string, to: string): string {
  assert.ok(text.includes(from), `test setup: "${from}" not in the document`);
  return text.replace(from, to);
}

/** Signs the text with a trusted key and verifies it as `catalog verify` does. */
function verifySigned(text: string, now = NOW) {
  const bytes = Buffer.from(text, 'utf8');
  return verifyCatalog({ bytes, signatureText: key.sign(bytes), what: 'hostile.xml', sigWhat: 'hostile.xml.sig', keys: [key.trusted], now, allowExpired: false, allowUnsigned: false, previous: null });
}

function refused(text: string, now = NOW): string {
  try {
    verifySigned(text, now);
  } catch (error) {
    assert.ok(error instanceof ExmitError, `expected an ExmitError, got ${String(error)}`);
    assert.equal(error.code, 1);
    return error.message;
  }
  assert.fail('the signed catalog was accepted');
}

const OUTBOUND = 'serverVariable="RESPONSE_Content_Security_Policy" pattern="(.*)" value="{R:1}; script-src-attr \'none\'"';

describe('a signed catalog outside the vocabulary is refused', () => {
  it('the bundled catalog, signed, passes', () => {
    assert.equal(verifySigned(BUNDLED).catalog.mitigations.length, 8);
  });

  it('outbound rules: only Content-Security-Policy', () => {
    const message = refused(replaceOnce(BUNDLED, OUTBOUND, 'serverVariable="RESPONSE_Access_Control_Allow_Origin" pattern="(.*)" value="{R:1}https://evil.example"'));
    assert.match(message, /^hostile\.xml line \d+: <mitigation id="owa-csp-xss">\/<actions>\/<outbound-rule serverVariable="RESPONSE_Access_Control_Allow_Origin">: .*outside the vocabulary: outbound rules only append to Content-Security-Policy/);
  });

  it('outbound rules: {R:1} then literal text, never a server variable', () => {
    for (const value of ['{R:1}{HTTP_COOKIE}', "{R:1}; script-src {HTTP_ORIGIN}", '{R:1}; a}', '{R:1}&#10;Set-Cookie: a=b']) {
      const message = refused(replaceOnce(BUNDLED, OUTBOUND, `serverVariable="RESPONSE_Content_Security_Policy" pattern="(.*)" value="${value}"`));
      assert.match(message, /<outbound-rule value="[^]*">: [^]*the value is \{R:1\} followed by literal text, with no \{ or \}/, value);
    }
  });

  it('global modules: only the fixed list (not RewriteModule)', () => {
    const message = refused(replaceOnce(BUNDLED, '<remove-global-module name="TokenCacheModule"/>', '<remove-global-module name="RewriteModule"/>'));
    assert.match(message, /<mitigation id="tokencache-module">\/<actions>\/<remove-global-module name="RewriteModule">: module "RewriteModule" is outside the vocabulary: only TokenCacheModule may be removed/);
  });

  it('locations: no . or .. segments, only the site and the paths the vocabulary names', () => {
    const cases: [string, RegExp][] = [
      ['Default Web Site/owa/..', /"\." and "\.\." segments are not allowed/],
      ['Default Web Site/./owa', /"\." and "\.\." segments are not allowed/],
      ['Default Web Site/owa/auth', /rules go to "Default Web Site" or "Default Web Site\/" followed by one of owa, ecp/],
      ['Default Web Site/aspnet_client', /outside the vocabulary/],
      ['Exchange Back End/owa', /outside the vocabulary/],
    ];
    for (const [location, reason] of cases) {
      const message = refused(replaceOnce(BUNDLED, 'location="Default Web Site/owa"', `location="${location}"`));
      assert.match(message, new RegExp(`<outbound-rule location="${location.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}">: location`), location);
      assert.match(message, reason, location);
    }
    assert.equal(verifySigned(replaceOnce(BUNDLED, 'location="Default Web Site/owa"', 'location="Default Web Site/OWA"')).catalog.mitigations.length, 8);
  });

  it('serials: YYYYMMDDNN with a real date, no later than published and than tomorrow', () => {
    const serial = (value: string, published = '2026-11-28') => replaceOnce(replaceOnce(BUNDLED, 'serial="2026112801"', `serial="${value}"`), 'published="2026-11-28"', `published="${published}"`);
    const cases: [string, string, RegExp][] = [
      ['999999999999999', '2026-11-28', /serial "999999999999999" is not of the form YYYYMMDDNN/],
      ['20261128', '2026-11-28', /is not of the form YYYYMMDDNN/],
      ['2026113101', '2026-11-28', /2026-11-31 is not a date/],
      ['2026112901', '2026-11-28', /its date 2026-11-29 is after published 2026-11-28/],
      ['2026120301', '2026-12-03', /its date 2026-12-03 is after tomorrow \(2026-12-02, UTC\)/],
    ];
    for (const [value, published, reason] of cases) {
      const message = refused(serial(value, published));
      assert.match(message, new RegExp(`^hostile\\.xml line 7: <catalog serial="${value}">: `), value);
      assert.match(message, reason, value);
    }
    assert.equal(verifySigned(serial('2026120299', '2026-12-02')).catalog.serial, 2026120299);
    assert.equal(verifySigned(serial('2026112700')).catalog.serial, 2026112700);
  });

  it('CDATA in any letter case', () => {
    for (const opener of ['<![CDATA[', '<![cdata[', '<![CData[']) {
      const message = refused(replaceOnce(BUNDLED, '<title>', `<title>${opener}x]]>`));
      assert.match(message, /^hostile\.xml line \d+: CDATA sections are not allowed/, opener);
    }
  });
});
