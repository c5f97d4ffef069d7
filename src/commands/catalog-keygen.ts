/** `exmit catalog keygen`: make an Ed25519 signing key pair. */
import path from 'node:path';
import { Command } from 'commander';
import type { RunContext } from '../context.ts';
import { addCommonOptions, engineOptions, readCommonOptions, type CommonOptions, type RawCommon } from '../options.ts';
import { inputError } from '../errors.ts';
import { writePrivateKeyPosix, type PrivateKeyWriter } from '../trust/files.ts';
import { privateKeySddl, type WindowsHost } from '../state/windows-acl.ts';

/** `keygen`'s raw options as commander hands them over. */
export interface RawKeygenOptions extends RawCommon {
  out: string;
  name: string;
}

/** `keygen` options after validation. */
export interface KeygenOptions {
  common: CommonOptions;
  out: string;
  name: string;
}

/** Validates `keygen`'s options. */
export function readKeygenOptions(raw: RawKeygenOptions): KeygenOptions {
  return { common: readCommonOptions(raw), out: path.resolve(raw.out), name: raw.name };
}

/** The `catalog keygen` command. */
export function catalogKeygenCommand(context: RunContext): Command {
  const command = new Command('keygen')
    .description('make an Ed25519 signing key pair: DIR/NAME.key (owner-only) and DIR/NAME.pub (with its key id)')
    .requiredOption('--out <dir>', 'folder to write the key pair into')
    .option('--name <name>', 'file name of the pair, without extension', 'exmit-signing');
  addCommonOptions(command, { target: false, catalog: false, stateDir: false }).action(async (raw: RawKeygenOptions) => {
    const options = readKeygenOptions(raw);
    const [{ createUi }, { printJson, printText }, { writeKeyPair }, { withLazyEngine }, { windowsHostFor }] = await Promise.all([
      import('../ui.ts'),
      import('../output.ts'),
      import('../trust/files.ts'),
      import('../powershell/door.ts'),
      import('../powershell/windows-host.ts'),
    ]);
    const ui = createUi(options.common, context.output);
    const files = await withLazyEngine(() => context.startEngine(engineOptions(options.common, ui)), (engine) => writeKeyPair(options.out, options.name, privateKeyWriterFor(windowsHostFor(engine))));
    const result = { keyId: files.keyId, privateKey: files.privateKeyFile, publicKey: files.publicKeyFile };
    if (options.common.json) printJson(result, context.output);
    else printText(`${ui.ok('key pair made')}: key id ${result.keyId}\n  private key: ${result.privateKey} (keep it secret: it signs what servers will apply)\n  public key:  ${result.publicKey} (copy it to each server's trustedKeys)`, context.output);
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
