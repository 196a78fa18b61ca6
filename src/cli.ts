import { KeyManagementError, listSigningKeys, retireSigningKey, rotateSigningKey } from './auth/signing-keys.js';
import { UserAdministration } from './auth/admin.js';
import { AuthError } from './auth/errors.js';
import { PasswordPolicy } from './auth/password-policy.js';
import { PasswordHasher } from './auth/passwords.js';
import { importOriginalUsers, SourceDatabaseError } from './auth/user-import.js';
import type { Config } from './config.js';
import { DatabaseUnavailableError, type Database } from './db/database.js';
import { migrate } from './db/migrate.js';
import { openDatabase } from './services.js';
import { createLogger, loadSettingsOrExit } from './startup.js';

/** `npm run cli -- <command>`: operator tasks against the database the settings point at. */

interface Command {
  usage: string;
  help: string;
  /** `appliedMigrations`: what main() applied just before, as it does for every command. */
  run(db: Database, config: Config, args: string[], appliedMigrations: number[]): Promise<string>;
}

/** Runs `task` with the user administration, then stops its hashing threads. */
async function withAdministration<T>(db: Database, config: Config, task: (admin: UserAdministration) => Promise<T>): Promise<T> {
  const hasher = await PasswordHasher.create(config.argon2, config.hashing);
  try {
    return await task(new UserAdministration(db, hasher, new PasswordPolicy(config.passwordPolicy)));
  } finally {
    await hasher.close();
  }
}

/** The password comes on standard input, never as an argument, where `ps` and shell history would keep it. */
async function passwordFromStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new UsageError('pipe the password on standard input, e.g. printf %s "$PASSWORD" | npm run cli -- user:create alice');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (password === '') throw new UsageError('no password on standard input');
  return password;
}

const COMMANDS: Record<string, Command> = {
  migrate: {
    usage: 'migrate',
    help: 'Apply pending database migrations (the service also does this at start).',
    async run(_db, _config, _args, applied) {
      return applied.length ? `applied ${applied.length} migration(s): ${applied.join(', ')}` : 'the database is up to date';
    },
  },
  'user:create': {
    usage: 'user:create <username>',
    help: 'Create a user; the password is read from standard input. The API\'s username and password rules apply.',
    async run(db, config, [username]) {
      if (!username) throw new UsageError('user:create needs a username');
      const password = await passwordFromStdin();
      const user = await withAdministration(db, config, (admin) => admin.create(username, password));
      return `created user ${user.id} ${user.username}`;
    },
  },
  'user:delete': {
    usage: 'user:delete <username>',
    help: 'Delete a user and end all its sessions.',
    async run(db, config, [username]) {
      if (!username) throw new UsageError('user:delete needs a username');
      const user = await withAdministration(db, config, (admin) => admin.delete(username));
      return `deleted user ${user.id} ${user.username}`;
    },
  },
  'user:list': {
    usage: 'user:list [--limit N]',
    help: 'List users, oldest first (100 unless --limit says otherwise), with their live sessions.',
    async run(db, config, args) {
      const limitArg = args[0] === '--limit' ? args[1] : undefined;
      const limit = limitArg === undefined ? 100 : Number(limitArg);
      if (!Number.isSafeInteger(limit) || limit < 1) throw new UsageError('--limit needs a positive whole number');
      const users = await withAdministration(db, config, (admin) => admin.list(limit));
      return table(
        ['id', 'username', 'created', 'live sessions'],
        users.map((u) => [u.id, u.username, u.createdAt.toISOString(), String(u.liveSessions)]),
      );
    },
  },
  'users:import': {
    usage: 'users:import --from <postgres-url>',
    help: "Copy the original Flask service's users (ids, names, password hashes) into this database. They sign in with their old passwords.",
    async run(db, _config, args) {
      const from = args[0] === '--from' ? args[1] : args[0]?.startsWith('--from=') ? args[0].slice('--from='.length) : undefined;
      if (!from || !/^postgres(ql)?:\/\//.test(from)) {
        throw new UsageError('users:import needs --from postgres://user:password@host:5432/database (the original service\'s database)');
      }
      const report = await importOriginalUsers(db, from);
      const lines = [
        `imported ${report.imported.length + report.renamed.length} user(s); ${report.already_present.length} already present.`,
      ];
      if (report.renamed.length) {
        lines.push(`${report.renamed.length} name(s) already belonged to another account and were parked as <name>#<id> until renamed: ${report.renamed.join(', ')}`);
      }
      if (report.id_taken.length) lines.push(`skipped ${report.id_taken.length} whose id is another user's here: ${report.id_taken.join(', ')}`);
      return lines.join('\n');
    },
  },
  'keys:list': {
    usage: 'keys:list',
    help: 'List signing keys: current, retiring (still verifying) and retired.',
    async run(db) {
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
    usage: 'keys:rotate',
    help: 'Generate a new signing key (JWT_ALGORITHM) and make it current. Earlier keys keep verifying until their tokens expire.',
    async run(db, config) {
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
    usage: 'keys:retire <kid>',
    help: 'Stop trusting a superseded key now (if it leaked). Tokens it signed are refused within a minute.',
    async run(db, _config, [kid]) {
      if (!kid) throw new UsageError('keys:retire needs the kid of the key to retire (see keys:list)');
      await retireSigningKey(db, kid);
      return `retired ${kid}: it is gone from the JWKS and verifies nothing once instances reload (within a minute).`;
    },
  },
};

class UsageError extends Error {}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function helpText(): string {
  const width = Math.max(...Object.values(COMMANDS).map((c) => c.usage.length)) + 2;
  const lines = Object.values(COMMANDS).map((c) => `  ${c.usage.padEnd(width)}${c.help}`);
  return `Usage: npm run cli -- <command> [arguments]\n\nCommands:\n${lines.join('\n')}\n\nSettings come from the environment and .env, as for the service (DATABASE_URL, JWT_*).\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(helpText());
    return name === undefined ? 1 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`unknown command "${name}"\n\n${helpText()}`);
    return 1;
  }
  const config = loadSettingsOrExit();
  // Only warnings: the command's own answer is what the operator reads.
  const log = createLogger({ ...config, logLevel: config.logLevel === 'silent' ? 'silent' : 'warn' });
  const db = await openDatabase(config.database, log);
  try {
    const applied = await migrate(db);
    process.stdout.write(`${await command.run(db, config, args, applied)}\n`);
    return 0;
  } catch (error) {
    if (error instanceof KeyManagementError || error instanceof UsageError || error instanceof SourceDatabaseError || error instanceof AuthError) {
      process.stderr.write(`${name}: ${error.message}\n`);
    } else if (error instanceof DatabaseUnavailableError) {
      process.stderr.write(`${name}: the database is unreachable (${error.reason})\n`);
    } else {
      throw error;
    }
    return 1;
  } finally {
    await db.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
