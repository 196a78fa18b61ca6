import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createWriteStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REGIONS, withRegion } from '../scripts/reference-docs.js';
import { END_MARKER, START_MARKER } from '../scripts/settings-docs.js';
import { register, startTestApp, type TestApp } from './helpers/app.js';
import { migratedDataDir } from './helpers/database.js';
import { exitCode, freePort, ROOT, startServer, waitFor } from './helpers/process.js';

/**
 * The docs run. Each guide's shell examples (README.md and docs/*.md) run in order against a freshly started
 * service of its own, in one shell (so that variables set by one block are there for the next), each compared
 * with the output the guide shows after it. A block preceded by `<!-- not run: why -->` is skipped: it starts
 * the service, needs a container engine, or needs the service stopped. Beside that: every relative link and
 * anchor resolves, the API guide names every operation of the OpenAPI document, and the reference tables
 * (claims, errors, audit events, settings) list what the service has.
 */

interface Block {
  lang: string;
  text: string;
  line: number;
  /** Why the test does not run it, from the comment just before it. */
  skip?: string;
  /** The block shown right after it (no prose between): its documented output. */
  output?: Block;
}

export function shellBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: (Block & { end: number })[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]!);
    let before = start - 1;
    while (before >= 0 && lines[before]!.trim() === '') before--;
    const skip = /^<!-- not run: (.+) -->$/.exec(lines[before] ?? '')?.[1];
    blocks.push({ lang: open[1]!, text: body.join('\n'), line: start + 1, end: i, ...(skip ? { skip } : {}) });
  }
  for (let k = 0; k + 1 < blocks.length; k++) {
    const next = blocks[k + 1]!;
    const between = lines.slice(blocks[k]!.end + 1, next.line - 1);
    if (between.every((l) => l.trim() === '') && next.lang !== 'sh') blocks[k]!.output = next;
  }
  return blocks.filter((b) => b.lang === 'sh');
}

// Values that differ on every run: compared by type only.
const VARYING_KEYS = new Set([
  'access_token', 'refresh_token', 'device_token', 'created_at', 'updated_at', 'last_used_at', 'expires_at',
  'iat', 'exp', 'auth_time', 'jti', 'kid', 'x', 'y', 'user_agent', 'client_id_issued_at',
  // A second factor's secret, its URI and QR code, the recovery codes and the sign-in's mfa_token.
  'secret', 'uri', 'qr_svg', 'recovery_codes', 'mfa_token',
]);

const maskText = (line: string) =>
  line
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<uuid>')
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<time>')
    .replace(/[A-Za-z0-9_-]{40,}/g, '<token>');

function sameJson(expected: unknown, actual: unknown, path: string, key = ''): string | undefined {
  if (VARYING_KEYS.has(key) || (key === 'id' && typeof expected === 'string')) {
    return typeof expected === typeof actual ? undefined : `${path}: ${JSON.stringify(actual)} is not a ${typeof expected}`;
  }
  if (typeof expected === 'string' && typeof actual === 'string' && maskText(expected) !== expected) {
    return maskText(expected) === maskText(actual) ? undefined : `${path}: ${JSON.stringify(actual)}, documented ${JSON.stringify(expected)}`;
  }
  if (typeof expected === 'string' && expected.endsWith('…')) {
    return typeof actual === 'string' && actual.startsWith(expected.slice(0, -1)) ? undefined : `${path}: ${JSON.stringify(actual)}`;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) return `${path}: ${JSON.stringify(actual)} has not ${expected.length} items`;
    for (let i = 0; i < expected.length; i++) {
      const problem = sameJson(expected[i], actual[i], `${path}[${i}]`, key);
      if (problem) return problem;
    }
    return undefined;
  }
  if (typeof expected === 'object' && expected !== null) {
    if (typeof actual !== 'object' || actual === null || Array.isArray(actual)) return `${path}: ${JSON.stringify(actual)} is not an object`;
    const keys = Object.keys(expected).sort().join(',');
    if (Object.keys(actual).sort().join(',') !== keys) return `${path}: keys ${Object.keys(actual).join(',')}, documented ${keys}`;
    for (const [k, value] of Object.entries(expected)) {
      const problem = sameJson(value, (actual as Record<string, unknown>)[k], `${path}.${k}`, k);
      if (problem) return problem;
    }
    return undefined;
  }
  return expected === actual ? undefined : `${path}: ${JSON.stringify(actual)}, documented ${JSON.stringify(expected)}`;
}

