import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ROOT } from './process.js';

/**
 * `npm run build` once per run, before any test file (test/helpers/global-setup.ts), so that the processes under
 * test start from dist/ as operators run them (`node dist/cli.js`, `node dist/server.js`) instead of transpiling
 * the whole project through tsx at each start. The build is incremental (tsc -b): about a second when nothing changed.
 */
export async function build(): Promise<void> {
  try {
    await promisify(execFile)('npm', ['run', 'build', '--silent'], { cwd: ROOT, encoding: 'utf8' });
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`npm run build failed, so the built CLI and service cannot be tested:\n${stdout}${stderr}`);
  }
}
