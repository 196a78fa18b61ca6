import { refuse, text, type SettingType } from '../../kernel/settings/setting-kinds.js';
import type { ServiceValues } from '../../kernel/settings/service-settings.js';
import { settingsTable } from '../../kernel/settings/settings-table.js';

/** `#rrggbb`, written back in lower case. */
const colour: SettingType<string> = {
  parse(value, name) {
    if (!/^#[0-9a-fA-F]{6}$/.test(value)) refuse(`${name} must be a colour as #rrggbb, e.g. #1d4ed8 (got "${value}")`);
    return value.toLowerCase();
  },
  format: (value) => value,
};

/** An absolute http(s) URL. */
const imageUrl: SettingType<string> = {
  parse(value, name) {
    const url = URL.parse(value);
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) refuse(`${name} must be an http(s) URL of an image (got "${value}")`);
    return url.href;
  },
  format: (value) => value,
};

/** How the sign-in and account pages look: the product they are for (src/features/pages). */
export const PAGE_SETTINGS = settingsTable<ServiceValues>()
  .add('PAGES_PRODUCT_NAME', {
    kind: text,
    default: 'user-auth-service',
    description: 'The name the sign-in and account pages show ("Sign in to …").',
    group: 'Pages',
  })
  .add('PAGES_LOGO_URL', {
    kind: imageUrl,
    unset: '(unset: the name alone)',
    description: "An image shown above the pages' content, e.g. `https://example.com/logo.svg`; its origin is allowed by the pages' Content-Security-Policy.",
    group: 'Pages',
  })
  .add('PAGES_ACCENT_COLOUR', {
    kind: colour,
    default: '#1d4ed8',
    description: "The pages' main colour (buttons, links), as `#rrggbb`. Text on it is white or black, whichever reads better.",
    group: 'Pages',
  })
  .validate(({ values: s }) => (s.PAGES_PRODUCT_NAME.trim() === '' || s.PAGES_PRODUCT_NAME.length > 60 ? ['PAGES_PRODUCT_NAME must be 1 to 60 characters'] : []))
  .config((s) => ({
    pages: { productName: s.PAGES_PRODUCT_NAME.trim(), logoUrl: s.PAGES_LOGO_URL, accentColour: s.PAGES_ACCENT_COLOUR },
  }));
