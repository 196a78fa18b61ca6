import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { Database } from '../../kernel/db/database.js';
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
 * oidc-provider's storage interface on the service's database: every object it keeps (sessions, interactions,
 * grants, codes, tokens) is a row of oidc_models, so that it survives a restart and every instance sees it. The
 * clients are not stored through here: the admin API registers them, and `clients` reads them.
 */
export function databaseAdapter(db: Database, clients: ClientSource): (name: string) => Adapter {
  return (model) => {
    if (model === 'Client') {
      return {
        find: (id) => clients(id),
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
      async upsert(id, payload, expiresIn) {
        await upsertModel(db, model, id, {
          payload: payload as Record<string, unknown>,
          grantId: payload.grantId,
          uid: payload.uid,
          userCode: payload.userCode,
          expiresInSeconds: Number.isFinite(expiresIn) && expiresIn > 0 ? Math.ceil(expiresIn) : undefined,
        });
      },
      find: async (id) => payloadOf(await findModel(db, model, id)),
      findByUid: async (uid) => payloadOf(await findModelBy(db, model, 'uid', uid)),
      findByUserCode: async (userCode) => payloadOf(await findModelBy(db, model, 'user_code', userCode)),
      consume: (id) => consumeModel(db, model, id),
      destroy: (id) => deleteModel(db, model, id),
      revokeByGrantId: (grantId) => deleteModelsOfGrant(db, model, grantId),
    };
  };
}
