import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { isoCBOR } from '@simplewebauthn/server/helpers';

/**
 * A software authenticator that makes real WebAuthn responses (ES256, "none" attestation) for the tests of the
 * server side: what a browser would send after navigator.credentials.create / get, built byte by byte as the
 * specification lays them out, so that the library verifies them exactly as it verifies a browser's.
 */
export class SoftAuthenticator {
  readonly credentialId = randomBytes(16);
  private readonly keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  counter = 0;

  constructor(
    readonly origin: string,
    readonly rpId: string,
    readonly options: { userVerified?: boolean; synced?: boolean } = {},
  ) {}

  get id(): string {
    return this.credentialId.toString('base64url');
  }

  /** The response to registration options (as the service answered them). */
  register(options: { challenge: string }, overrides: { origin?: string; rpId?: string } = {}) {
    const clientDataJSON = this.clientData('webauthn.create', options.challenge, overrides.origin);
    const attestationObject = isoCBOR.encode(
      new Map<string, unknown>([
        ['fmt', 'none'],
        ['attStmt', new Map()],
        ['authData', this.authenticatorData(overrides.rpId, true)],
      ]) as never,
    );
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key' as const,
      response: { clientDataJSON, attestationObject: Buffer.from(attestationObject).toString('base64url'), transports: ['internal'] },
      clientExtensionResults: {},
    };
  }

  /** The response to sign-in options; the counter moves on unless `counter` says where it is. */
  authenticate(options: { challenge: string }, overrides: { origin?: string; rpId?: string; counter?: number } = {}) {
    this.counter = overrides.counter ?? this.counter + 1;
    const clientDataJSON = this.clientData('webauthn.get', options.challenge, overrides.origin);
    const authenticatorData = this.authenticatorData(overrides.rpId, false);
    const signed = Buffer.concat([authenticatorData, createHash('sha256').update(Buffer.from(clientDataJSON, 'base64url')).digest()]);
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key' as const,
      response: {
        clientDataJSON,
        authenticatorData: authenticatorData.toString('base64url'),
        // ECDSA over SHA-256, DER-encoded, as authenticators sign.
        signature: sign('sha256', signed, this.keys.privateKey).toString('base64url'),
      },
      clientExtensionResults: {},
    };
  }

  private clientData(type: string, challenge: string, origin = this.origin): string {
    return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false })).toString('base64url');
  }

  /** rpIdHash, flags, signature counter and, at registration, the credential with its COSE public key. */
  private authenticatorData(rpId = this.rpId, attested: boolean): Buffer {
    const flags =
      0x01 | // user present
      (this.options.userVerified === false ? 0 : 0x04) |
      (this.options.synced ? 0x08 | 0x10 : 0) | // backup eligible, backed up
      (attested ? 0x40 : 0);
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(this.counter);
    const parts = [createHash('sha256').update(rpId).digest(), Buffer.from([flags]), counter];
    if (attested) {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(this.credentialId.length);
      parts.push(Buffer.alloc(16), length, this.credentialId, Buffer.from(this.coseKey()));
    }
    return Buffer.concat(parts);
  }

  private coseKey(): Uint8Array {
    const jwk = this.keys.publicKey.export({ format: 'jwk' });
    return isoCBOR.encode(
      new Map<number, unknown>([
        [1, 2], // kty: EC2
        [3, -7], // alg: ES256
        [-1, 1], // crv: P-256
        [-2, new Uint8Array(Buffer.from(jwk.x!, 'base64url'))],
        [-3, new Uint8Array(Buffer.from(jwk.y!, 'base64url'))],
      ]) as never,
    );
  }
}
