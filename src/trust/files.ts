/** Key files on disk: --trust public keys, keygen's key pair, and the private key that sign reads (owner-only). */
import { closeSync, constants, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { createPublicKey, type KeyObject } from 'node:crypto';
import path from 'node:path';
import { inputError } from '../errors.ts';
import { currentRunner, type Runner } from '../state/secure.ts';
import { formatPublicKeyFile, generateKeyPair, parsePrivateKey, parsePublicKeyFile, type TrustedKey } from './keys.ts';

const MAX_KEY_FILE_BYTES = 16 * 1024;

function readSmallFile(file: string, what: string): Buffer {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (error) {
    throw inputError(`${what} ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, 'Check the path.');
  }
  try {
    const size = fstatSync(fd).size;
    if (size > MAX_KEY_FILE_BYTES) throw inputError(`${what} ${file} is too large to be a key file`);
    const buffer = Buffer.alloc(size);
    const n = size === 0 ? 0 : readSync(fd, buffer, 0, size, 0);
    return buffer.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** Reads --trust PUBFILE files into trusted keys. */
export function readTrustFiles(files: readonly string[]): TrustedKey[] {
  return files.map((file) => parsePublicKeyFile(readSmallFile(file, 'public key file').toString('utf8').replace(/^\uFEFF/, ''), file));
}

/** A private key read for signing, with its public half. */
export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/** Reads a private key, refusing one that group or others may read or that another user owns (POSIX; on Windows the caller checks the ACL first). */
export function readPrivateKeyFile(file: string, runner: Runner = currentRunner()): SigningKey {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY);
  } catch (error) {
    throw inputError(`private key ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, 'Check the path given to --key.');
  }
  let text: string;
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw inputError(`private key ${file} is not a file`);
    if (runner.platform !== 'win32') {
      if (stats.uid !== runner.uid) throw inputError(`private key ${file} is owned by uid ${stats.uid}, not by you (uid ${runner.uid}): refused`, `If it is yours, run: chown ${runner.uid} "${file}"`);
      if ((stats.mode & 0o077) !== 0) throw inputError(`private key ${file} can be read or written by group or others (mode ${(stats.mode & 0o777).toString(8)}): refused`, `Run: chmod 600 "${file}", and consider the key exposed if others could read it.`);
    }
    if (stats.size > MAX_KEY_FILE_BYTES) throw inputError(`private key ${file} is too large to be a key file`);
    const buffer = Buffer.alloc(stats.size);
    const n = stats.size === 0 ? 0 : readSync(fd, buffer, 0, stats.size, 0);
    text = buffer.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
  const privateKey = parsePrivateKey(text, file);
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/** Where keygen wrote the pair. */
export interface KeyPairFiles {
  keyId: string;
  privateKeyFile: string;
  publicKeyFile: string;
}

/** Writes a new private key file (never over an existing one) readable by its user only. */
export type PrivateKeyWriter = (file: string, pem: string) => Promise<void>;

/** The POSIX writer: mode 0600 from creation. */
export const writePrivateKeyPosix: PrivateKeyWriter = async (file, pem) => writeNew(file, pem, 0o600);

/**
 * Makes a key pair and writes NAME.key (through `writePrivate`: owner-only from creation, never over
 * an existing file) and NAME.pub into dir.
 */
export async function writeKeyPair(dir: string, name: string, writePrivate: PrivateKeyWriter = writePrivateKeyPosix): Promise<KeyPairFiles> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw inputError(`--name "${name}" is not a plain file name`, 'Use letters, digits, dot, dash and underscore, as in contoso-feed-2026.');
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw inputError(`--out ${dir} cannot be created: ${(error as Error).message}`);
  }
  const pair = generateKeyPair();
  const privateKeyFile = path.join(dir, `${name}.key`);
  const publicKeyFile = path.join(dir, `${name}.pub`);
  for (const file of [privateKeyFile, publicKeyFile]) {
    if (existsSync(file)) throw inputError(`${file} already exists: refused to overwrite a key`, 'Choose another --out folder or --name.');
  }
  await writePrivate(privateKeyFile, pair.privatePem);
  writeNew(publicKeyFile, formatPublicKeyFile(pair.keyId, pair.publicKey, name), 0o644);
  return { keyId: pair.keyId, privateKeyFile, publicKeyFile };
}

function writeNew(file: string, text: string, mode: number): void {
  let fd: number;
  try {
    fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw inputError(`${file} already exists: refused to overwrite a key`, 'Choose another --out folder or --name.');
    throw inputError(`cannot write ${file}: ${(error as Error).message}`);
  }
  try {
    const bytes = Buffer.from(text, 'utf8');
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
  } finally {
    closeSync(fd);
  }
}

/** Reads a small text file given on the command line (--ca). */
export function readTextFile(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw inputError(`${what} ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, 'Check the path.');
  }
}