/** Why `actual` is not the documented `expected` output, or undefined when it is (up to ids, times and tokens). */
export function outputMismatch(expected: string, actual: string): string | undefined {
  // Trailing blanks cannot be seen on the page: not compared.
  const want = expected.trimEnd().split('\n').map((line) => line.trimEnd());
  const got = actual.replace(/\r/g, '').trimEnd().split('\n').map((line) => line.trimEnd());
  if (want.length !== got.length) return `${got.length} line(s), documented ${want.length}`;
  for (let i = 0; i < want.length; i++) {
    let documented: unknown;
    try {
      documented = JSON.parse(want[i]!);
    } catch {
      documented = undefined;
    }
    if (documented !== undefined && typeof documented === 'object') {
      let answered: unknown;
      try {
        answered = JSON.parse(got[i]!);
      } catch {
        return `line ${i + 1} is not JSON: ${got[i]}`;
      }
      const problem = sameJson(documented, answered, `line ${i + 1}`);
      if (problem) return problem;
      continue;
    }
    const pattern = maskText(want[i]!).split('…').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*');
    if (!new RegExp(`^${pattern}$`).test(maskText(got[i]!))) return `line ${i + 1}: ${got[i]}\n documented: ${want[i]}`;
  }
  return undefined;
}

/** One bash for every block, so that what a block sets is there for the next. */
class Shell {
  private readonly bash: ChildProcessWithoutNullStreams;
  private stdout = '';
  private stderr = '';
  private serial = 0;

