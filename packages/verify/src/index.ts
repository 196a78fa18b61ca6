export { createVerifier, ASYMMETRIC_ALGORITHMS, type IntrospectionOptions, type Verifier, type VerifierOptions } from './verifier.js';
export {
  assuranceLevel,
  maxAuthAge,
  policiesOf,
  requireAal,
  requireRoles,
  type AccessClaims,
  type AccessRequirement,
  type Policy,
} from './policies.js';
export {
  errorAnswer,
  isVerifyError,
  VERIFY_ERRORS,
  VerifyError,
  type Challenge,
  type ErrorAnswer,
  type VerifyErrorCode,
  type VerifyErrorOptions,
} from './errors.js';
