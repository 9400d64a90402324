// Stand-ins for your key management: AES-256-GCM with two keys, version 1 (old) and 2 (new).
// A real app would fetch the keys from its KMS; the point here is the backfill around them.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

const KEYS: Record<number, Buffer> = {
  1: createHash("sha256").update("superspreader quickstart: the old key").digest(),
  2: createHash("sha256").update("superspreader quickstart: the new key").digest(),
};

function keyOf(version: number): Buffer {
  const key = KEYS[version];
  if (!key) throw new Error(`no key version ${version}`);
  return key;
}

/**
 * Encrypts with key `version`; the result is base64 of iv (12 bytes), tag (16) and ciphertext.
 *
 * @example
 * ```ts
 * decrypt(encrypt("hello", 1), 1); // "hello"
 * ```
 */
export function encrypt(plain: string, version: number): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", keyOf(version), iv);
  const data = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), data]).toString("base64");
}

/**
 * Decrypts what {@link encrypt} wrote with key `version`; throws if it was another key.
 *
 * @example
 * ```ts
 * decrypt(encrypt("hello", 2), 2); // "hello"
 * ```
 */
export function decrypt(body: string, version: number): string {
  const raw = Buffer.from(body, "base64");
  const decipher = createDecipheriv("aes-256-gcm", keyOf(version), raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(12, 28));
  return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8");
}
