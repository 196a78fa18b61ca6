import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { Database } from '../../kernel/db/database.js';
import { isServiceError } from '../../kernel/errors.js';
import { consumeModel, deleteModel, deleteModelsOfGrant, findModel, findModelBy, upsertModel, type StoredModel } from './oidc-queries.js';

/** The provider's metadata of a registered client, or undefined: the registry (oidc-clients.ts) answers for the Client model. */
export type ClientSource = (clientId: string) => Promise<AdapterPayload | undefined>;

function payloadOf(stored: StoredModel | undefined): AdapterPayload | undefined {
  if (!stored) return undefined;
  const payload = stored.payload as AdapterPayload;
  // The library reads `consumed` as "used already": a code exchanged, a refresh token rotated.
  return stored.consumedAt === null ? payload : { ...payload, consumed: Math.floor(stored.consumedAt.getTime() / 1000) };
}

/**
 * A failure of the database as the provider answers it: `503 temporarily_unavailable` (RFC 6749's word for it),
 * not the `500 server_error` it would make of an error it does not know; a value the database refused is the
 * request's fault, `400 invalid_request`.
 */
export function asProviderError(error: unknown): unknown {
  if (isServiceError(error, 'database_unavailable')) {
    return Object.assign(new errors.CustomOIDCProviderError('temporarily_unavailable', 'The database is unavailable; try again shortly'), {
      status: 503,
      statusCode: 503,
    });
  }
  if (isServiceError(error, 'invalid_request')) return new errors.InvalidRequest(error.message);
  return error;
}

/** `fn`, its failures answered as asProviderError says. */
export function guarded<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args) => {
    try {
      return await fn(...args);
    } catch (error) {
      throw asProviderError(error);
    }
  };
}

/**
 * oidc-provider's storage interface on the service's database: every object it keeps (sessions, interactions,
 * grants, codes, tokens) is a row of oidc_models, so that it survives a restart and every instance sees it. The
 * clients are not stored through here: the admin API registers them, and `clients` reads them.
 */
export function databaseAdapter(db: Database, clients: ClientSource): (name: string) => Adapter {
  return (model) => {
    if (model === 'Client') {
      return {
        find: guarded((id: string) => clients(id)),
        // Clients are registered through the admin API, never by the library (dynamic registration is off).
        upsert: async () => {},
        findByUserCode: async () => undefined,
        findByUid: async () => undefined,
        consume: async () => {},
        destroy: async () => {},
        revokeByGrantId: async () => {},
      };
    }
    return {
      upsert: guarded(async (id: string, payload: AdapterPayload, expiresIn: number) => {
        await upsertModel(db, model, id, {
          payload: payload as Record<string, unknown>,
          grantId: payload.grantId,
          uid: payload.uid,
          userCode: payload.userCode,
          expiresInSeconds: Number.isFinite(expiresIn) && expiresIn > 0 ? Math.ceil(expiresIn) : undefined,
        });
      }),
      find: guarded(async (id: string) => payloadOf(await findModel(db, model, id))),
      findByUid: guarded(async (uid: string) => payloadOf(await findModelBy(db, model, 'uid', uid))),
      findByUserCode: guarded(async (userCode: string) => payloadOf(await findModelBy(db, model, 'user_code', userCode))),
      consume: guarded((id: string) => consumeModel(db, model, id)),
      destroy: guarded((id: string) => deleteModel(db, model, id)),
      revokeByGrantId: guarded((grantId: string) => deleteModelsOfGrant(db, model, grantId)),
    };
  };
}
