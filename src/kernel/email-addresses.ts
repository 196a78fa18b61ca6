import { domainToASCII } from 'node:url';
import { ServiceError } from './errors.js';

/** An address as the service keeps it, and its unique key. */
export interface EmailAddress {
  /** Trimmed, the domain in lower case and IDNA-encoded (`xn--`): what messages are sent to and what is shown. */
  address: string;
  /** The whole address in lower case: one account per proven address, whatever the case it was typed in. */
  normalized: string;
}

// RFC 5321's limits: the local part, a domain, a whole path.
const LOCAL_MAX_LENGTH = 64;
const DOMAIN_MAX_LENGTH = 253;
const ADDRESS_MAX_LENGTH = 254;
export const EMAIL_MAX_LENGTH = ADDRESS_MAX_LENGTH;

// RFC 5322's dot-atom: no quoted local parts, comments or address literals, which no sign-up needs and many mail
// systems mishandle. ASCII only: a UTF-8 local part needs SMTPUTF8, which a relay may not offer, and a message that
// can never be sent would wait out its day of retries.
const LOCAL_PART = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function invalidEmail(message: string): ServiceError {
  return new ServiceError('invalid_email', message);
}

/**
 * Reads an address as typed: trimmed, its domain lower-cased and IDNA-encoded (Bücher.example becomes
 * xn--bcher-kva.example), the local part kept as typed. Refuses anything else with `400 invalid_email`.
 */
export function parseEmailAddress(input: string): EmailAddress {
  const trimmed = input.trim();
  const at = trimmed.lastIndexOf('@');
  if (at <= 0 || at === trimmed.length - 1) throw invalidEmail('The email address must look like name@example.com');
  const local = trimmed.slice(0, at);
  if (local.length > LOCAL_MAX_LENGTH || !LOCAL_PART.test(local)) {
    throw invalidEmail('The part of the email address before @ may hold letters, digits, dots (not two in a row, nor first or last) and !#$%&\'*+/=?^_`{|}~-');
  }
  const domain = domainToASCII(trimmed.slice(at + 1));
  const labels = domain.split('.');
  if (
    domain === '' ||
    domain.length > DOMAIN_MAX_LENGTH ||
    labels.length < 2 ||
    !labels.every((label) => LABEL.test(label)) ||
    /^[0-9]+$/.test(labels.at(-1)!)
  ) {
    throw invalidEmail('The domain of the email address is not one mail can be sent to, such as example.com');
  }
  const address = `${local}@${domain}`;
  if (address.length > ADDRESS_MAX_LENGTH) throw invalidEmail(`The email address is longer than ${ADDRESS_MAX_LENGTH} characters`);
  return { address, normalized: address.toLowerCase() };
}

