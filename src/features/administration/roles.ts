/** What a role may be, and how many an account may hold: the admin API's schema and the CLI's usage both show them. */
export const ROLE_PATTERN = '^[a-z0-9][a-z0-9_.:-]{0,31}$';
export const MAX_ROLES = 20;
