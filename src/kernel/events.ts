import { randomBytes } from 'node:crypto';
import { isTransaction, type Queryable } from './db/database.js';
import { declarations } from './declarations.js';
import type { RevokeReason } from './model.js';

/**
 * What happened to an account, told to whoever listens (the webhooks) in the transaction of the change itself:
 * no event without its change, and no change without its event. Many features make these changes and none of
 * them knows who listens: each calls `events.emit(tx, type, data)` with its transaction, and a listener writes
 * what it must (an outbox row per endpoint) in that same transaction.
 *
 * `data` always holds `user_id` (as text, like a token's `sub`) and what changed; never a password, hash, token,
 * secret or code. Each type's data is declared below; a feature adds a type of its own with `defineEventTypes`
 * and declaration merging: `declare module '../../kernel/events.js' { interface DomainEvents { 'x.y': {...} } }`.
 */
export interface DomainEvents {
  'user.created': { user_id: string; username: string };
  /** `changes` names the fields changed; each changed field is there with its new value. */
  'user.updated': {
    user_id: string;
    changes: string[];
    username?: string;
    roles?: string[];
    user_metadata?: Record<string, unknown>;
    app_metadata?: Record<string, unknown>;
    /** The address now (null: none), and whether it is verified. */
    email?: string | null;
    email_verified?: boolean;
  };
  'user.deleted': { user_id: string };
  'user.locked': { user_id: string; reason: string | null; until: string | null };
  'user.unlocked': { user_id: string };
  /** By the owner, who proved the old one (or a fresh sign-in). */
  'password.changed': { user_id: string };
  /** Without the old password: an operator's recovery code redeemed, an operator setting it, or an emailed link. */
  'password.reset': { user_id: string; method: 'recovery_code' | 'operator' | 'email' };
  'session.revoked': { user_id: string; session_ids: string[]; reason: RevokeReason };
  'mfa.enabled': { user_id: string; factor_id: string; type: 'totp' };
  /** `factor_id` absent: an operator removed every factor at once. */
  'mfa.disabled': { user_id: string; factor_id?: string; type?: 'totp' };
  'passkey.added': { user_id: string; passkey_id: string };
  'passkey.removed': { user_id: string; passkey_id: string };
}

export type EventType = keyof DomainEvents;

/** One event as listeners get it: an id that stays the same on every delivery of it, and when it happened. */
export interface DomainEvent<T extends EventType = EventType> {
  id: string;
  type: T;
  /** RFC 3339, UTC. */
  timestamp: string;
  data: DomainEvents[T];
}

export type EventListener = (tx: Queryable, event: DomainEvent) => Promise<void>;

const TYPES = declarations<string>('event type');

/** Declares event types, each with a sentence on when it happens (the webhooks guide lists them). */
export const defineEventTypes = TYPES.define;

export const KERNEL_EVENT_TYPES = defineEventTypes({
  'user.created': 'An account was created: by registration, through the admin API or by the CLI.',
  'user.updated': 'A username, roles, metadata or email address changed: `changes` names them, and each is there with its new value.',
  'user.deleted': 'An account was deleted, by its owner or an operator.',
  'user.locked': 'An operator locked the account (its sessions end too: see `session.revoked`).',
  'user.unlocked': 'An operator unlocked the account.',
  'password.changed': 'The owner changed the password.',
  'password.reset': 'The password was set without the old one: `method` is `recovery_code`, `operator` or `email` (a reset link).',
  'session.revoked': 'Sessions ended: `reason` says why (`logout`, `revoked_by_user`, `token_revoked`, `admin_logout`, `locked`, `password_change`, …).',
  'mfa.enabled': 'An authenticator app was added (confirmed with its first code).',
  'mfa.disabled': 'An authenticator app was removed, or an operator removed every second factor.',
  'passkey.added': 'A passkey was registered.',
  'passkey.removed': 'A passkey was removed, by its owner or an operator.',
});

/** Every declared type with its description, in the order declared. */
export function declaredEventTypes(): [EventType, string][] {
  return TYPES.entries() as [EventType, string][];
}

export function isEventType(name: string): name is EventType {
  return TYPES.get(name) !== undefined;
}

/** A new event id, as Standard Webhooks' `webhook-id` carries it: `msg_` and 128 random bits. */
function newEventId(): string {
  return `msg_${randomBytes(16).toString('base64url')}`;
}

/** The emitter one service instance (or one CLI run) shares between its features. */
export class Events {
  private readonly listeners: EventListener[] = [];

  listen(listener: EventListener): void {
    this.listeners.push(listener);
  }

  /**
   * Tells every listener, in `tx`: the transaction that makes the change. A listener's failure fails the
   * transaction, so the change and its event stand or fall together.
   */
  async emit<T extends EventType>(tx: Queryable, type: T, data: DomainEvents[T]): Promise<void> {
    if (!isTransaction(tx)) throw new Error(`the event ${type} was emitted outside a transaction: emit it in the transaction of its change`);
    if (this.listeners.length === 0) return;
    const event: DomainEvent<T> = { id: newEventId(), type, timestamp: new Date().toISOString(), data };
    for (const listener of this.listeners) await listener(tx, event as DomainEvent);
  }
}
