/** `exmit catalog verify | update | keygen | sign`: signed catalogs, for feed publishers and servers. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import type { RunContext } from '../cli.ts';
import { addCommonOptions, engineOptions, readCommonOptions, type CommonOptions } from '../options.ts';
import { createUi, type Ui } from '../ui.ts';
import { printJson, printText } from '../output.ts';
import { inputError, usageError } from '../errors.ts';
import { MAX_CATALOG_BYTES } from '../catalog/parse.ts';
import { readConfig } from '../state/config.ts';
import { readCache, sha256Hex } from '../state/cache.ts';
import { resolveStateDir } from '../state/paths.ts';
import { writeFileAtomic } from '../state/secure.ts';
import { readPrivateKeyFile, readTextFile, readTrustFiles, writeKeyPair, writePrivateKeyPosix, type PrivateKeyWriter } from '../trust/files.ts';
import { withLazyEngine } from '../powershell/door.ts';
import { windowsHostFor } from '../powershell/windows-host.ts';
import { checkPrivateKeySecurity, guardStateRead, privateKeySddl, type WindowsHost } from '../state/windows-acl.ts';
import { keyIdOf, mergeTrustedKeys, rawPublicKey } from '../trust/keys.ts';
import { signCatalogBytes } from '../trust/signature.ts';
import { redactCredentials } from '../trust/redact.ts';
import { DEFAULT_TIMEOUT_SECONDS, previousFor, updateFromFeed, type UpdateResult } from '../trust/update.ts';
import { checkBeforeSigning, isExpired, verifyCatalog } from '../trust/verify.ts';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** The trust subcommands of `catalog`. */
export function trustCommands(context: RunContext): Command[] {
  return [verifyCommand(context), updateCommand(context), keygenCommand(context), signCommand(context)];
}

/** `verify FILE` options after validation. */
export interface VerifyOptions {
  common: CommonOptions;
  file: string;
  trust: string[];
  allowExpired: boolean;
}

/** Validates `verify`'s options. */
export function readVerifyOptions(file: string, raw: Record<string, unknown>): VerifyOptions {
  return { common: readCommonOptions(raw), file: path.resolve(file), trust: (raw['trust'] as string[] | undefined) ?? [], allowExpired: raw['allowExpired'] === true };
}

function verifyCommand(context: RunContext): Command {
  const command = new Command('verify')
    .description('check a catalog file and its signature (FILE.sig): signature, trusted key, schema, exmit version, expiry and serial')
    .argument('<file>', 'catalog XML file; its signature is FILE.sig')
    .option('--trust <pubfile>', 'also trust this public key file (repeatable)', collect, [])
    .option('--allow-expired', 'accept an expired catalog');
  addCommonOptions(command, false).action(async (file: string, raw: Record<string, unknown>) => {
    const options = readVerifyOptions(file, raw);
    const ui = createUi(options.common);
    const stateDir = resolveStateDir(options.common.stateDir);
    await withLazyEngine(engineOptions(options.common, ui), (engine) => guardStateRead(stateDir, windowsHostFor(engine)));
    const config = readConfig(stateDir);
    const keys = mergeTrustedKeys(config.trustedKeys, readTrustFiles(options.trust));
    const bytes = readBounded(options.file, MAX_CATALOG_BYTES, 'catalog');
    const sigFile = `${options.file}.sig`;
    let signatureText: string | null = null;
    try {
      signatureText = readFileSync(sigFile, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw inputError(`${sigFile} cannot be read (${(error as Error).message})`);
    }
    const cached = readCache(stateDir);
    const verified = verifyCatalog({
      bytes,
      signatureText,
      what: options.file,
      sigWhat: sigFile,
      keys,
      now: new Date(),
      allowExpired: options.allowExpired,
      allowUnsigned: false,
      previous: previousFor(stateDir, cached),
    });
    const result = {
      file: options.file,
      signature: sigFile,
      valid: true,
      keyId: verified.key?.keyId ?? null,
      keyName: verified.key?.name ?? null,
      serial: verified.catalog.serial,
      published: verified.catalog.published,
      expires: verified.catalog.expires,
      expired: isExpired(verified.catalog, new Date()),
      requires: verified.catalog.requires,
      mitigationCount: verified.catalog.mitigations.length,
      sha256: verified.sha256,
      cachedSerial: cached?.serial ?? null,
    };
    if (options.common.json) printJson(result);
    else printText(`${ui.ok('valid')}: ${result.file}\n  serial ${result.serial}, published ${result.published}, expires ${result.expires}${result.expired ? ui.warn(' (expired)') : ''}, requires exmit ${result.requires}\n  signed by key ${result.keyId}${result.keyName === null ? '' : ` (${result.keyName})`}; ${result.mitigationCount} mitigations`);
    context.exitCode = 0;
  });
  return command;
}

/** `update` options after validation. */
export interface UpdateOptions {
  common: CommonOptions;
  url: string | null;
  trust: string[];
  proxy: string | null;
  ca: string | null;
  allowHttp: boolean;
  allowExpired: boolean;
  timeoutSeconds: number;
}

/** Validates `update`'s options (the --ca file is read here). */
export function readUpdateOptions(raw: Record<string, unknown>): UpdateOptions {
  const common = readCommonOptions(raw);
  const timeoutText = raw['timeout'] as string | undefined;
  let timeoutSeconds = DEFAULT_TIMEOUT_SECONDS;
  if (timeoutText !== undefined) {
    timeoutSeconds = Number(timeoutText);
    if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0 || timeoutSeconds > 600) throw usageError(`--timeout "${timeoutText}" is not a number of seconds between 0 and 600`, 'As in --timeout 30.');
  }
  const proxy = (raw['proxy'] as string | undefined) ?? null;
  if (proxy !== null && !URL.canParse(proxy)) throw usageError(`--proxy "${redactCredentials(proxy)}" is not a URL`, 'As in --proxy http://proxy.contoso.com:8080.');
  const caFile = raw['ca'] as string | undefined;
  let ca: string | null = null;
  if (caFile !== undefined) {
    ca = readTextFile(caFile, '--ca');
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw inputError(`--ca ${caFile} holds no PEM certificate`, 'Give a PEM file with one or more "-----BEGIN CERTIFICATE-----" blocks.');
  }
  const url = (raw['url'] as string | undefined) ?? null;
  return {
    common,
    url,
    trust: (raw['trust'] as string[] | undefined) ?? [],
    proxy,
    ca,
    allowHttp: raw['allowHttp'] === true,
    allowExpired: raw['allowExpired'] === true,
    timeoutSeconds,
  };
}

