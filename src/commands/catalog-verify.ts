/** `exmit catalog verify FILE`: check a catalog file and its signature FILE.sig. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import type { RunContext } from '../context.ts';
import { addCommonOptions, engineOptions, readCommonOptions, type CommonOptions, type RawCommon } from '../options.ts';
import { inputError } from '../errors.ts';
import { collectRepeated, readBounded } from './read-bounded.ts';

/** `verify`'s raw options as commander hands them over. */
export interface RawVerifyOptions extends RawCommon {
  trust?: string[];
  allowExpired?: boolean;
}

/** `verify FILE` options after validation. */
export interface VerifyOptions {
  common: CommonOptions;
  file: string;
  trust: string[];
  allowExpired: boolean;
}

/** Validates `verify`'s options. */
export function readVerifyOptions(file: string, raw: RawVerifyOptions): VerifyOptions {
  return { common: readCommonOptions(raw), file: path.resolve(file), trust: raw.trust ?? [], allowExpired: raw.allowExpired === true };
}

/** The `catalog verify` command. */
export function catalogVerifyCommand(context: RunContext): Command {
  const command = new Command('verify')
    .description('check a catalog file and its signature (FILE.sig): signature, trusted key, schema, exmit version, expiry and serial')
    .argument('<file>', 'catalog XML file; its signature is FILE.sig')
    .option('--trust <pubfile>', 'also trust this public key file (repeatable)', collectRepeated, [])
    .option('--allow-expired', 'accept an expired catalog');
  addCommonOptions(command, { target: false, catalog: false, stateDir: true }).action(async (file: string, raw: RawVerifyOptions) => {
    const options = readVerifyOptions(file, raw);
    const [{ createUi }, { printJson, printText }, { MAX_CATALOG_BYTES }, { readCheckedConfig }, { readCache }, { resolveStateDir }, { readTrustFiles }, { withLazyEngine }, { windowsHostFor }, { mergeTrustedKeys }, { previousFor }, { isExpired, verifyCatalog }] = await Promise.all([
      import('../ui.ts'),
      import('../output.ts'),
      import('../catalog/parse.ts'),
      import('../state/config.ts'),
      import('../state/cache.ts'),
      import('../state/paths.ts'),
      import('../trust/files.ts'),
      import('../powershell/door.ts'),
      import('../powershell/windows-host.ts'),
      import('../trust/keys.ts'),
      import('../trust/update.ts'),
      import('../trust/verify.ts'),
    ]);
    const ui = createUi(options.common, context.output);
    const stateDir = resolveStateDir(options.common.stateDir);
    const config = await withLazyEngine(() => context.startEngine(engineOptions(options.common, ui)), (engine) => readCheckedConfig(stateDir, windowsHostFor(engine)));
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
    if (options.common.json) printJson(result, context.output);
    else printText(`${ui.ok('valid')}: ${result.file}\n  serial ${result.serial}, published ${result.published}, expires ${result.expires}${result.expired ? ui.warn(' (expired)') : ''}, requires exmit ${result.requires}\n  signed by key ${result.keyId}${result.keyName === null ? '' : ` (${result.keyName})`}; ${result.mitigationCount} mitigations`, context.output);
    context.exitCode = 0;
  });
  return command;
}
