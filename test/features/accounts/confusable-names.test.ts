import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, login, PASSWORD, post, register, startTestApp, uniqueName, type TestApp } from '../../helpers/app.js';

// Names that print like someone else's must not become accounts of their own: each is refused (400) or is
// taken (409), and whoever holds the original name keeps it.

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

const registerWith = (username: string) => post(t.app, '/api/auth/register', { username, password: PASSWORD, password_confirm: PASSWORD });

/** A name of letters only, unused in this file (uniqueName's digits would mix in with some scripts' own). */
let letterCounter = 0;
function lettersOnly(prefix: string): string {
  letterCounter += 1;
  const suffix = [...`${process.pid}${letterCounter}`].map((digit) => 'abcdefghij'[Number(digit)]).join('');
  return `${prefix}${suffix}`;
}

async function expectRefusedOrTaken(username: string): Promise<void> {
  const response = await registerWith(username);
  expect([400, 409], `${JSON.stringify(username)}: ${response.body}`).toContain(response.statusCode);
  expect(json(response)['error']).toBe(response.statusCode === 400 ? 'invalid_username' : 'username_taken');
}

describe('invisible characters', () => {
  const INVISIBLE = [
    ['U+034F COMBINING GRAPHEME JOINER', '\u034f'],
    ['U+FE0F VARIATION SELECTOR-16', '\ufe0f'],
    ['U+3164 HANGUL FILLER', '\u3164'],
    ['U+115F HANGUL CHOSEONG FILLER', '\u115f'],
    ['U+1160 HANGUL JUNGSEONG FILLER', '\u1160'],
    ['U+FFA0 HALFWIDTH HANGUL FILLER', '\uffa0'],
    ['U+180B MONGOLIAN FREE VARIATION SELECTOR ONE', '\u180b'],
    ['U+17B4 KHMER VOWEL INHERENT AQ', '\u17b4'],
  ] as const;

  it.each(INVISIBLE)('%s inside a name is refused, and the look-alike of an existing name is no account', async (_name, invisible) => {
    const original = (await register(t.app, uniqueName('dana'))).username;
    for (const position of [1, 3, original.length - 1]) {
      await expectRefusedOrTaken(original.slice(0, position) + invisible + original.slice(position));
    }
    const response = await registerWith(`${invisible}${uniqueName('fresh')}${invisible}`);
    expect(response.statusCode, response.body).toBe(400);
    expect(json(response)['error']).toBe('invalid_username');
  });

  it('still refuses the invisible format characters (zero-width space and joiner, soft hyphen, word joiner, tags)', async () => {
    for (const invisible of ['\u200b', '\u200d', '\u00ad', '\u2060', '\u{e0041}']) {
      const response = await registerWith(`ab${invisible}cd`);
      expect(response.statusCode).toBe(400);
    }
  });

  it('refuses a name made only of invisible characters', async () => {
    for (const username of ['\u3164\u3164\u3164', '\u115f\u1160\u115f', '\uffa0\uffa0\uffa0\uffa0', '\u034f\u034f\u034f', 'ㅤㅤㅤ']) {
      const response = await registerWith(username);
      expect(response.statusCode, JSON.stringify(username)).toBe(400);
      expect(json(response)['error']).toBe('invalid_username');
    }
  });

  it('stores nothing for a refused name, and the real owner still signs in', async () => {
    const original = await register(t.app, uniqueName('owner'));
    await registerWith(`${original.username}\u034f`);
    const rows = await t.db.query('SELECT id FROM users WHERE username LIKE $1', [`${original.username}%`]);
    expect(rows).toHaveLength(1);
    expect((await login(t.app, original.username)).statusCode).toBe(200);
  });
});

describe('mixed scripts', () => {
  it('refuses a Latin name with a Cyrillic or Greek letter in it', async () => {
    const latin = lettersOnly('admin');
    await register(t.app, latin);
    // а (U+0430), е (U+0435), о (U+043E) are Cyrillic; ο (U+03BF) is Greek.
    for (const lookalike of [`а${latin.slice(1)}`, latin.replace('a', 'а'), `${latin}е`, latin.replace('i', 'і'), latin.replace('m', 'м'), `${latin}ο`]) {
      const response = await registerWith(lookalike);
      expect(response.statusCode, lookalike).toBe(400);
      expect(json(response)['error']).toBe('invalid_username');
    }
    expect((await login(t.app, `а${latin.slice(1)}`)).statusCode).toBe(401);
  });

  it('refuses a name wholly in Cyrillic or Greek that prints like an existing Latin one', async () => {
    await register(t.app, 'ace_cop');
    await register(t.app, 'BOB_TOP');
    // асе_сор: Cyrillic а с е о р; ВОВ_ТОР: Cyrillic В О Т Р; ΑΒΕ: Greek Alpha Beta Epsilon.
    await register(t.app, 'abe_eta');
    for (const lookalike of ['асе_сор', 'АСЕ_СОР', 'ВОВ_ТОР', 'ΑΒΕ_ΕΤΑ']) {
      await expectRefusedOrTaken(lookalike);
    }
  });

  it('refuses look-alikes made of Latin letters and digits too (l and 1, O and 0, I and l)', async () => {
    const base = lettersOnly('bill');
    await register(t.app, base);
    for (const lookalike of [base.replace('ll', 'l1'), base.replace('ll', 'lI'), base.toUpperCase().replace('I', '1')]) {
      await expectRefusedOrTaken(lookalike);
    }
    const owen = lettersOnly('owen');
    await register(t.app, owen.toUpperCase());
    await expectRefusedOrTaken(`0${owen.slice(1).toUpperCase()}`);
  });

  it('refuses letters of scripts not in common use (Cherokee letters print like Latin capitals)', async () => {
    for (const username of ['ᎪᎠᎷᏆᏁ', 'ᏚᎢᎪᎻ']) {
      const response = await registerWith(username);
      expect(response.statusCode, username).toBe(400);
    }
  });

  it('refuses digits of two systems in one name, and right-to-left names that reorder on screen', async () => {
    for (const username of ['abc٣1', '٣۳٣', '1דוד', 'דוד-', 'דודabc', 'محمد۳٣']) {
      const response = await registerWith(username);
      expect(response.statusCode, username).toBe(400);
      expect(json(response)['error']).toBe('invalid_username');
    }
  });
});

