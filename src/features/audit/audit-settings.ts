import { integer } from '../../kernel/settings/setting-kinds.js';
import type { ServiceValues } from '../../kernel/settings/service-settings.js';
import { settingsTable } from '../../kernel/settings/settings-table.js';

export const AUDIT_SETTINGS = settingsTable<ServiceValues>()
  .add('AUDIT_RETENTION_DAYS', {
    kind: integer(1, 3650),
    default: 90,
    description: 'Audit events (sign-ins, account changes, operators\' actions) older than this many days are deleted, once an hour.',
    group: 'Audit trail',
  })
  .config((s) => ({ audit: { retentionDays: s.AUDIT_RETENTION_DAYS } }));
