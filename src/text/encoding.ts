/**
 * Bytes to text and back, byte-exact: a file's encoding (UTF-8, UTF-16LE/BE), whether it had a BOM
 * and its newline style are kept, so that a file exmit rewrites keeps its shape.
 */
import { createHash } from 'node:crypto';

/** How a text file is written: what decodeText found and encodeText writes. */
export interface TextFormat {
  encoding: 'utf-8' | 'utf-16le' | 'utf-16be';
  bom: boolean;
  /** The newline style: one kind throughout, both, or no newline at all. */
  newline: '\r\n' | '\n' | 'mixed' | 'none';
}

/** A decoded file: its text (BOM removed, newlines as they were) and its format. */
export interface DecodedText extends TextFormat {
  text: string;
}

/**
 * Decodes a file's bytes: UTF-16LE/BE or UTF-8 by BOM, UTF-16LE without a BOM when it starts with
 * "<" and a zero byte (as the engine did), else UTF-8.
 */
export function decodeText(bytes: Uint8Array): DecodedText {
  const length = bytes.length;
  let encoding: TextFormat['encoding'] = 'utf-8';
  let bom = false;
  if (length >= 2 && bytes[0] === 0xff && bytes[1] === 0xfe) {
    encoding = 'utf-16le';
    bom = true;
  } else if (length >= 2 && bytes[0] === 0xfe && bytes[1] === 0xff) {
    encoding = 'utf-16be';
    bom = true;
  } else if (length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    bom = true;
  } else if (length >= 4 && bytes[0] === 0x3c && bytes[1] === 0x00 && bytes[2] !== 0x00 && bytes[3] === 0x00) {
    encoding = 'utf-16le';
  }
  const text = new TextDecoder(encoding, { ignoreBOM: true }).decode(bytes.subarray(bom ? (encoding === 'utf-8' ? 3 : 2) : 0));
  return { text, encoding, bom, newline: newlineOf(text) };
}

/** The newline style of a text. */
export function newlineOf(text: string): TextFormat['newline'] {
  const crlf = (text.match(/\r\n/g) ?? []).length;
  const lf = (text.match(/\n/g) ?? []).length - crlf;
  if (crlf === 0 && lf === 0) return 'none';
  if (lf === 0) return '\r\n';
  if (crlf === 0) return '\n';
  return 'mixed';
}

/**
 * Encodes text in a format. Newlines are written as they are in the text; for a single-style format,
 * lone "\n" or "\r\n" are first brought to that style (text changed by exmit keeps the file's style).
 */
export function encodeText(text: string, format: TextFormat): Uint8Array {
  let body = text;
  if (format.newline === '\r\n') body = body.replace(/\r?\n/g, '\r\n');
  else if (format.newline === '\n') body = body.replace(/\r\n/g, '\n');
  const bomBytes = !format.bom ? [] : format.encoding === 'utf-8' ? [0xef, 0xbb, 0xbf] : format.encoding === 'utf-16le' ? [0xff, 0xfe] : [0xfe, 0xff];
  let encoded: Uint8Array;
  if (format.encoding === 'utf-8') {
    encoded = new TextEncoder().encode(body);
  } else {
    encoded = new Uint8Array(body.length * 2);
    const big = format.encoding === 'utf-16be';
    for (let i = 0; i < body.length; i++) {
      const unit = body.charCodeAt(i);
      encoded[i * 2 + (big ? 1 : 0)] = unit & 0xff;
      encoded[i * 2 + (big ? 0 : 1)] = unit >> 8;
    }
  }
  const out = new Uint8Array(bomBytes.length + encoded.length);
  out.set(bomBytes, 0);
  out.set(encoded, bomBytes.length);
  return out;
}

/** Lower-case hex SHA-256 of bytes. */
export function sha256Of(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