describe('case folding', () => {
  it('makes ΣΟΦΟΣ, σοφος, σοφοσ and Σοφος one account: final sigma is sigma', async () => {
    const first = await registerWith('ΣΟΦΟΣ');
    expect(first.statusCode, first.body).toBe(201);
    for (const variant of ['σοφος', 'σοφοσ', 'Σοφος', 'ΣΟΦΟς']) {
      const response = await registerWith(variant);
      expect(response.statusCode, variant).toBe(409);
      expect(json(response)).toEqual({ error: 'username_taken', message: 'Username is already taken' });
    }
    // σοφoς has a Latin o: refused outright.
    expect((await registerWith('σοφoς')).statusCode).toBe(400);
    for (const typed of ['ΣΟΦΟΣ', 'σοφος', 'σοφοσ']) {
      const response = await login(t.app, typed);
      expect(response.statusCode, typed).toBe(200);
      expect(json(response)['user'].username).toBe('ΣΟΦΟΣ');
    }
  });

  it('makes ß and ss one name, as they are in capitals', async () => {
    expect((await registerWith('straße_maier')).statusCode).toBe(201);
    for (const variant of ['strasse_maier', 'STRASSE_MAIER', 'STRAẞE_MAIER']) {
      expect((await registerWith(variant)).statusCode, variant).toBe(409);
    }
    expect((await login(t.app, 'STRASSE_MAIER')).statusCode).toBe(200);
  });

  it('makes Greek letters with a iota subscript one name with their capitals', async () => {
    expect((await registerWith('ᾳδης')).statusCode).toBe(201);
    expect((await registerWith('ΑΙΔΗΣ')).statusCode).toBe(409);
    expect((await login(t.app, 'ΑΙΔΗΣ')).statusCode).toBe(200);
  });
});

describe('names people really have', () => {
  it.each([
    ['Latin', 'José_Ünal-1.x'],
    ['Latin with diacritics', 'Nguyễn_Thị'],
    ['Greek', 'Ιωάννης'],
    ['Cyrillic', 'Дмитрий_87'],
    ['Han', '张伟明'],
    ['Japanese (kanji and kana)', 'やまだ太郎'],
    ['Japanese katakana', 'タナカ_ケン'],
    ['Latin with Japanese', 'tanaka_たろう'],
    ['Korean', '김민준'],
    ['Arabic', 'محمد_علي'],
    ['Hebrew with digits', 'דוד2024'],
    ['Devanagari', 'अर्जुन'],
    ['Thai', 'สมชาย'],
    ['Georgian', 'ნინო'],
    ['Armenian', 'Արամ'],
  ])('%s: %s registers and signs in', async (_script, username) => {
    const response = await registerWith(username);
    expect(response.statusCode, response.body).toBe(201);
    expect(json(response)['user'].username).toBe(username);
    const signedIn = await login(t.app, username);
    expect(signedIn.statusCode).toBe(200);
    expect(json(signedIn)['user'].username).toBe(username);
  });

  it('keeps full-width forms one name with their ASCII forms', async () => {
    const name = lettersOnly('wide');
    await register(t.app, name);
    const wide = [...name].map((c) => String.fromCodePoint(c.codePointAt(0)! + 0xfee0)).join('');
    expect((await registerWith(wide)).statusCode).toBe(409);
    expect((await login(t.app, wide)).statusCode).toBe(200);
  });
});

describe('renaming', () => {
  it('refuses a new name that prints like another account, and allows a harmless one', async () => {
    const victim = await register(t.app, lettersOnly('vill'));
    const other = await register(t.app, lettersOnly('otto'));
    const change = (newUsername: string) => post(t.app, '/api/auth/change', { new_username: newUsername }, other.token);
    const cyrillic = await change(victim.username.replace('i', 'і')); // і is Cyrillic
    expect(cyrillic.statusCode).toBe(400);
    const invisible = await change(`${victim.username}\u034f`);
    expect(invisible.statusCode).toBe(400);
    expect((await change(victim.username.toUpperCase())).statusCode).toBe(409);
    const digitForLetter = await change(victim.username.replace('ll', 'l1'));
    expect(digitForLetter.statusCode, digitForLetter.body).toBe(409);
    const renamed = await change(`${other.username}_x`);
    expect(renamed.statusCode, renamed.body).toBe(200);
    // The old name is free again, the new one and its look-alikes are taken.
    expect((await registerWith(other.username)).statusCode).toBe(201);
    expect((await registerWith(`${other.username}_X`)).statusCode).toBe(409);
    expect((await registerWith(`${other.username.replace('o', '0')}_x`)).statusCode).toBe(409);
  });
});
