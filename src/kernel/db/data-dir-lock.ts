import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ServiceError } from '../errors.js';

const LOCK_FILE = 'user-auth.lock';

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The embedded database is one process's: a second one opening the same folder (the CLI beside a running
 * service) would work on its own copy in memory and its writes would be lost. The first process takes the folder
 * with a lock file naming its pid; the next is refused until that process has stopped. A lock left by a process
 * that died is taken over. Returns the release.
 */
export function lockDataDir(dataDir: string): () => void {
  const path = join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        process.off('exit', release);
        rmSync(path, { force: true });
      };
      process.on('exit', release);
      return release;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(readFileSync(path, 'utf8').trim());
      if (Number.isSafeInteger(holder) && holder > 0 && isRunning(holder)) {
        throw new ServiceError(
          'database_in_use',
          `the embedded database in ${dataDir} is in use by another process (pid ${holder}): stop the service first, ` +
            'or run the service and its commands on PostgreSQL (DATABASE_URL)',
        );
      }
      rmSync(path, { force: true });
    }
  }
  throw new ServiceError('database_in_use', `the embedded database in ${dataDir} is being opened by another process: try again`);
}
