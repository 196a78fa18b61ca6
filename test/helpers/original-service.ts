import { pbkdf2Sync } from 'node:crypto';

const werkzeugPbkdf2 = (password: string, salt: string) =>
  `pbkdf2:sha256:1000$${salt}$${pbkdf2Sync(password, salt, 1000, 32, 'sha256').toString('hex')}`;

/**
 * The original Flask service's schema.sql, and rows as it wrote them (Werkzeug hashes): 'Bob' and 'bob' were
 * two accounts there (it compared case-sensitively), and it accepted a space in a name.
 */
export const ORIGINAL_SCHEMA = `
  CREATE TABLE users (id SERIAL PRIMARY KEY, username VARCHAR(50) NOT NULL UNIQUE, password VARCHAR(255) NOT NULL);
  INSERT INTO users (username, password) VALUES
    ('alice', '${werkzeugPbkdf2('alice password', 'aB3dE5gH7jK9mN1p')}'),
    ('Bob', '${werkzeugPbkdf2('bob password', 'qR2sT4uV6wX8yZ0a')}'),
    ('bob', '${werkzeugPbkdf2('other bob password', 'cD1eF3gH5iJ7kL9m')}'),
    ('john doe', '${werkzeugPbkdf2('john password', 'eF5gH7iJ9kL1mN3o')}');
`;
