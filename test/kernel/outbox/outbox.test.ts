import { afterEach, describe, expect, it } from 'vitest';
import { migrate } from '../../../src/kernel/db/migrate.js';
import { DeliveryError, Outbox, retrySchedule, type OutboxRow, type OutboxTopic } from '../../../src/kernel/outbox/outbox.js';
import { recentOutboxRows } from '../../../src/kernel/outbox/outbox-queries.js';
import { Metrics } from '../../../src/kernel/metrics.js';
import { createTestDatabase, silentLog, type TestDatabase } from '../../helpers/database.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function database(): Promise<TestDatabase> {
  const testDatabase = await createTestDatabase();
  cleanups.push(() => testDatabase.drop());
  await migrate(testDatabase.db);
  return testDatabase;
}

/** A topic whose deliveries land in `delivered`; `failures` makes the first so many attempts fail. */
function recordingTopic(options: { failures?: number; retry?: OutboxTopic['retryDelaySeconds'] } = {}) {
  const delivered: OutboxRow[] = [];
  let failures = options.failures ?? 0;
  const topic: OutboxTopic = {
    topic: 'test',
    timeoutMs: 1000,
    async deliver(row) {
      if (failures > 0) {
        failures -= 1;
        throw new DeliveryError('receiver answered 500');
      }
      delivered.push(row);
    },
    retryDelaySeconds: options.retry ?? (() => 1),
    redact: (payload) => ({ ...(payload as object), secret: undefined }),
  };
  return { topic, delivered, setFailures: (n: number) => (failures = n) };
}

function sender(testDatabase: TestDatabase, topic: OutboxTopic, db = testDatabase.db): Outbox {
  const outbox = new Outbox(db, silentLog, { pollIntervalMs: 100 });
  outbox.register(topic);
  cleanups.push(() => outbox.stop());
  return outbox;
}