function updateCommand(context: RunContext): Command {
  const command = new Command('update')
    .description('download, verify and cache a signed catalog (URL and URL.sig) from a feed')
    .option('--url <url>', 'the feed\'s catalog URL (default: catalogUrl in config.json)')
    .option('--trust <pubfile>', 'also trust this public key file (repeatable)', collect, [])
    .option('--proxy <url>', 'proxy (default: proxy in config.json, else HTTPS_PROXY, else on Windows the WinHTTP proxy; NO_PROXY applies)')
    .option('--ca <file>', 'also trust the CA certificates in this PEM file for HTTPS')
    .option('--allow-http', 'allow http: and file: URLs (the signature is still required)')
    .option('--allow-expired', 'accept an expired catalog')
    .option('--timeout <seconds>', `give up after this many seconds per download (default ${DEFAULT_TIMEOUT_SECONDS})`);
  addCommonOptions(command, false).action(async (raw: Record<string, unknown>) => {
    const options = readUpdateOptions(raw);
    const ui = createUi(options.common);
    const result = await withLazyEngine(engineOptions(options.common, ui), (engine) => ui.spin('downloading the catalog', () =>
      updateFromFeed({
        stateDir: resolveStateDir(options.common.stateDir),
        url: options.url,
        extraKeys: readTrustFiles(options.trust),
        proxy: options.proxy,
        ca: options.ca,
        allowInsecure: options.allowHttp,
        allowExpired: options.allowExpired,
        timeoutMs: Math.round(options.timeoutSeconds * 1000),
        now: new Date(),
        windows: windowsHostFor(engine),
      }),
    ));
    for (const warning of result.warnings) ui.say(ui.warn(`warning: ${warning}`));
    if (options.common.json) printJson(result);
    else printText(renderUpdate(result, ui));
    context.exitCode = 0;
  });
  return command;
}

function renderUpdate(result: UpdateResult, ui: Ui): string {
  switch (result.outcome) {
    case 'updated':
      return `${ui.ok('updated')}: catalog ${result.serial} from ${result.url}, signed by key ${result.keyId}${result.previousSerial === null ? '' : ` (was ${result.previousSerial})`}\n  cached in ${result.cache}`;
    case 'not-modified':
      return `${ui.ok('up to date')}: ${result.url} has not changed (catalog ${result.serial})`;
    case 'unchanged':
      return `${ui.ok('up to date')}: ${result.url} still serves catalog ${result.serial}`;
  }
}

