import { ServiceError } from '../../kernel/errors.js';

/** The most either metadata object may weigh, as JSON in UTF-8. */
export const METADATA_MAX_BYTES = 4096;
/** Objects and arrays nested at most this deep, the metadata object itself being the first. */
export const METADATA_MAX_DEPTH = 5;
const KEY_MAX_LENGTH = 64;

// Control characters, in keys: they hide in logs and in the tools that show metadata to operators.
const CONTROL = /[\u0000-\u001F\u007F-\u009F]/;
// PostgreSQL's jsonb cannot hold NUL, nor half a UTF-16 pair: refused here rather than by the database.
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function refuse(field: string, why: string): never {
  throw new ServiceError('invalid_request', `${field} ${why}`);
}

/**
 * `user_metadata` or `app_metadata` as a request sent it: a JSON object of at most METADATA_MAX_BYTES, nested at
 * most METADATA_MAX_DEPTH deep, whose keys are 1 to 64 characters without control characters. Returns it, or
 * refuses with invalid_request naming the field and the rule.
 */
export function checkMetadata(field: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) refuse(field, 'must be a JSON object');
  const visit = (node: unknown, depth: number): void => {
    if (typeof node === 'string') {
      if (UNSTORABLE.test(node)) refuse(field, 'holds a string with a NUL character or half a surrogate pair');
      return;
    }
    // 1e400 parses as Infinity, which JSON would store as null: refused rather than changed behind the client's back.
    if (typeof node === 'number' && !Number.isFinite(node)) refuse(field, 'holds a number too large to keep');
    if (typeof node !== 'object' || node === null) return;
    if (depth > METADATA_MAX_DEPTH) refuse(field, `is nested more than ${METADATA_MAX_DEPTH} levels deep`);
    if (Array.isArray(node)) {
      for (const item of node) visit(item, depth + 1);
      return;
    }
    for (const [key, item] of Object.entries(node)) {
      if (key.length === 0 || key.length > KEY_MAX_LENGTH) refuse(field, `has a key that is not 1 to ${KEY_MAX_LENGTH} characters long`);
      if (CONTROL.test(key) || UNSTORABLE.test(key)) refuse(field, 'has a key with a control character');
      visit(item, depth + 1);
    }
  };
  visit(value, 1);
  if (Buffer.byteLength(JSON.stringify(value), 'utf8') > METADATA_MAX_BYTES) refuse(field, `is larger than ${METADATA_MAX_BYTES} bytes as JSON`);
  return value as Record<string, unknown>;
}
