import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layout CONTRIBUTING.md describes, held against the code: the kernel imports no feature, a feature imports
 * only the kernel and features below it, no file imports itself round a loop, and every file name is unique.
 */

const SRC = resolve(new URL('../src', import.meta.url).pathname);

/** Bottom up: each feature may import those before it, never those after. */
const FEATURES = ['passwords', 'rate-limits', 'tokens', 'audit', 'sessions', 'mfa', 'passkeys', 'sign-in', 'accounts', 'email', 'administration', 'webhooks', 'operations', 'oidc', 'pages'];

const files = readdirSync(SRC, { recursive: true, encoding: 'utf8' })
  .filter((file) => /\.(ts|cjs)$/.test(file))
  .map((file) => join(SRC, file));

function importsOf(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  const specifiers = [...source.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specifiers.map((spec) => resolve(dirname(file), spec).replace(/\.js$/, '.ts'));
}

function placeOf(file: string): { kind: 'kernel' | 'feature' | 'top'; feature?: string } {
  const rel = relative(SRC, file);
  if (rel.startsWith('kernel/')) return { kind: 'kernel' };
  const feature = /^features\/([^/]+)\//.exec(rel)?.[1];
  return feature ? { kind: 'feature', feature } : { kind: 'top' };
}

describe('the source layout', () => {
  it('has a rank for every feature folder', () => {
    expect(readdirSync(join(SRC, 'features')).sort()).toEqual([...FEATURES].sort());
  });

  it('keeps the kernel free of features, and each feature above the features it imports', () => {
    const wrong: string[] = [];
    for (const file of files) {
      const from = placeOf(file);
      for (const target of importsOf(file)) {
        const to = placeOf(target);
        const name = `${relative(SRC, file)} -> ${relative(SRC, target)}`;
        if (from.kind === 'kernel' && to.kind !== 'kernel') wrong.push(name);
        if (from.kind === 'feature' && to.kind === 'top') wrong.push(name);
        if (from.kind === 'feature' && to.kind === 'feature' && FEATURES.indexOf(to.feature!) > FEATURES.indexOf(from.feature!)) wrong.push(name);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('has no import cycles', () => {
    const graph = new Map(files.map((file) => [file, importsOf(file).filter((target) => target.startsWith(SRC))]));
    const state = new Map<string, 'visiting' | 'done'>();
    const cycles: string[] = [];
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'visiting') {
        cycles.push([...path.slice(path.indexOf(file)), file].map((f) => relative(SRC, f)).join(' -> '));
        return;
      }
      state.set(file, 'visiting');
      for (const target of graph.get(file) ?? []) visit(target, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of files) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it('names every file uniquely, so that a search lands on one', () => {
    const names = files.map((file) => file.split('/').pop()!);
    expect(names.filter((name, i) => names.indexOf(name) !== i)).toEqual([]);
  });
});