async function eventually<T>(check: () => Promise<T | undefined> | T | undefined): Promise<T> {
  for (let i = 0; ; i++) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (i > 600) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('the outbox', () => {
  it('delivers a row written in a committed transaction once, and nothing of a rolled-back one', async () => {
    const testDatabase = await database();
    const { topic, delivered } = recordingTopic();
    const outbox = sender(testDatabase, topic);
    await expect(
      testDatabase.db.transaction(async (tx) => {
        await outbox.enqueue(tx, { topic: 'test', payload: { n: 'rolled back' } });
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    await testDatabase.db.transaction((tx) => outbox.enqueue(tx, { topic: 'test', payload: { n: 'committed', secret: 's3cret' } }));
    outbox.start();
    outbox.wake();
    await eventually(() => delivered.length === 1);
    const rows = await eventually(async () => {
      const found = await recentOutboxRows(testDatabase.db, 'test', { limit: 10 });
      return found[0]?.state === 'sent' ? found : undefined;
    });
    expect(delivered.map((row) => row.payload)).toEqual([{ n: 'committed', secret: 's3cret' }]);
    expect(rows).toHaveLength(1);
    // What must not outlive delivery is gone from the stored row.
    expect(rows[0]!.payload).toEqual({ n: 'committed' });
    expect(rows[0]!.attempts).toBe(1);
  });

  it('retries a failed delivery with its reason recorded, and gives up when the schedule says so', async () => {
    const testDatabase = await database();
    const { topic, delivered } = recordingTopic({ failures: 2 });
    const outbox = sender(testDatabase, topic);
    outbox.start();
    await testDatabase.db.transaction((tx) => outbox.enqueue(tx, { topic: 'test', payload: { n: 1 } }));
    outbox.wake();
    await eventually(() => delivered.length === 1);
    const [row] = await eventually(async () => {
      const found = await recentOutboxRows(testDatabase.db, 'test', { limit: 1 });
      return found[0]?.state === 'sent' ? found : undefined;
    });
    expect(row!.attempts).toBe(3);

    const never = recordingTopic({ failures: 100, retry: (attempts) => (attempts >= 2 ? undefined : 1) });
    const other = sender(testDatabase, { ...never.topic, topic: 'other' });
    other.start();
    await testDatabase.db.transaction((tx) => other.enqueue(tx, { topic: 'other', payload: { n: 2, secret: 'x' } }));
    other.wake();
    const [failed] = await eventually(async () => {
      const found = await recentOutboxRows(testDatabase.db, 'other', { limit: 1 });
      return found[0]?.state === 'failed' ? found : undefined;
    });
    expect(failed).toMatchObject({ attempts: 2, last_error: 'receiver answered 500', payload: { n: 2 } });
  });

  it('gives up at once on a delivery the destination refused for good', async () => {
    const testDatabase = await database();
    const attempts: string[] = [];
    const outbox = sender(testDatabase, {
      topic: 'test',
      timeoutMs: 1000,
      retryDelaySeconds: () => 1,
      redact: (payload) => ({ ...(payload as object), secret: undefined }),
      async deliver(row) {
        attempts.push(row.id);
        throw new DeliveryError('550 no such mailbox', true);
      },
    });
    outbox.start();
    await testDatabase.db.transaction((tx) => outbox.enqueue(tx, { topic: 'test', payload: { n: 1, secret: 'x' } }));
    outbox.wake();
    const [failed] = await eventually(async () => {
      const found = await recentOutboxRows(testDatabase.db, 'test', { limit: 1 });
      return found[0]?.state === 'failed' ? found : undefined;
    });
    expect(failed).toMatchObject({ attempts: 1, last_error: '550 no such mailbox', payload: { n: 1 } });
    expect(attempts).toHaveLength(1);
  });

  it('delivers rows written while no sender ran once one starts (a restart between commit and delivery)', async () => {
    const testDatabase = await database();
    const first = recordingTopic();
    const stoppedSender = sender(testDatabase, first.topic);
    await testDatabase.db.transaction(async (tx) => {
      for (let n = 0; n < 5; n++) await stoppedSender.enqueue(tx, { topic: 'test', payload: { n } });
    });
    await stoppedSender.stop();
    expect(first.delivered).toHaveLength(0);
    const second = recordingTopic();
    sender(testDatabase, second.topic).start();
    await eventually(() => second.delivered.length === 5);
  });

  it('two senders on one database deliver each row once', async () => {
    const testDatabase = await database();
    const delivered: string[] = [];
    const topic = (): OutboxTopic => ({
      topic: 'test',
      timeoutMs: 1000,
      retryDelaySeconds: () => 1,
      async deliver(row) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        delivered.push(row.id);
      },
    });
    const a = sender(testDatabase, topic());
    const b = sender(testDatabase, topic(), testDatabase.openAnother?.() ?? testDatabase.db);
    await testDatabase.db.transaction(async (tx) => {
      for (let n = 0; n < 60; n++) await a.enqueue(tx, { topic: 'test', payload: { n } });
    });
    a.start();
    b.start();
    await eventually(() => delivered.length >= 60);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(delivered).toHaveLength(60);
    expect(new Set(delivered).size).toBe(60);
  });

  it('releases the rows waiting for a retry once the destination answers again', async () => {
    const testDatabase = await database();
    const { topic, delivered, setFailures } = recordingTopic({ failures: 3, retry: () => 3600 });
    const outbox = sender(testDatabase, topic);
    outbox.start();
    await testDatabase.db.transaction(async (tx) => {
      for (let n = 0; n < 3; n++) await outbox.enqueue(tx, { topic: 'test', payload: { n } });
    });
    outbox.wake();
    // All three failed and wait an hour; a new row finds the destination back, and the others follow at once.
    await eventually(async () => {
      const rows = await recentOutboxRows(testDatabase.db, 'test', { limit: 10 });
      return rows.every((row) => row.last_error !== null) || undefined;
    });
    setFailures(0);
    await testDatabase.db.transaction((tx) => outbox.enqueue(tx, { topic: 'test', payload: { n: 3 } }));
    outbox.wake();
    await eventually(() => delivered.length === 4);
  });

  it('reports the rows by topic and state in the metrics', async () => {
    const testDatabase = await database();
    const { topic } = recordingTopic();
    const outbox = sender(testDatabase, topic);
    const metrics = new Metrics();
    outbox.watchDepth(metrics);
    await testDatabase.db.transaction((tx) => outbox.enqueue(tx, { topic: 'test', payload: {} }));
    expect(await metrics.registry.metrics()).toContain('outbox_messages{topic="test",state="pending"} 1');
  });
});

describe('the retry schedule', () => {
  it('grows from the first delay to the cap, and gives up past the limit', () => {
    const schedule = retrySchedule({ firstSeconds: 5, capSeconds: (age) => (age < 3600 ? 60 : 900), giveUpAfterSeconds: 86_400 });
    expect(schedule(1, 0)).toBeLessThanOrEqual(6);
    expect(schedule(10, 100)).toBeLessThanOrEqual(72);
    expect(schedule(10, 100)).toBeGreaterThanOrEqual(48);
    expect(schedule(20, 7200)).toBeGreaterThan(700);
    expect(schedule(20, 86_400)).toBeUndefined();
  });
});
