import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/process.js';

interface Manifest {
  engines: { node: string };
  allowScripts?: Record<string, boolean>;
}

interface LockedPackage {
  engines?: unknown;
  hasInstallScript?: boolean;
}

const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Manifest;
const locked = Object.entries((JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockedPackage> }).packages).filter(
  ([path]) => path !== '',
);

/** `node_modules/a/node_modules/@b/c` is `@b/c`; a workspace (`packages/verify`) keeps its path. */
const nameOf = (path: string) => path.replace(/^.*node_modules\//, '');

/**
 * What `npm install` and `npm ci` check in the lock file and warn about. A warning nobody acts on teaches
 * everyone to skip the install's output, and with it the next warning that matters.
 */
describe('a clean install (package-lock.json)', () => {
  it('holds no package that refuses the oldest Node the service supports (npm would warn EBADENGINE)', () => {
    const oldest = semver.minVersion(manifest.engines.node)!;
    const refusing = locked
      .filter(([, pkg]) => {
        const node = (pkg.engines as { node?: unknown } | undefined)?.node;
        return typeof node === 'string' && !semver.satisfies(oldest, node);
      })
      .map(([path, pkg]) => `${path} wants node ${(pkg.engines as { node: string }).node}`);
    expect(oldest.version).toBe('20.19.0');
    expect(refusing).toEqual([]);
  });

  it('holds no package with an install script that package.json has not approved or denied (npm would warn install-scripts)', () => {
    // Keys are a name, or a name with a version ("esbuild@0.28.2", "@scope/name@1"): the name is what is covered.
    const reviewed = new Set(Object.keys(manifest.allowScripts ?? {}).map((key) => key.replace(/(.)@.*$/, '$1')));
    const unreviewed = locked.filter(([path, pkg]) => pkg.hasInstallScript && !reviewed.has(nameOf(path))).map(([path]) => path);
    expect(unreviewed).toEqual([]);
  });
});
