import { generateSecret, verify } from 'otplib';

/**
 * TOTP as authenticator apps implement it (RFC 6238): HMAC-SHA-1, 6 digits, 30-second steps. A code is accepted
 * one step either side of now, for clocks that drift and codes typed just as they change.
 */
export const TOTP = { algorithm: 'sha1', digits: 6, period: 30 } as const;
const TOLERANCE_SECONDS = TOTP.period;
// 160 bits, the size RFC 4226 recommends and the apps expect.
const SECRET_BYTES = 20;

export function newTotpSecret(): string {
  return generateSecret({ length: SECRET_BYTES });
}

/**
 * The `otpauth://` URI of Google Authenticator's Key Uri Format: the label is `issuer:account` with each part
 * percent-encoded (an issuer with a port, `localhost:5000`, must not split the label at its own colon), and the
 * parameters say everything an app needs (issuer, algorithm, digits, period), not only the secret.
 */
export function totpUri(options: { secret: string; issuer: string; account: string }): string {
  const label = `${encodeURIComponent(options.issuer)}:${encodeURIComponent(options.account)}`;
  const parameters = new URLSearchParams({
    secret: options.secret,
    issuer: options.issuer,
    algorithm: TOTP.algorithm.toUpperCase(),
    digits: String(TOTP.digits),
    period: String(TOTP.period),
  });
  return `otpauth://totp/${label}?${parameters.toString().replace(/\+/g, '%20')}`;
}

/**
 * The RFC 6238 time step whose code `code` is, within the tolerance around `now`; undefined if none. The
 * comparison is constant-time (otplib's). The caller decides whether that step may still be used.
 */
export async function matchingStep(secret: string, code: string, now = Date.now()): Promise<number | undefined> {
  const token = code.replace(/\s/g, '');
  if (!/^\d{6}$/.test(token)) return undefined;
  const result = await verify({ secret, token, epoch: Math.floor(now / 1000), epochTolerance: TOLERANCE_SECONDS, ...TOTP });
  return result.valid && 'timeStep' in result ? result.timeStep : undefined;
}
