#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { MAX_ROLES } from './features/administration/roles.js';
import type { UserAdministration, UserListing } from './features/administration/operator-accounts.js';
import type { PasswordHasher } from './features/passwords/passwords.js';
import type { RekeyReport } from './kernel/usernames.js';
import type { Config } from './settings.js';
import type { Database } from './kernel/db/database.js';
import { isServiceError, ServiceError } from './kernel/errors.js';
import { compileEmbeddedDatabaseForQuickStart } from './kernel/db/quick-start.js';
import type { Events } from './kernel/events.js';
import type { Logger } from 'pino';
import type { AddressBook, EmailPayload } from './features/email/email.js';

// A command opens the database for a few statements, or a few thousand, and exits.
compileEmbeddedDatabaseForQuickStart();

/** `user-auth <command>` (the package's bin; `npm run cli -- <command>` in a checkout): operator tasks against the database the settings point at. */

interface Invocation {
  /** The command's arguments: every one its table marks as needed is there (and not empty). */
  positionals: string[];
  /** Its flags: every one its table marks as needed is there (and not empty). */
  flags: Record<string, string | boolean | undefined>;
}

interface Context {
  db: Database;
  config: Config;
  log: Logger;
  /** What a command's changes tell the webhooks: their deliveries are written with the changes, and sent by the service. */
  events: Events;
  /** What was applied just before a writing command ran. */
  appliedMigrations: number[];
  /** What keying the usernames by today's rules did just before a writing command ran. */
  usernames: RekeyReport;
}

type Task = (context: Context) => Promise<string>;

/** A positional argument: needed, unless it is the last and `upTo` says how many it may be. */
interface ArgumentSpec {
  /** As the usage shows it: `<name>`, or `[name ...]` when it may be left out. */
  name: string;
  /** What it is, in the refusal when it is missing: "a username". */
  what: string;
  /** It may be left out, or given up to this many times. */
  upTo?: number;
}

interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** A string flag's value, as the usage shows it. */
  value?: string;
  /** The flag is needed: its example in the refusal when it is missing ("--name <name>, e.g. --name ops-alice"). */
  needs?: string;
}

interface Command {
  help: string;
  /** Its arguments, in order; any more are refused. */
  arguments?: ArgumentSpec[];
  /** Its flags besides --help; any other flag is refused. */
  options?: Record<string, OptionSpec>;
  /**
   * `read`: changes nothing, the schema included, so it refuses a database that is not migrated.
   * `write`: applies pending migrations and keys the usernames by today's rules first, as the service does at start.
   */
  access: 'read' | 'write';
  /** Its answer names the accounts that keying parked; for the other writing commands they go to standard error. */
  reportsParked?: true;
  /** Checks the command line before any database is opened (a typo costs nothing), and returns the work. */
  prepare(invocation: Invocation): Task | Promise<Task>;
}

/** A flag the command does not know, or a value a flag cannot take: exit 2 with the command's usage. */
const usageError = (message: string) => new ServiceError('usage', message);
/** Something the command needs is missing. */
const missing = (message: string) => new ServiceError('invalid_request', message);

/**
 * Runs `task` with the user administration. The hashing threads (and the hashes each one does as it starts) are
 * only for a task that hashes a password: they start at its first hash, and stop when it is done. `writesMail`: the
 * task may write messages (an address set, a password changed), sealed with the secrets key.
 */
async function withAdministration<T>(context: Context, task: (admin: UserAdministration) => Promise<T>, writesMail = false): Promise<T> {
  const { config, db, events } = context;
  const [{ UserAdministration }, { PasswordPolicy }, { PasswordHasher }] = await Promise.all([
    import('./features/administration/operator-accounts.js'),
    import('./features/passwords/password-policy.js'),
    import('./features/passwords/passwords.js'),
  ]);
  let hasher: Promise<PasswordHasher> | undefined;
  const hashOnDemand = { hash: async (password: string) => (await (hasher ??= PasswordHasher.create(config.argon2, config.hashing))).hash(password) };
  try {
    const book = writesMail ? await addressBook(context) : undefined;
    return await task(new UserAdministration(db, hashOnDemand, new PasswordPolicy(config.passwordPolicy), events, book));
  } finally {
    // A hasher that failed to start has its error in the task's already.
    await hasher?.then((started) => started.close(), () => {});
  }
}

