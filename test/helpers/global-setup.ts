import { build } from './build.js';
import { prepareClusters } from './database.js';

/**
 * Vitest's global setup, once per run before any test file: the build (in its own process) and the embedded
 * clusters every test database starts from (in this one), side by side.
 */
export default async function globalSetup(): Promise<void> {
  await Promise.all([build(), prepareClusters()]);
}