  constructor(
    private readonly folder: string,
    env: Record<string, string> = {},
  ) {
    this.bash = spawn('bash', ['--noprofile', '--norc'], { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', HOME: folder, ...env } });
    this.bash.stdout.on('data', (chunk) => (this.stdout += chunk));
    this.bash.stderr.on('data', (chunk) => (this.stderr += chunk));
  }

  /** Runs `script` (stdin from /dev/null, so nothing it runs reads the shell's own input) and returns its output. */
  async run(script: string): Promise<{ stdout: string; stderr: string; status: number }> {
    this.serial += 1;
    const file = join(this.folder, `block-${this.serial}.sh`);
    await writeFile(file, `${script}\n`);
    const marker = `@@block-${this.serial}-done@@`;
    this.stdout = '';
    this.stderr = '';
    this.bash.stdin.write(`source ${file} </dev/null; echo "${marker} $?"\n`);
    for (;;) {
      const match = new RegExp(`${marker} (\\d+)\\n`).exec(this.stdout);
      if (match) return { stdout: this.stdout.slice(0, match.index), stderr: this.stderr, status: Number(match[1]) };
      if (this.bash.exitCode !== null) throw new Error(`the shell exited ${this.bash.exitCode}: ${this.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  close(): void {
    this.bash.kill();
  }
}

const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

/** The docs whose shell examples run: the README, then every guide. */
const GUIDES = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`),
];
/** The docs whose links must resolve. */
const LINKED = ['README.md', 'CONTRIBUTING.md', ...GUIDES.filter((file) => file.startsWith('docs/'))];

/** Markdown with its fenced blocks blanked out (line numbers kept), so that code is never read as links or headings. */
function prose(markdown: string): string[] {
  let fenced = false;
  return markdown.split('\n').map((line) => {
    if (/^```/.test(line)) {
      fenced = !fenced;
      return '';
    }
    return fenced ? '' : line;
  });
}

/** The anchor GitHub gives a heading: its text in small letters, without punctuation, spaces as hyphens. */
export function headingSlug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor of a Markdown file's headings; a repeated one gets `-1`, `-2`… as on GitHub. */
export function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const found = new Set<string>();
  for (const line of prose(markdown)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const slug = headingSlug(heading[1]!);
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    found.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return found;
}

/** The relative links of a Markdown file (no URL with a scheme), with their line numbers. */
export function relativeLinks(markdown: string): { target: string; line: number }[] {
  const links: { target: string; line: number }[] = [];
  prose(markdown).forEach((text, index) => {
    // Inline code is not a link.
    const line = text.replace(/`[^`]*`/g, '');
    for (const [, target] of line.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      if (!/^[a-z][a-z0-9+.-]*:/i.test(target!)) links.push({ target: target!, line: index + 1 });
    }
  });
  return links;
}

/** Why a link of `file` does not resolve, or undefined when it does. */
function brokenLink(file: string, target: string): string | undefined {
  const [path, anchor] = target.split('#', 2) as [string, string | undefined];
  const resolved = path === '' ? file : normalize(join(dirname(file), decodeURIComponent(path)));
  if (!existsSync(join(ROOT, resolved))) return `${resolved} does not exist`;
  if (anchor === undefined) return undefined;
  if (!resolved.endsWith('.md')) return `${resolved} is not Markdown: no #${anchor} to check`;
  return anchors(read(resolved)).has(anchor) ? undefined : `${resolved} has no heading #${anchor}`;
}

/**
 * Each service a guide starts is a Node process with its own embedded database and hashing threads: a few at a
 * time, so that a small machine runs them side by side without starving them.
 */
const SERVICES_AT_ONCE = 3;
let running = 0;
const waiting: (() => void)[] = [];
async function slot<T>(work: () => Promise<T>): Promise<T> {
  while (running >= SERVICES_AT_ONCE) await new Promise<void>((resolve) => waiting.push(resolve));
  running += 1;
  try {
    return await work();
  } finally {
    running -= 1;
    waiting.shift()?.();
  }
}

/** Where a guide's examples reach a receiver of their own (a webhook receiver, say); a free port here stands for it. */
export const GUIDE_RECEIVER = '127.0.0.1:5050';

/**
 * The settings a guide's service runs with beyond the defaults, from its `<!-- service: NAME=value … -->` line: the
 * guide shows them too, for a reader to start the service alike. Its shell has them in its environment as well.
 */
export function guideSettings(markdown: string): Record<string, string> {
  const line = /^<!-- service: (.+) -->$/m.exec(markdown)?.[1];
  return Object.fromEntries((line?.split(/\s+/) ?? []).map((setting) => setting.split(/=(.*)/s).slice(0, 2) as [string, string]));
}

/**
 * A fresh service for one guide, as `npm start` runs it: development mode, the embedded database in a new
 * folder, every default but the port (and the guide's own settings), its log in `$SERVICE_LOG`. A guide whose examples
 * use `$ADMIN_KEY` gets one, created as administration.md says (before the service holds the folder: the embedded
 * database has one owner at a time).
 */
async function startGuideService(usesAdminKey: boolean, settings: Record<string, string> = {}) {
  const folder = await mkdtemp(join(tmpdir(), 'auth-docs-'));
  const port = await freePort();
  const dataDir = await migratedDataDir('auth-docs-data-');
  const env: Record<string, string> = { ...settings };
  if (usesAdminKey) {
    // The built CLI, which `npm run cli` runs (vitest's global setup built dist/ for this run).
    const created = await promisify(execFile)(process.execPath, ['dist/cli.js', 'admin-keys:create', '--name', 'ops'], {
      cwd: ROOT,
      env: { PATH: process.env['PATH'] ?? '', DATA_DIR: dataDir },
    });
    env['ADMIN_KEY'] = created.stdout.split('\n')[0]!;
    expect(env['ADMIN_KEY']).toMatch(/^uas_admin_/);
  }
  // Where the service listens: the docs' http://localhost:5000, on a port that is free here. It is the service's
  // PUBLIC_URL too, as http://localhost:5000 is by default: the addresses it hands out (its redirects) lead back to it.
  const url = `http://localhost:${port}`;
  const server = startServer({ PUBLIC_URL: url, ...settings, DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'info' });
  // The service's log, as `npm start > service.log` keeps it: the development log mailbox is there (docs/email.md).
  env['SERVICE_LOG'] = join(folder, 'service.log');
  const log = createWriteStream(env['SERVICE_LOG']);
  server.child.stdout!.pipe(log);
  server.child.stderr!.pipe(log);
  await waitFor(server.output, /listening on/, server.child);
  const shell = new Shell(folder, env);
  return {
    url,
    shell,
    async close() {
      shell.close();
      server.child.kill('SIGTERM');
      await exitCode(server.child);
      await rm(folder, { recursive: true, force: true });
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

describe('the docs helpers', () => {
  it('find each shell block with its documented output, and compare up to ids, times and tokens', () => {
    const blocks = shellBlocks('<!-- not run: starts it -->\n```sh\nnpm start\n```\n\n```sh\ncurl x\n```\n```json\n{"a":1}\n```\nprose\n```sh\ny\n```\n');
    expect(blocks).toMatchObject([{ skip: 'starts it' }, { text: 'curl x', output: { text: '{"a":1}' } }, { text: 'y' }]);
    expect(blocks[2]!.output).toBeUndefined();
    expect(outputMismatch('{"id":"a5e0c5f4-0000-4000-8000-000000000000","n":1}', '{"n":1,"id":"0e1d9a1b-1111-4111-8111-111111111111"}')).toBeUndefined();
    expect(outputMismatch('{"n":1}', '{"n":2}')).toContain('line 1.n');
    expect(outputMismatch('{"access_token":"eyJ…","n":1}', '{"access_token":"other","n":1}')).toBeUndefined();
    expect(outputMismatch('{"message":"abc…"}', '{"message":"abd"}')).toBeDefined();
    expect(outputMismatch('401 401 429', '401 401 401')).toBeDefined();
    expect(outputMismatch('created 2026-11-25T02:00:45.865Z', 'created 2027-01-01T00:00:00.000Z')).toBeUndefined();
    expect(guideSettings('# A\n<!-- service: A=1 B=x=y -->\n')).toEqual({ A: '1', B: 'x=y' });
    expect(guideSettings('# A\n')).toEqual({});
  });

  it('make the anchors GitHub makes, and find the relative links outside code', () => {
    expect(headingSlug('`POST /api/auth/register`')).toBe('post-apiauthregister');
    expect(headingSlug('`GET /.well-known/jwks.json`')).toBe('get-well-knownjwksjson');
    expect(headingSlug('`GET /`')).toBe('get-');
    expect(headingSlug('Several instances, behind a TLS-terminating proxy')).toBe('several-instances-behind-a-tls-terminating-proxy');
    expect(headingSlug('Two services: an API that trusts [these](x.md) tokens')).toBe('two-services-an-api-that-trusts-these-tokens');
    expect([...anchors('# A\n## B\n```\n# not a heading\n```\n## B\n')]).toEqual(['a', 'b', 'b-1']);
    expect(relativeLinks('[a](x.md#y) [b](https://e.org) `[c](no.md)`\n```\n[d](no.md)\n```\n[e](#f)')).toEqual([
      { target: 'x.md#y', line: 1 },
      { target: '#f', line: 5 },
    ]);
  });
});

describe.concurrent('the docs, each guide run top to bottom against a fresh service of its own', () => {
  const runnable = GUIDES.map((file) => ({ file, blocks: shellBlocks(read(file)).filter((b) => b.skip === undefined) })).filter((g) => g.blocks.length > 0);
  // The guides' shells run in the repository, as a reader's would: what they write belongs in a temporary folder.
  let rootBefore: string[];
  beforeAll(async () => {
    rootBefore = await readdir(ROOT);
  });
  afterAll(async () => {
    expect(await readdir(ROOT), 'a guide left a file in the repository').toEqual(rootBefore);
  });

  it('run every guide that has examples, the README among them', ({ expect }) => {
    expect(runnable.map((g) => g.file)).toContain('README.md');
    expect(runnable.length).toBeGreaterThan(8);
    expect(runnable.reduce((sum, g) => sum + g.blocks.length, 0)).toBeGreaterThan(40);
  });

  for (const { file, blocks } of runnable) {
    it(`${file} gives the output each shell example documents, in order`, ({ expect }) =>
      slot(async () => {
        const receiver = `127.0.0.1:${await freePort()}`;
        const settings = Object.fromEntries(Object.entries(guideSettings(read(file))).map(([name, value]) => [name, value.replaceAll(GUIDE_RECEIVER, receiver)]));
        const service = await startGuideService(read(file).includes('$ADMIN_KEY'), settings);
        try {
          for (const block of blocks) {
            const result = await service.shell.run(block.text.replaceAll('http://localhost:5000', service.url).replaceAll(GUIDE_RECEIVER, receiver));
            // The service names itself by its URL (the issuer, the JWKS address): as the docs would show it.
            result.stdout = result.stdout.replaceAll(service.url, 'http://localhost:5000').replaceAll(receiver, GUIDE_RECEIVER);
            const where = `${file} line ${block.line}:\n${block.text}\n--- stdout\n${result.stdout}--- stderr\n${result.stderr}`;
            expect(result.status, where).toBe(0);
            if (block.output) {
              expect(outputMismatch(block.output.text, result.stdout), where).toBeUndefined();
            } else {
              // A block that prints must show what it prints.
              expect(result.stdout.trim(), where).toBe('');
            }
          }
        } finally {
          await service.close();
        }
      }), 900_000);
  }
});

describe('links', () => {
  it.each(LINKED)('%s: every relative link and #anchor resolves', (file) => {
    const links = relativeLinks(read(file));
    const broken = links.map(({ target, line }) => ({ target, line, problem: brokenLink(file, target) })).filter((l) => l.problem);
    expect(broken).toEqual([]);
  });

  it('every guide is linked from the README', () => {
    const linked = new Set(relativeLinks(read('README.md')).map(({ target }) => target.split('#')[0]));
    expect(GUIDES.filter((file) => file !== 'README.md' && !linked.has(file))).toEqual([]);
  });
});

/** The rows of the Markdown table between two marker lines (or after a heading), as arrays of cells. */
function tableRows(markdown: string, start: string, end: string): string[][] {
  const from = markdown.indexOf(start);
  const to = markdown.indexOf(end, from + start.length);
  expect(from, `${start} is missing`).toBeGreaterThanOrEqual(0);
  expect(to, `${end} is missing after ${start}`).toBeGreaterThan(from);
  return markdown
    .slice(from + start.length, to)
    .split('\n')
    .filter((line) => line.startsWith('|') && !/^\|[-| ]+\|$/.test(line))
    .slice(1)
    .map((line) => line.slice(1, -1).split(' | ').map((cell) => cell.trim()));
}

const codesIn = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map(([, code]) => code!);

describe('the reference tables', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  const openApi = () => t.app.swagger() as { paths: Record<string, Record<string, { requestBody?: { content?: Record<string, { example?: unknown }> } }>> };
  const HTTP_METHODS = ['get', 'post', 'put', 'patch', 'delete'];

  it('docs/api.md names every operation of the OpenAPI document, and no other', () => {
    const operations = Object.entries(openApi().paths).flatMap(([path, methods]) =>
      Object.keys(methods)
        .filter((method) => HTTP_METHODS.includes(method))
        .map((method) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
    );
    expect(operations.length).toBeGreaterThan(40);
    const listed = tableRows(read('docs/api.md'), '## Every operation', '\n## ').map(([operation]) => codesIn(operation!)[0]);
    expect([...listed].sort()).toEqual([...operations].sort());
  });

  it("the OpenAPI document's example requests use the docs' example identity, the quick start's", () => {
    const quickStart = shellBlocks(read('README.md')).find((b) => b.text.includes('/api/auth/register'))!;
    const identity = JSON.parse(/-d '(\{.*\})'/.exec(quickStart.text)![1]!) as { username: string; password: string };
    expect(identity.username).toBe('alice');
    const PASSWORD_FIELDS = ['password', 'password_confirm', 'current_password', 'new_password', 'new_password_confirm'];
    const different: string[] = [];
    for (const [path, methods] of Object.entries(openApi().paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        const example = operation.requestBody?.content?.['application/json']?.example;
        if (typeof example !== 'object' || example === null) continue;
        for (const [field, value] of Object.entries(example)) {
          const expected = field === 'username' ? identity.username : PASSWORD_FIELDS.includes(field) ? identity.password : undefined;
          if (expected !== undefined && value !== expected) different.push(`${method.toUpperCase()} ${path}: ${field} ${JSON.stringify(value)}`);
        }
      }
    }
    expect(different).toEqual([]);
  });

  it('docs/tokens-and-sessions.md lists exactly the claims of a real access token', async () => {
    const { token } = await register(t.app);
    const claims = Object.keys(decodeJwt(token)).sort();
    expect(claims).toContain('roles');
    const documented = tableRows(read('docs/tokens-and-sessions.md'), '## Access tokens', '\n## ').flatMap(([claim]) => codesIn(claim!));
    expect(documented.sort()).toEqual(claims);
  });

  it('docs/errors.md and docs/audit.md hold the tables generated from the code (npm run docs:reference)', () => {
    for (const region of REGIONS) {
      const text = readFileSync(region.path, 'utf8');
      expect(text, `${region.path} is stale: run npm run docs:reference`).toBe(withRegion(text, region));
      expect(region.lines().length).toBeGreaterThan(10);
    }
  });

  it('docs/configuration.md holds the settings table between the markers the generator writes to', () => {
    const text = read('docs/configuration.md');
    expect(text.indexOf(START_MARKER)).toBeGreaterThan(0);
    expect(text.indexOf(END_MARKER)).toBeGreaterThan(text.indexOf(START_MARKER));
  });
});