/**
 * With EMAIL_ENABLED, what writes addresses and their messages. The messages go into the outbox, which the running
 * service sends from (it looks for new rows every second); this process sends nothing itself.
 */
async function addressBook({ config, db, events, log }: Context): Promise<AddressBook | undefined> {
  if (!config.email) return undefined;
  const [{ openSecretBox }, { createLogger }, { AddressBook, EmailMessages }, { Outbox }] = await Promise.all([
    import('./secrets.js'),
    import('./startup.js'),
    import('./features/email/email.js'),
    import('./kernel/outbox/outbox.js'),
  ]);
  // Without the key the stored secrets need, the service would not start; the messages still go, their links unsealed
  // while they wait (and dropped once sent).
  // Its note on a development key is no concern of this command's answer.
  const box = await openSecretBox(db, config, createLogger({ ...config, logLevel: 'silent' })).catch((error: unknown) => {
    if (isServiceError(error, 'not_ready')) return undefined;
    throw error;
  });
  return new AddressBook(new EmailMessages(new Outbox(db, log), box), events, config.email);
}

/**
 * The password comes on standard input, never as an argument, where `ps` and shell history would keep it.
 * `example` is the command line the refusal of a terminal shows.
 */
async function passwordFromStdin(example: string): Promise<string> {
  if (process.stdin.isTTY) throw missing(`pipe the password on standard input, e.g. printf %s "$PASSWORD" | user-auth ${example}`);
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (password === '') throw missing('no password on standard input');
  return password;
}

