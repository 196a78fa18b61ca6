// The demo page (examples/browser/) is static, served by any static server and loaded without a bundler, so the one
// library it uses travels with it: @simplewebauthn/browser's UMD bundle (it defines window.SimpleWebAuthnBrowser)
// and its license, copied byte for byte from node_modules. Run after changing that package's version:
//
//   node scripts/vendor-demo.mjs
//
// test/e2e/passkeys.test.ts fails when the copies differ from the installed package.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Where each vendored file comes from, relative to the repository. */
const VENDORED = [
  {
    from: 'node_modules/@simplewebauthn/browser/dist/bundle/index.umd.min.js',
    to: 'examples/browser/vendor/simplewebauthn-browser/index.umd.min.js',
  },
  {
    from: 'node_modules/@simplewebauthn/browser/LICENSE.md',
    to: 'examples/browser/vendor/simplewebauthn-browser/LICENSE.md',
  },
];

for (const { from, to } of VENDORED) {
  mkdirSync(dirname(root + to), { recursive: true });
  copyFileSync(root + from, root + to);
  console.log(`${from} -> ${to}`);
}
