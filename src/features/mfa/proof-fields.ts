import { Type } from 'typebox';
import { OptionalText } from '../../kernel/http/schemas.js';
import type { Proof } from './reauthentication.js';

/**
 * What a sensitive request may bring to prove its caller is the account's owner (see `Reauthentication`): the
 * current password and, on an account with a second factor, a code or a recovery code.
 */
export const ProofFields = {
  current_password: OptionalText,
  code: Type.Optional(Type.Union([Type.String({ maxLength: 32 }), Type.Null()], { description: 'With `current_password`, on an account with a second factor' })),
  recovery_code: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
};

/** The fields of `ProofFields` as `Reauthentication` reads them. */
export function proofOf(body: { current_password?: string | null; code?: string | null; recovery_code?: string | null }): Proof {
  return { currentPassword: body.current_password ?? undefined, code: body.code ?? undefined, recoveryCode: body.recovery_code ?? undefined };
}
