import { pbkdf2, scrypt, timingSafeEqual, type BinaryLike, type ScryptOptions } from 'node:crypto';
import { promisify } from 'node:util';
import { verify as bcryptVerify } from '@node-rs/bcrypt';

/**
 * Password hashes written by other systems, verified so their users can sign in without a reset and be moved
 * to argon2id: the original service's Werkzeug formats, and bcrypt. Each runs off the event loop's thread
 * (Node's crypto and @node-rs/bcrypt use the libuv thread pool) and compares in constant time.
 */

const pbkdf2Async = promisify(pbkdf2);
const scryptAsync = promisify(scrypt) as (password: BinaryLike, salt: BinaryLike, keylen: number, options: ScryptOptions) => Promise<Buffer>;

// Bounds on the cost a stored hash may ask for, so a corrupt or planted row cannot stall the service.
const MAX_PBKDF2_ITERATIONS = 10_000_000;
const MAX_SCRYPT_MEMORY_BYTES = 256 * 1024 * 1024;
const PBKDF2_DIGESTS = new Set(['sha1', 'sha224', 'sha256', 'sha384', 'sha512']);

// Werkzeug: `pbkdf2:<digest>:<iterations>$<salt>$<hex>` and `scrypt:<N>:<r>:<p>$<salt>$<hex>`; the salt is
// the literal text between the `$`s, used as UTF-8 bytes.
const WERKZEUG_PBKDF2 = /^pbkdf2:([a-z0-9]+):(\d{1,9})\$([^$]+)\$([0-9a-f]+)$/;
const WERKZEUG_SCRYPT = /^scrypt:(\d{1,9}):(\d{1,3}):(\d{1,3})\$([^$]+)\$([0-9a-f]+)$/;
const BCRYPT = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;

export function isLegacyHash(stored: string): boolean {
  return WERKZEUG_PBKDF2.test(stored) || WERKZEUG_SCRYPT.test(stored) || BCRYPT.test(stored);
}

/** True if `password`, exactly as typed (the old systems did not normalise it), matches the legacy hash. */
export async function verifyLegacyHash(stored: string, password: string): Promise<boolean> {
  const pbkdf2Match = WERKZEUG_PBKDF2.exec(stored);
  if (pbkdf2Match) {
    const [, digest, iterationsText, salt, hex] = pbkdf2Match;
    const iterations = Number(iterationsText);
    if (!PBKDF2_DIGESTS.has(digest!) || iterations < 1 || iterations > MAX_PBKDF2_ITERATIONS || hex!.length % 2 !== 0) return false;
    const expected = Buffer.from(hex!, 'hex');
    const actual = await pbkdf2Async(Buffer.from(password, 'utf8'), Buffer.from(salt!, 'utf8'), iterations, expected.length, digest!);
    return timingSafeEqual(actual, expected);
  }
  const scryptMatch = WERKZEUG_SCRYPT.exec(stored);
  if (scryptMatch) {
    const [, nText, rText, pText, salt, hex] = scryptMatch;
    const [N, r, p] = [Number(nText), Number(rText), Number(pText)];
    const memory = 128 * N * r * p;
    if (N < 2 || (N & (N - 1)) !== 0 || r < 1 || p < 1 || memory > MAX_SCRYPT_MEMORY_BYTES || hex!.length % 2 !== 0) return false;
    const expected = Buffer.from(hex!, 'hex');
    const actual = await scryptAsync(Buffer.from(password, 'utf8'), Buffer.from(salt!, 'utf8'), expected.length, {
      N,
      r,
      p,
      maxmem: memory + 1024 * 1024,
    });
    return timingSafeEqual(actual, expected);
  }
  if (BCRYPT.test(stored)) return bcryptVerify(password, stored);
  return false;
}