const COMMANDS: Record<string, Command> = {
  migrate: {
    help: 'Apply pending database migrations (the service also does this at start).',
    access: 'write',
    reportsParked: true,
    prepare: () => async ({ appliedMigrations: applied, usernames }) =>
      [
        applied.length ? `applied ${applied.length} migration(s): ${applied.join(', ')}` : 'the database is up to date',
        ...parkedReport(usernames.parkedAs),
      ].join('\n'),
  },
  'user:create': {
    help: 'Create a user; the password is read from standard input. The API\'s username and password rules apply.',
    arguments: [{ name: 'username', what: 'a username' }],
    access: 'write',
    async prepare({ positionals: [username] }) {
      const password = await passwordFromStdin('user:create alice');
      return async (context) => {
        const user = await withAdministration(context, (admin) => admin.create(username!, password));
        return `created user ${user.id} ${user.username}`;
      };
    },
  },
  'user:delete': {
    help: 'Delete a user (a parked one by its parked name) and end all its sessions.',
    arguments: [{ name: 'username', what: 'a username' }],
    access: 'write',
    prepare({ positionals: [username] }) {
      return async (context) => {
        const user = await withAdministration(context, (admin) => admin.delete(username!));
        return `deleted user ${user.id} ${user.username}`;
      };
    },
  },
  'user:rename': {
    help: "Rename a user (a parked one by its parked name, as user:list shows it) under the API's username rules. Its sessions stay.",
    arguments: [
      { name: 'current-username', what: 'the current username' },
      { name: 'new-username', what: 'the new one' },
    ],
    access: 'write',
    prepare({ positionals: [current, next] }) {
      return async (context) => {
        const { from, user } = await withAdministration(context, (admin) => admin.rename(current!, next!));
        return `renamed user ${user.id} ${from} to ${user.username}`;
      };
    },
  },
  'user:set-password': {
    help: "Set a user's password, read from standard input (the API's password rules apply), and end all its sessions.",
    arguments: [{ name: 'username', what: 'a username' }],
    access: 'write',
    async prepare({ positionals: [username] }) {
      const password = await passwordFromStdin('user:set-password alice');
      return async (context) => {
        const done = await withAdministration(context, (admin) => admin.setPassword(username!, password));
        return `set the password of user ${done.user.id} ${done.listedAs}; ended ${done.endedSessions} session(s)`;
      };
    },
  },
  'user:mfa-reset': {
    help: "Remove a user's second factors and recovery codes (a lost phone): the password alone signs in again. Sessions stay.",
    arguments: [{ name: 'username', what: 'a username' }],
    access: 'write',
    prepare({ positionals: [username] }) {
      return async (context) => {
        const done = await withAdministration(context, (admin) => admin.resetSecondFactor(username!));
        return `removed ${done.removed} second factor(s) and the recovery codes of user ${done.user.id} ${done.listedAs}`;
      };
    },
  },
  'user:roles': {
    help: "Set a user's roles (none: clear them). Access tokens carry them as `roles` from their next refresh.",
    arguments: [
      { name: 'username', what: 'a username' },
      { name: 'role', what: 'the roles (none to clear them)', upTo: MAX_ROLES },
    ],
    access: 'write',
    prepare({ positionals: [username, ...roles] }) {
      return async (context) => {
        const done = await withAdministration(context, (admin) => admin.setRoles(username!, roles));
        return `roles of user ${done.user.id} ${done.listedAs}: ${done.roles.join(' ') || '(none)'}`;
      };
    },
  },
  'user:set-email': {
    help: "Set a user's email address (pending, and sent a verification link, unless --verified), or remove it with --remove.",
    arguments: [
      { name: 'username', what: 'a username' },
      { name: 'email', what: 'the address (or --remove)', upTo: 1 },
    ],
    options: { verified: { type: 'boolean' }, remove: { type: 'boolean' } },
    access: 'write',
    prepare({ positionals: [username, email], flags }) {
      if ((email === undefined) === !flags['remove']) throw usageError('give an address, or --remove (not both)');
      if (flags['remove'] && flags['verified']) throw usageError('--verified goes with an address, not with --remove');
      return async (context) => {
        const done = await withAdministration(context, (admin) => admin.setEmail(username!, email ?? null, flags['verified'] === true), true);
        const who = `user ${done.user.id} ${done.listedAs}`;
        if (!done.email) return `removed the email address of ${who}`;
        return done.email.verified
          ? `email address of ${who}: ${done.email.address} (verified)`
          : `email address of ${who}: ${done.email.address} (pending: a verification link waits in the outbox for the service to send it)`;
      };
    },
  },
  'email:outbox': {
    help: 'List the most recent messages (20 unless --limit says otherwise): when, what, to whom, and whether they went. Never their links or codes.',
    options: { limit: { type: 'string', value: 'N' } },
    access: 'read',
    prepare({ flags }) {
      const limit = flags['limit'] === undefined ? 20 : positiveInteger('--limit', flags['limit']);
      return async ({ db }) => {
        const [{ recentOutboxRows }, { EMAIL_TOPIC }] = await Promise.all([import('./kernel/outbox/outbox-queries.js'), import('./features/email/email.js')]);
        const rows = await recentOutboxRows(db, EMAIL_TOPIC, { limit });
        const at = (d: Date | null) => (d ? new Date(d).toISOString() : '-');
        return table(
          ['id', 'created', 'kind', 'to', 'state', 'attempts', 'finished', 'last error'],
          rows.map((row) => {
            const payload = row.payload as EmailPayload;
            return [row.id, at(row.created_at), payload.kind, payload.to, row.state, String(row.attempts), at(row.finished_at), row.last_error ?? ''];
          }),
        );
      };
    },
  },
  'secrets:reencrypt': {
    help: "Re-encrypt every second-factor secret and webhook endpoint's secret under the first key of SECRETS_ENCRYPTION_KEY (after putting a new key first).",
    access: 'write',
    prepare() {
      return async ({ db, config }) => {
        const keys = config.mfa.encryptionKeys;
        if (!keys) throw missing('secrets:reencrypt needs SECRETS_ENCRYPTION_KEY: the new key first, then the old ones, comma-separated');
        const [{ resealSecrets }, { resealEndpointSecrets }] = await Promise.all([import('./features/mfa/mfa.js'), import('./features/webhooks/webhooks.js')]);
        const factors = await resealSecrets(db, keys);
        const endpoints = await resealEndpointSecrets(db, keys);
        const resealed = factors.resealed + endpoints.resealed;
        const unreadable = factors.unreadable + endpoints.unreadable;
        if (unreadable > 0) {
          throw new ServiceError(
            'not_ready',
            `re-encrypted ${resealed} secret(s), but ${unreadable} are under keys SECRETS_ENCRYPTION_KEY does not hold: add those keys after the new one and run it again`,
          );
        }
        return `re-encrypted ${factors.resealed} second-factor secret(s) and ${endpoints.resealed} webhook secret(s) under key ${keys[0]!.id}`;
      };
    },
  },
  'user:list': {
    help: 'List users, oldest first (100 unless --limit says otherwise), with their live sessions, and the parked ones.',
    options: { limit: { type: 'string', value: 'N' } },
    access: 'read',
    prepare({ flags }) {
      const limit = flags['limit'] === undefined ? 100 : positiveInteger('--limit', flags['limit']);
      return async (context) => userListing(await withAdministration(context, (admin) => admin.list(limit)));
    },
  },
  'users:import': {
    help: "Copy the original Flask service's users (ids, names, password hashes) into this database. They sign in with their old passwords.",
    options: { from: { type: 'string', value: '<postgres-url>', needs: "postgres://user:password@host:5432/database (the original service's database)" } },
    access: 'write',
    prepare({ flags }) {
      const from = flags['from'];
      if (typeof from !== 'string' || !/^postgres(ql)?:\/\//.test(from)) throw usageError('--from needs a postgres:// URL');
      return async ({ db }) => {
        const { importOriginalUsers } = await import('./features/accounts/user-import.js');
        const report = await importOriginalUsers(db, from);
        const lines = [
          `imported ${report.imported.length + report.renamed.length} user(s); ${report.already_present.length} already present.`,
        ];
        if (report.renamed.length) {
          lines.push(`${report.renamed.length} name(s) already belonged to another account and were parked as <name>#<id> until renamed: ${report.renamed.join(', ')}`);
        }
        if (report.id_taken.length) lines.push(`skipped ${report.id_taken.length} whose id is another user's here: ${report.id_taken.join(', ')}`);
        lines.push(...parkedReport(report.parkedAs));
        return lines.join('\n');
      };
    },
  },
  'admin-keys:create': {
    help: 'Create an admin API key and print it (once: only its SHA-256 is kept). The name is the actor in the audit trail.',
    options: { name: { type: 'string', value: '<name>', needs: '<name>, e.g. --name ops-alice' } },
    access: 'write',
    prepare({ flags }) {
      const name = flags['name'] as string;
      return async ({ db }) => {
        const { AdminKeys } = await import('./features/administration/admin-keys.js');
        const { key, adminKey } = await new AdminKeys(db).create(name);
        return `${key}\n(admin key ${adminKey.name}: shown this once; send it as Authorization: Bearer <key> to /admin/...)`;
      };
    },
  },
  'clients:create': {
    help:
      'Register an app that signs users in through the service (an OpenID Connect client) and print its registration as ' +
      'POST /admin/clients answers it, with its client_secret (shown this once). Lists are space-separated.',
    options: {
      name: { type: 'string', value: '<name>' },
      'redirect-uris': { type: 'string', value: '"<uri> ..."' },
      'post-logout-redirect-uris': { type: 'string', value: '"<uri> ..."' },
      'grant-types': { type: 'string', value: '"<grant> ..."' },
      'auth-method': { type: 'string', value: '<client_secret_basic|client_secret_post|none>' },
      'backchannel-logout-uri': { type: 'string', value: '<uri>' },
      scope: { type: 'string', value: '"<scope> ..."' },
    },
    access: 'write',
    prepare({ flags }) {
      const list = (flag: string) => (typeof flags[flag] === 'string' ? (flags[flag] as string).split(/\s+/).filter((item) => item !== '') : undefined);
      const text = (flag: string) => (typeof flags[flag] === 'string' ? (flags[flag] as string) : undefined);
      return async ({ db, config }) => {
        const { ClientRegistry, clientBody } = await import('./features/oidc/oidc-clients.js');
        if (!config.oidc) throw new ServiceError('oidc_unavailable', 'the OpenID provider is off (OIDC_ENABLED=false, or JWT_SECRET_KEY is set): it has no clients');
        const registry = new ClientRegistry(db, { production: config.env === 'production', reservedIds: [config.jwt.audience] });
        const { client, secret } = await registry.register({
          client_name: text('name'),
          redirect_uris: list('redirect-uris'),
          post_logout_redirect_uris: list('post-logout-redirect-uris'),
          grant_types: list('grant-types'),
          token_endpoint_auth_method: text('auth-method'),
          backchannel_logout_uri: text('backchannel-logout-uri'),
          scope: text('scope'),
        });
        return JSON.stringify({ ...clientBody(client), ...(secret === undefined ? {} : { client_secret: secret, client_secret_expires_at: 0 }) });
      };
    },
  },
  'clients:list': {
    help: 'List the registered apps (OpenID Connect clients): id, name, grants, redirect URIs. Never their secrets.',
    access: 'read',
    prepare: () => async ({ db, config }) => {
      const { ClientRegistry } = await import('./features/oidc/oidc-clients.js');
      const registry = new ClientRegistry(db, { production: config.env === 'production', reservedIds: [config.jwt.audience] });
      const clients = await registry.list();
      return table(['client_id', 'name', 'grant types', 'redirect uris'], clients.map((c) => [c.clientId, c.clientName ?? '-', c.grantTypes.join(' '), c.redirectUris.join(' ') || '-']));
    },
  },
  'admin-keys:list': {
    help: 'List admin API keys: name, created, last used, revoked.',
    access: 'read',
    prepare: () => async ({ db }) => {
      const { AdminKeys } = await import('./features/administration/admin-keys.js');
      const keys = await new AdminKeys(db).list();
      const at = (d: Date | null) => d?.toISOString() ?? '-';
      return table(['name', 'created', 'last used', 'revoked'], keys.map((k) => [k.name, at(k.createdAt), at(k.lastUsedAt), at(k.revokedAt)]));
    },
  },
  'admin-keys:revoke': {
    help: 'Revoke the live admin key of this name: refused from the next request on.',
    arguments: [{ name: 'name', what: 'the name of the key (see admin-keys:list)' }],
    access: 'write',
    prepare({ positionals: [name] }) {
      return async ({ db }) => {
        const { AdminKeys } = await import('./features/administration/admin-keys.js');
        await new AdminKeys(db).revoke(name!);
        return `revoked admin key ${name}`;
      };
    },
  },
  'webhooks:create': {
    help: 'Create a webhook endpoint (as POST /admin/webhooks does) and print its id and signing secret (once).',
    options: {
      url: { type: 'string', value: '<url>', needs: '<url>, e.g. --url https://hooks.example.com/auth' },
      events: { type: 'string', value: '<types>', needs: '<types>, comma-separated, e.g. --events user.created,user.deleted (or --events "*")' },
      description: { type: 'string', value: '<text>' },
    },
    access: 'write',
    prepare({ flags }) {
      const url = flags['url'] as string;
      const events = (flags['events'] as string).split(',').map((type) => type.trim()).filter((type) => type !== '');
      const description = typeof flags['description'] === 'string' ? flags['description'] : undefined;
      return async ({ db, config, log }) => {
        const [{ openSecretBox }, { Webhooks }, { Outbox }] = await Promise.all([
          import('./secrets.js'),
          import('./features/webhooks/webhooks.js'),
          import('./kernel/outbox/outbox.js'),
        ]);
        const box = await openSecretBox(db, config, log);
        const webhooks = new Webhooks(db, new Outbox(db, log), box, config.webhooks, log);
        const { endpoint, secret } = await webhooks.create({ url, events, description });
        return `${secret}\n(webhook endpoint ${endpoint.id} for ${endpoint.events.join(',')} at ${endpoint.url}: the secret is shown this once; receivers verify the signatures with it)`;
      };
    },
  },
  'keys:list': {
    help: 'List signing keys: current, retiring (still verifying) and retired.',
    access: 'read',
    prepare: () => async ({ db }) => {
      const { listSigningKeys } = await import('./features/tokens/signing-keys.js');
      const now = Date.now();
      const rows = (await listSigningKeys(db)).map((key) => {
        const status =
          key.retiredAt === null ? 'current' : key.retiredAt.getTime() > now ? `retiring at ${key.retiredAt.toISOString()}` : 'retired';
        return [key.kid, key.alg, key.privateJwk === null ? 'JWT_PRIVATE_KEY' : 'generated', key.createdAt.toISOString(), status];
      });
      return table(['kid', 'alg', 'source', 'created', 'status'], rows);
    },
  },
  'keys:rotate': {
    help: 'Generate a new signing key (JWT_ALGORITHM) and make it current. Earlier keys keep verifying until their tokens expire.',
    access: 'write',
    prepare: () => async ({ db, config }) => {
      const { rotateSigningKey } = await import('./features/tokens/signing-keys.js');
      const result = await rotateSigningKey(db, config.jwt);
      return (
        `new signing key ${result.kid} (${result.alg}) is current; running instances sign with it within a minute.\n` +
        (result.superseded.length
          ? `superseded ${result.superseded.join(', ')}: still verifying for ${result.retireAfterSeconds} s, then retired.`
          : 'no earlier key was current.')
      );
    },
  },
  'keys:retire': {
    help: 'Stop trusting a superseded key now (if it leaked). Tokens it signed are refused within a minute.',
    arguments: [{ name: 'kid', what: 'the kid of the key to retire (see keys:list)' }],
    access: 'write',
    prepare({ positionals: [kid] }) {
      return async ({ db }) => {
        const { retireSigningKey } = await import('./features/tokens/signing-keys.js');
        await retireSigningKey(db, kid!);
        return `retired ${kid}: it is gone from the JWKS and verifies nothing once instances reload (within a minute).`;
      };
    },
  },
};

/**
 * A parked account cannot sign in at all, so the operator is told each parked name to rename, and how. A column
 * only when one is listed: the usual listing keeps its shape.
 */
function userListing({ users, parked }: UserListing): string {
  const anyParked = users.some((u) => u.parkedAs !== undefined);
  const listing = table(
    ['id', 'username', 'created', 'live sessions', ...(anyParked ? ['parked as'] : [])],
    users.map((u) => [u.id, u.username, u.createdAt.toISOString(), String(u.liveSessions), ...(anyParked ? [u.parkedAs ?? ''] : [])]),
  );
  if (parked === 0) return listing;
  return (
    `${listing}\n\n${parked} account(s) in all are parked: their name is an older account's under today's rules, so they cannot ` +
    `sign in until renamed with user-auth user:rename <parked-name> <new-name>`
  );
}

function parkedReport(parkedAs: string[]): string[] {
  if (parkedAs.length === 0) return [];
  return [
    `${parkedAs.length} account(s) parked, as their name is an older account's under today's rules: ${parkedAs.join(', ')}`,
    'they cannot sign in until renamed: user-auth user:rename <parked-name> <new-name>',
  ];
}

function positiveInteger(flag: string, value: string | boolean): number {
  const number = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(number) || number < 1) throw usageError(`${flag} needs a positive whole number, not ${JSON.stringify(value)}`);
  return number;
}

