import type { Database } from '../../kernel/db/database.js';
import { advanceUserIds, importUser, readOriginalUsers, type ImportOutcome } from './original-user-queries.js';
import { ServiceError } from '../../kernel/errors.js';
import { applyUsernameRulesIn, legacyUsernameKey } from '../../kernel/usernames.js';
import './account-errors.js';

export type ImportReport = Record<ImportOutcome, string[]> & {
  /** Every account left parked, by its parked name (`<key>#<id>`): what user:rename takes. */
  parkedAs: string[];
};

/**
 * Copies the original service's users (ids, usernames and Werkzeug hashes) into this service's database, all or
 * nothing. Their hashes are verified at their next login and replaced with argon2id then, so nobody resets a
 * password. Running it again skips who is already there.
 */
export async function importOriginalUsers(db: Database, sourceUrl: string): Promise<ImportReport> {
  const users = await readOriginalUsers(sourceUrl).catch((error: Error) => {
    throw new ServiceError('source_unavailable', `cannot read users from the original database: ${error.message}`);
  });
  return db.transaction(async (tx) => {
    // Built inside: a transaction aborted by a conflict runs again, and must not report its first run's rows.
    const report: ImportReport = { imported: [], renamed: [], already_present: [], id_taken: [], parkedAs: [] };
    // Rows already here are keyed first, so that they keep their names against the imported ones.
    const before = await applyUsernameRulesIn(tx);
    for (const user of users) {
      const outcome = await importUser(tx, user, legacyUsernameKey(user.username));
      report[outcome].push(`${user.id}:${user.username}`);
    }
    await advanceUserIds(tx);
    // The imported rows get their look-alike skeletons, and the final say on which of them are parked.
    const after = await applyUsernameRulesIn(tx);
    report.parkedAs = [...before.parkedAs, ...after.parkedAs];
    return report;
  });
}
