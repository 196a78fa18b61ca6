import { dictionary } from '@zxcvbn-ts/language-common';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { change, json, register, startTestApp, tryRegister, uniqueName, type TestApp } from '../../helpers/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

async function expectWeak(response: LightMyRequestResponse, reason: RegExp) {
  expect(response.statusCode).toBe(400);
  expect(json(response)['error']).toBe('weak_password');
  expect(json(response)['message']).toMatch(reason);
}

describe('new passwords', () => {
  const common = (dictionary['passwords-common'] as string[]).filter((p) => [...p].length >= 8);

  it('refuse the most common passwords, whatever their case or Unicode form, and say why', async () => {
    // The 10,000th most common password of eight or more characters, and some famous ones.
    for (const password of ['password', 'iloveyou', 'PASSWORD1', 'ｑｗｅｒｔｙｕｉｏｐ', common[9_999]!]) {
      await expectWeak(await tryRegister(t.app, { password }), /one of the most commonly used passwords/);
    }
    expect(common.length).toBeGreaterThan(10_000);
  });

  it('refuse the username itself, in any case', async () => {
    const username = uniqueName('Margarethe');
    await expectWeak(await tryRegister(t.app, { username, password: username.toUpperCase() }), /must not be the username/);
  });

  it('accept a long passphrase with no digits, capitals or symbols (no composition rules)', async () => {
    expect((await tryRegister(t.app, { password: 'purple elephant sings quietly' })).statusCode).toBe(201);
  });

  it('apply to a password change too, with the new username when both change', async () => {
    const user = await register(t.app);
    const common = await change(t.app, { new_password: 'qwertyuiop', new_password_confirm: 'qwertyuiop' }, user.token);
    await expectWeak(common, /most commonly used/);

    const newName = uniqueName('renamed');
    const same = await change(t.app, { new_username: newName, new_password: newName, new_password_confirm: newName }, user.token);
    await expectWeak(same, /must not be the username/);
  });

  it('are measured in characters after NFKC against PASSWORD_MIN_LENGTH', async () => {
    const strict = await startTestApp({ PASSWORD_MIN_LENGTH: '12' }, { testDatabase: t.testDatabase, db: t.db });
    try {
      const short = await tryRegister(strict.app, { password: 'eleven char' });
      expect(short.statusCode).toBe(400);
      expect(json(short)).toEqual({ error: 'invalid_password', message: 'Password must be 12 to 1024 characters long' });
      expect((await tryRegister(strict.app, { password: 'twelve chars' })).statusCode).toBe(201);
      expect((await tryRegister(t.app, { password: 'eleven char' })).statusCode).toBe(201); // the default is 8
    } finally {
      await strict.close();
    }
  });

  it('must reach PASSWORD_MIN_SCORE (zxcvbn) when it is set', async () => {
    const strict = await startTestApp({ PASSWORD_MIN_SCORE: '3' }, { testDatabase: t.testDatabase, db: t.db });
    try {
      // Not in the common list, but a keyboard walk plus a year: guessable.
      const guessable = await tryRegister(strict.app, { password: 'asdfghjk2024' });
      await expectWeak(guessable, /too easy to guess \(strength [0-2] of 4, at least 3 needed\)/);
      expect((await tryRegister(t.app, { password: 'asdfghjk2024' })).statusCode).toBe(201); // off by default
      expect((await tryRegister(strict.app, { password: 'purple elephant sings quietly' })).statusCode).toBe(201);
    } finally {
      await strict.close();
    }
  });
});