/**
 * Strict: an unknown flag, a flag without its value or one argument too many is refused rather than ignored.
 * For a command that takes arguments, though, only its own flags are flags: a kid is base64url and may begin
 * with "-" (so may a username), and pasting one from keys:list must work without a "--" before it.
 */
function parseCommandLine(command: Command, args: string[]): Invocation {
  const options: Record<string, OptionSpec> = { help: { type: 'boolean', short: 'h' }, ...command.options };
  const mostArguments = (command.arguments ?? []).reduce((count, argument) => count + (argument.upTo ?? 1), 0);
  const takesArguments = mostArguments > 0;
  let parsed;
  try {
    parsed = parseArgs({ args: takesArguments ? flagsFirst(options, args) : args, options, allowPositionals: takesArguments, strict: true });
  } catch (error) {
    if (!(error instanceof Error && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS_'))) throw error;
    // Node's own wording names the offending flag; made to read like the other messages.
    const message = error.message.replace(/\s*\n\s*/g, ' ');
    throw usageError(message.charAt(0).toLowerCase() + message.slice(1));
  }
  const extra = parsed.positionals[mostArguments];
  if (extra !== undefined) throw usageError(`unexpected argument '${extra}'`);
  return { positionals: parsed.positionals, flags: parsed.values };
}

/** `user:roles <username> [role ...]`, `user:list [--limit N]`: what the command's entry in COMMANDS declares. */
function usageOf(name: string, command: Command): string {
  const args = (command.arguments ?? []).map(({ name, upTo }) => (upTo === undefined ? `<${name}>` : upTo === 1 ? `[${name}]` : `[${name} ...]`));
  const flags = Object.entries(command.options ?? {}).map(([flag, { value, needs }]) => {
    const written = value === undefined ? `--${flag}` : `--${flag} ${value}`;
    return needs === undefined ? `[${written}]` : written;
  });
  return [name, ...args, ...flags].join(' ');
}

/**
 * Refuses a command line without an argument or flag the command's entry says it needs (an empty one is
 * missing too): "user:rename needs the current username and the new one", "admin-keys:create needs --name …".
 */
function requireNeeded(name: string, command: Command, { positionals, flags }: Invocation): void {
  const args = command.arguments ?? [];
  const needed = args.filter((argument) => argument.upTo === undefined);
  if (needed.some((_, i) => !positionals[i])) {
    const then = args.filter((argument) => argument.upTo !== undefined).map((argument) => `, then ${argument.what}`);
    throw missing(`${name} needs ${needed.map((argument) => argument.what).join(' and ')}${then.join('')}`);
  }
  for (const [flag, { needs }] of Object.entries(command.options ?? {})) {
    if (needs !== undefined && (flags[flag] === undefined || flags[flag] === '')) throw missing(`${name} needs --${flag} ${needs}`);
  }
}

/** The arguments that name one of `options` (with a string option's value), then "--" and all the others. */
function flagsFirst(options: Record<string, OptionSpec>, args: string[]): string[] {
  const flags: string[] = [];
  const others: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      others.push(...args.slice(i + 1));
      break;
    }
    const name = arg.startsWith('--')
      ? arg.slice(2).split('=')[0]!
      : Object.keys(options).find((key) => options[key]!.short !== undefined && arg === `-${options[key]!.short}`);
    const option = name !== undefined && Object.hasOwn(options, name) ? options[name]! : undefined;
    if (!option) {
      others.push(arg);
      continue;
    }
    flags.push(arg);
    if (option.type === 'string' && !arg.includes('=') && i + 1 < args.length) flags.push(args[++i]!);
  }
  return [...flags, '--', ...others];
}

