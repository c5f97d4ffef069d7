/** `exmit catalog sign FILE --key KEY`: check a catalog and write its detached signature. */
import path from 'node:path';
import { Command } from 'commander';
import type { RunContext } from '../context.ts';
import { addCommonOptions, engineOptions, readCommonOptions, type CommonOptions, type RawCommon } from '../options.ts';
import { checkPrivateKeySecurity, type WindowsHost } from '../state/windows-acl.ts';
import { readBounded } from './read-bounded.ts';

/** `sign`'s raw options as commander hands them over. */
export interface RawSignOptions extends RawCommon {
  key: string;
}

/** `sign` options after validation. */
export interface SignOptions {
  common: CommonOptions;
  file: string;
  key: string;
}

/** Validates `sign`'s options. */
export function readSignOptions(file: string, raw: RawSignOptions): SignOptions {
  return { common: readCommonOptions(raw), file: path.resolve(file), key: path.resolve(raw.key) };
}

/** The `catalog sign` command. */
export function catalogSignCommand(context: RunContext): Command {
  const command = new Command('sign')
    .description('check a catalog and write its detached signature FILE.sig')
    .argument('<file>', 'catalog XML file')
    .requiredOption('--key <key>', 'private key file made by "exmit catalog keygen"');
  addCommonOptions(command, { target: false, catalog: false, stateDir: false }).action(async (file: string, raw: RawSignOptions) => {
    const options = readSignOptions(file, raw);
    const [{ createUi }, { printJson, printText }, { MAX_CATALOG_BYTES }, { sha256Hex }, { writeFileAtomic }, { readPrivateKeyFile }, { withLazyEngine }, { windowsHostFor }, { keyIdOf, rawPublicKey }, { signCatalogBytes }, { checkBeforeSigning }] = await Promise.all([
      import('../ui.ts'),
      import('../output.ts'),
      import('../catalog/parse.ts'),
      import('../state/cache.ts'),
      import('../state/secure.ts'),
      import('../trust/files.ts'),
      import('../powershell/door.ts'),
      import('../powershell/windows-host.ts'),
      import('../trust/keys.ts'),
      import('../trust/signature.ts'),
      import('../trust/verify.ts'),
    ]);
    const ui = createUi(options.common, context.output);
    await withLazyEngine(() => context.startEngine(engineOptions(options.common, ui)), (engine) => checkPrivateKeyAccess(options.key, windowsHostFor(engine)));
    const signing = readPrivateKeyFile(options.key);
    const bytes = readBounded(options.file, MAX_CATALOG_BYTES, 'catalog');
    // Refuse to sign what no server would accept: schema, vocabulary and requires are checked first.
    const catalog = checkBeforeSigning(bytes, options.file);
    const signatureText = signCatalogBytes(bytes, signing.privateKey, signing.publicKey);
    const sigFile = `${options.file}.sig`;
    writeFileAtomic(sigFile, signatureText, 0o644);
    const keyId = keyIdOf(rawPublicKey(signing.publicKey));
    const result = { file: options.file, signature: sigFile, keyId, serial: catalog.serial, expires: catalog.expires, sha256: sha256Hex(bytes) };
    if (options.common.json) printJson(result, context.output);
    else printText(`${ui.ok('signed')}: ${result.file} (serial ${result.serial}) with key ${result.keyId}\n  signature: ${result.signature}`, context.output);
    context.exitCode = 0;
  });
  return command;
}

/** On Windows, refuses a private key that others may read or change, before it is read (POSIX checks are made as it is read). */
export async function checkPrivateKeyAccess(file: string, windows: WindowsHost | null): Promise<void> {
  if (windows === null) return;
  const [entry] = await windows.security([file]);
  if (entry === undefined || entry.kind === 'missing') return; // reading it reports the missing file
  checkPrivateKeySecurity(entry, await windows.identity());
}