/** `keygen` options after validation. */
export interface KeygenOptions {
  common: CommonOptions;
  out: string;
  name: string;
}

function keygenCommand(context: RunContext): Command {
  const command = new Command('keygen')
    .description('make an Ed25519 signing key pair: DIR/NAME.key (owner-only) and DIR/NAME.pub (with its key id)')
    .requiredOption('--out <dir>', 'folder to write the key pair into')
    .option('--name <name>', 'file name of the pair, without extension', 'exmit-signing');
  addCommonOptions(command, false).action(async (raw: Record<string, unknown>) => {
    const options: KeygenOptions = { common: readCommonOptions(raw), out: path.resolve(String(raw['out'])), name: String(raw['name']) };
    const ui = createUi(options.common);
    const files = await withLazyEngine(engineOptions(options.common, ui), (engine) => writeKeyPair(options.out, options.name, privateKeyWriterFor(windowsHostFor(engine))));
    const result = { keyId: files.keyId, privateKey: files.privateKeyFile, publicKey: files.publicKeyFile };
    if (options.common.json) printJson(result);
    else printText(`${ui.ok('key pair made')}: key id ${result.keyId}\n  private key: ${result.privateKey} (keep it secret: it signs what servers will apply)\n  public key:  ${result.publicKey} (copy it to each server's trustedKeys)`);
    context.exitCode = 0;
  });
  return command;
}

/** `sign` options after validation. */
export interface SignOptions {
  common: CommonOptions;
  file: string;
  key: string;
}

function signCommand(context: RunContext): Command {
  const command = new Command('sign')
    .description('check a catalog and write its detached signature FILE.sig')
    .argument('<file>', 'catalog XML file')
    .requiredOption('--key <key>', 'private key file made by "exmit catalog keygen"');
  addCommonOptions(command, false).action(async (file: string, raw: Record<string, unknown>) => {
    const options: SignOptions = { common: readCommonOptions(raw), file: path.resolve(file), key: path.resolve(String(raw['key'])) };
    const ui = createUi(options.common);
    await withLazyEngine(engineOptions(options.common, ui), (engine) => checkPrivateKeyAccess(options.key, windowsHostFor(engine)));
    const signing = readPrivateKeyFile(options.key);
    const bytes = readBounded(options.file, MAX_CATALOG_BYTES, 'catalog');
    // Refuse to sign what no server would accept: schema, vocabulary and requires are checked first.
    const catalog = checkBeforeSigning(bytes, options.file);
    const signatureText = signCatalogBytes(bytes, signing.privateKey, signing.publicKey);
    const sigFile = `${options.file}.sig`;
    writeFileAtomic(sigFile, signatureText, 0o644);
    const keyId = keyIdOf(rawPublicKey(signing.publicKey));
    const result = { file: options.file, signature: sigFile, keyId, serial: catalog.serial, expires: catalog.expires, sha256: sha256Hex(bytes) };
    if (options.common.json) printJson(result);
    else printText(`${ui.ok('signed')}: ${result.file} (serial ${result.serial}) with key ${result.keyId}\n  signature: ${result.signature}`);
    context.exitCode = 0;
  });
  return command;
}

/** Where keygen writes the private key: on Windows through the engine, with an ACL for the user and SYSTEM from creation. */
export function privateKeyWriterFor(windows: WindowsHost | null): PrivateKeyWriter {
  if (windows === null) return writePrivateKeyPosix;
  return async (file, pem) => {
    const [entry] = await windows.security([file]);
    if (entry !== undefined && entry.kind !== 'missing') throw inputError(`${file} already exists: refused to overwrite a key`, 'Choose another --out folder or --name.');
    await windows.createSecure(file, 'file', privateKeySddl(await windows.identity()), Buffer.from(pem, 'utf8'));
  };
}

/** On Windows, refuses a private key that others may read or change, before it is read (POSIX checks are made as it is read). */
export async function checkPrivateKeyAccess(file: string, windows: WindowsHost | null): Promise<void> {
  if (windows === null) return;
  const [entry] = await windows.security([file]);
  if (entry === undefined || entry.kind === 'missing') return; // reading it reports the missing file
  checkPrivateKeySecurity(entry, await windows.identity());
}

function readBounded(file: string, maxBytes: number, what: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    throw inputError(`${what} ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, 'Check the path.');
  }
  if (bytes.length > maxBytes) throw inputError(`${file}: ${bytes.length} bytes, over the limit of ${maxBytes} bytes for a ${what}`);
  return bytes;
}