/**
 * A read-only command must not be the thing that migrates a production database, so it only looks: a database
 * without this build's migrations is reported, with what to run.
 */
async function requireMigrated(db: Database): Promise<void> {
  const [row] = await db.query<{ name: string | null }>(`SELECT to_regclass('schema_migrations')::text AS name`);
  if (!row?.name) throw new ServiceError('not_ready', 'the database is not migrated: run migrate first (npm run migrate)');
  const { pendingMigrations } = await import('./kernel/db/migrate.js');
  const pending = await pendingMigrations(db);
  if (pending.length) {
    const which = pending.length === 1 ? `migration ${pending[0]} is` : `migrations ${pending.join(', ')} are`;
    throw new ServiceError('not_ready', `${which} not applied: run migrate first (npm run migrate)`);
  }
}

async function applyMigrations(db: Database): Promise<number[]> {
  const { migrate } = await import('./kernel/db/migrate.js');
  try {
    return await migrate(db);
  } catch (error) {
    if (isServiceError(error)) throw error;
    // The migrations run in one transaction: a failure leaves the schema as it was.
    throw new ServiceError('internal_error', `migration failed, nothing was changed: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function helpText(): string {
  const usages = Object.entries(COMMANDS).map(([name, command]) => ({ usage: usageOf(name, command), help: command.help }));
  const width = Math.max(...usages.map((c) => c.usage.length)) + 2;
  const lines = usages.map((c) => `  ${c.usage.padEnd(width)}${c.help}`);
  return (
    `Usage: user-auth <command> [arguments]   (in a checkout: npm run cli -- <command>)\n\nCommands:\n${lines.join('\n')}\n\n` +
    'Settings come from the environment and .env, as for the service (DATABASE_URL, JWT_*).\n' +
    'Exit status: 0 done; 1 refused or failed (the message says why); 2 an unknown flag or a bad flag value.\n'
  );
}

/** Prints why `name` failed and returns its exit status; anything but a ServiceError is a bug and is rethrown. */
function report(name: string, command: Command, error: unknown): number {
  if (!isServiceError(error)) throw error;
  const message = error.code === 'database_unavailable' ? `the database is unreachable (${error.context?.['reason'] ?? error.message})` : error.message;
  process.stderr.write(`${name}: ${message}\n`);
  if (error.code === 'usage') process.stderr.write(`usage: user-auth ${usageOf(name, command)}\n`);
  return error.exitCode;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(helpText());
    return name === undefined ? 1 : 0;
  }
  // Own properties only: "toString" is not a command.
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    process.stderr.write(`unknown command "${name}"\n\n${helpText()}`);
    return 1;
  }
  let task: Task;
  try {
    const invocation = parseCommandLine(command, args);
    if (invocation.flags['help']) {
      process.stdout.write(`usage: user-auth ${usageOf(name, command)}\n\n${command.help}\n`);
      return 0;
    }
    requireNeeded(name, command, invocation);
    task = await command.prepare(invocation);
  } catch (error) {
    return report(name, command, error);
  }

  // The settings, the database and what every command's changes tell: loaded only for a command line that got this
  // far, so that the usage, --help and a refused flag cost no more than Node's own start.
  const { createLogger, loadSettingsOrExit } = await import('./startup.js');
  const { config } = loadSettingsOrExit();
  // Only warnings: the command's own answer is what the operator reads.
  const log = createLogger({ ...config, logLevel: config.logLevel === 'silent' ? 'silent' : 'warn' });
  let db: Database;
  try {
    const { openDatabase } = await import('./kernel/db/open-database.js');
    db = await openDatabase(config.database, log);
  } catch (error) {
    return report(name, command, error);
  }
  try {
    let appliedMigrations: number[] = [];
    let usernames: RekeyReport = { rekeyed: 0, parked: [], parkedAs: [] };
    if (command.access === 'write') {
      appliedMigrations = await applyMigrations(db);
      const { applyUsernameRules } = await import('./kernel/usernames.js');
      usernames = await applyUsernameRules(db);
    } else {
      await requireMigrated(db);
    }
    const [{ Events }, { Outbox }, { listenForWebhooks }, { AddressBook, EmailMessages }] = await Promise.all([
      import('./kernel/events.js'),
      import('./kernel/outbox/outbox.js'),
      import('./features/webhooks/webhooks.js'),
      import('./features/email/email.js'),
    ]);
    const events = new Events();
    // Rows only: the running service's sender delivers them.
    listenForWebhooks(events, new Outbox(db, log));
    // A password set here is told to the account's verified address (a notice: nothing in it to seal).
    if (config.email) new AddressBook(new EmailMessages(new Outbox(db, log), undefined), events, config.email).listen(events);
    process.stdout.write(`${await task({ db, config, log, events, appliedMigrations, usernames })}\n`);
    if (!command.reportsParked && usernames.parked.length > 0) process.stderr.write(`${parkedReport(usernames.parkedAs).join('\n')}\n`);
    return 0;
  } catch (error) {
    return report(name, command, error);
  } finally {
    await db.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
