import { afterEach, describe, expect, it } from 'vitest';
import { afterCommit, isTransaction } from '../../src/kernel/db/database.js';
import { Events, type DomainEvent } from '../../src/kernel/events.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function database(): Promise<TestDatabase> {
  const testDatabase = await createTestDatabase('CREATE TABLE changes (n integer)');
  cleanups.push(() => testDatabase.drop());
  return testDatabase;
}

describe('events', () => {
  it('reach the listeners inside the transaction of their change, and only there', async () => {
    const { db } = await database();
    const events = new Events();
    const heard: DomainEvent[] = [];
    events.listen(async (tx, event) => {
      // A listener writes with the change: its rows and the change stand or fall together.
      await tx.query('INSERT INTO changes (n) VALUES (2)');
      heard.push(event);
    });
    await expect(events.emit(db, 'user.deleted', { user_id: '1' })).rejects.toThrow(/outside a transaction/);
    await db.transaction(async (tx) => {
      expect(isTransaction(tx)).toBe(true);
      await tx.query('INSERT INTO changes (n) VALUES (1)');
      await events.emit(tx, 'user.deleted', { user_id: '1' });
    });
    expect(heard).toEqual([{ id: expect.stringMatching(/^msg_[A-Za-z0-9_-]{22}$/), type: 'user.deleted', timestamp: expect.any(String), data: { user_id: '1' } }]);
    expect(await db.query('SELECT n FROM changes ORDER BY n')).toEqual([{ n: 1 }, { n: 2 }]);
    expect(isTransaction(db)).toBe(false);
  });

  it('fail the change when a listener fails, and run what waits for the commit only after it', async () => {
    const { db } = await database();
    const events = new Events();
    const committed: string[] = [];
    events.listen(async (tx, event) => {
      afterCommit(tx, () => committed.push(event.type));
      if (event.type === 'user.locked') throw new Error('the listener failed');
    });
    await expect(
      db.transaction(async (tx) => {
        await tx.query('INSERT INTO changes (n) VALUES (1)');
        await events.emit(tx, 'user.locked', { user_id: '1', reason: null, until: null });
      }),
    ).rejects.toThrow('the listener failed');
    await expect(
      db.transaction(async (tx) => {
        await events.emit(tx, 'user.unlocked', { user_id: '1' });
        expect(committed).toEqual([]);
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    expect(committed).toEqual([]);
    expect(await db.query('SELECT n FROM changes')).toEqual([]);
    await db.transaction((tx) => events.emit(tx, 'user.unlocked', { user_id: '1' }));
    expect(committed).toEqual(['user.unlocked']);
  });
});
