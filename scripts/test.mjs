// `npm test`: the type check and the test suite side by side (the suite's setup begins with a build, which leaves
// a core idle on a small machine); fails if either fails. Arguments go to vitest.
import { spawn } from 'node:child_process';

const run = (command, args, stdio) =>
  new Promise((resolve) => {
    const child = spawn(command, args, { stdio, shell: process.platform === 'win32' });
    let output = '';
    child.stdout?.on('data', (chunk) => (output += chunk));
    child.stderr?.on('data', (chunk) => (output += chunk));
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 1 : 0), output }));
  });

const [typecheck, suite] = await Promise.all([
  run('npx', ['tsc', '--noEmit'], ['ignore', 'pipe', 'pipe']),
  run('npx', ['vitest', 'run', ...process.argv.slice(2)], 'inherit'),
]);
if (typecheck.code !== 0) process.stderr.write(`\nThe type check failed (tsc --noEmit):\n${typecheck.output}`);
else process.stdout.write('The type check passed (tsc --noEmit).\n');
process.exit(typecheck.code || suite.code);
