import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDataDir } from './helpers/database.js';
import { exitCode, freePort, ROOT, startServer, waitFor } from './helpers/process.js';

/**
 * The README's shell examples, run in order against a freshly started service in one shell (so that variables
 * set by one block are there for the next), each compared with the output the README shows after it. A block
 * preceded by `<!-- not run: why -->` is skipped: it starts the service, needs a container engine, or needs the
 * service stopped.
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
  'iat', 'exp', 'auth_time', 'jti', 'kid', 'x', 'y', 'user_agent',
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
  const want = expected.trimEnd().split('\n');
  const got = actual.replace(/\r/g, '').trimEnd().split('\n');
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

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('the README helpers', () => {
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
  });
});

describe('README.md, run top to bottom against a fresh service', () => {
  let server: ReturnType<typeof startServer>;
  /** Where the service listens: the README's http://localhost:5000, on a port that is free here. */
  let url: string;
  let folder: string;
  let shell: Shell;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'auth-readme-'));
    // As `npm start` runs it: development mode, the embedded database in a new folder, every default but the port.
    const port = await freePort();
    url = `http://localhost:${port}`;
    const dataDir = await freshDataDir('auth-readme-data-');
    // The README's administration examples use an admin key, created as it says (before the service holds the
    // folder, as the embedded database has one owner at a time) and handed to the shell as $ADMIN_KEY.
    const created = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'admin-keys:create', '--name', 'ops'], {
      cwd: ROOT,
      env: { PATH: process.env['PATH'] ?? '', DATA_DIR: dataDir },
    });
    const adminKey = created.stdout.split('\n')[0]!;
    expect(adminKey).toMatch(/^uas_admin_/);
    server = startServer({ DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'info' });
    await waitFor(server.output, /listening on/, server.child);
    shell = new Shell(folder, { ADMIN_KEY: adminKey });
  });
  afterAll(async () => {
    shell?.close();
    server?.child.kill('SIGTERM');
    if (server) await exitCode(server.child);
    await rm(folder, { recursive: true, force: true });
  });

  it('gives the output each shell example documents, in order', async () => {
    const blocks = shellBlocks(README);
    const run = blocks.filter((b) => b.skip === undefined);
    expect(run.length).toBeGreaterThan(20);
    for (const block of run) {
      const result = await shell.run(block.text.replaceAll('http://localhost:5000', url));
      // The service names itself by its URL (the issuer, the JWKS address): as the README would show it.
      result.stdout = result.stdout.replaceAll(url, 'http://localhost:5000');
      const where = `README.md line ${block.line}:\n${block.text}\n--- stdout\n${result.stdout}--- stderr\n${result.stderr}`;
      expect(result.status, where).toBe(0);
      if (block.output) {
        expect(outputMismatch(block.output.text, result.stdout), where).toBeUndefined();
      } else {
        // A block that prints must show what it prints.
        expect(result.stdout.trim(), where).toBe('');
      }
    }
  }, 600_000);
});
