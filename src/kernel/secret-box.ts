import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Encryption at rest for the secrets the service must be able to read back (TOTP secrets): AES-256-GCM under
 * the operator's SECRETS_ENCRYPTION_KEY. Each ciphertext is stored with the id of the key that sealed it, so a
 * new key can be put first while the old ones still open what they sealed, until `secrets:reencrypt` has moved
 * everything to the new one. A key's id is derived from the key itself: nothing to configure, nothing to get wrong.
 */
export interface SecretKey {
  id: string;
  key: Buffer;
}

const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export function secretKeyId(key: Buffer): string {
  return createHash('sha256').update('user-auth secrets key id\0').update(key).digest('hex').slice(0, 16);
}

/** 32 bytes as base64 (standard or url-safe) or hex; undefined for anything else. */
export function decodeSecretKey(text: string): Buffer | undefined {
  const trimmed = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return Buffer.from(trimmed, 'hex');
  if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)) return undefined;
  const key = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return key.length === KEY_BYTES ? key : undefined;
}

export function newSecretKey(): SecretKey {
  const key = randomBytes(KEY_BYTES);
  return { id: secretKeyId(key), key };
}

export class SecretBox {
  private readonly byId: Map<string, Buffer>;

  /** `keys[0]` seals; every one of them opens. */
  constructor(private readonly keys: readonly SecretKey[]) {
    if (keys.length === 0) throw new Error('SecretBox needs at least one key');
    this.byId = new Map(keys.map((k) => [k.id, k.key]));
  }

  get currentKeyId(): string {
    return this.keys[0]!.id;
  }

  /**
   * A key of its own for another use (`purpose` names it), derived from the current key with HKDF-SHA-256: the
   * same for every instance with the same key, and telling nothing about the key it came from.
   */
  deriveKey(purpose: string): Buffer {
    return Buffer.from(hkdfSync('sha256', this.keys[0]!.key, Buffer.alloc(0), `user-auth ${purpose}`, KEY_BYTES));
  }

  /** `context` is bound to the ciphertext (GCM's associated data): the row it belongs to. */
  seal(plaintext: Buffer, context: string): { sealed: Buffer; keyId: string } {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keys[0]!.key, nonce);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return { sealed: Buffer.concat([nonce, cipher.getAuthTag(), body]), keyId: this.currentKeyId };
  }

  /** Throws if the key is not configured or the ciphertext, its context or its key id was tampered with. */
  open(sealed: Buffer, keyId: string, context: string): Buffer {
    const key = this.byId.get(keyId);
    if (!key) throw new Error(`no configured SECRETS_ENCRYPTION_KEY has the id ${keyId}`);
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, NONCE_BYTES));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(sealed.subarray(NONCE_BYTES, NONCE_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(sealed.subarray(NONCE_BYTES + TAG_BYTES)), decipher.final()]);
  }
}
