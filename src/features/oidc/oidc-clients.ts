import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { AdapterPayload } from 'oidc-provider';
import { isUniqueViolation, type Database } from '../../kernel/db/database.js';
import { sha256 } from '../../kernel/digest.js';
import { ServiceError } from '../../kernel/errors.js';
import { ACCOUNT_SCOPES, DEFAULT_SCOPE } from './oidc-claims.js';
import { deleteClient, findClient, insertClient, listClients, updateClient, type StoredClient } from './oidc-queries.js';
import './oidc-errors.js';

export const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const;
export type GrantType = (typeof GRANT_TYPES)[number];
export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'none'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

/** A client as an operator registers it: RFC 7591's names, every field optional but what its grants need. */
export interface ClientMetadata {
  client_name?: string | undefined;
  redirect_uris?: string[] | undefined;
  post_logout_redirect_uris?: string[] | undefined;
  grant_types?: string[] | undefined;
  token_endpoint_auth_method?: string | undefined;
  backchannel_logout_uri?: string | undefined;
  scope?: string | undefined;
}

/** A registered client as it is stored and shown: every field set. */
export interface RegisteredClient {
  clientId: string;
  clientName: string | undefined;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  grantTypes: GrantType[];
  tokenEndpointAuthMethod: AuthMethod;
  backchannelLogoutUri: string | undefined;
  scope: string;
  createdAt: Date;
  updatedAt: Date;
}

/** `secret` once, at registration, for a client that authenticates with one. */
export interface NewClient {
  client: RegisteredClient;
  secret: string | undefined;
}

/** Where the provider's own checks of client metadata go: throws when oidc-provider would refuse the client. */
export type MetadataCheck = (metadata: AdapterPayload) => Promise<void>;

const MAX_URIS = 20;
const MAX_URI_LENGTH = 2000;
const MAX_SCOPES = 50;
const MAX_NAME_LENGTH = 100;
// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ); short enough to read.
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,64}$/;
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);
const CLIENT_ID_BYTES = 16;
const SECRET_BYTES = 32;
/** Beside the RFC 7591 fields: the API scopes, which the provider's own `scope` (its OpenID scopes) cannot hold. */
export const API_SCOPE_METADATA = 'api_scope';

function invalid(message: string): ServiceError {
  return new ServiceError('invalid_client_metadata', message);
}

function notFound(): ServiceError {
  return new ServiceError('not_found', 'No client has this id');
}

/**
 * The apps that sign users in through this service (OpenID Connect clients), as operators register them. Every
 * client is first-party: it gets the scopes and grants it was registered with, and no consent screen.
 */
export class ClientRegistry {
  constructor(
    private readonly db: Database,
    private readonly options: {
      /** Production: redirect URIs on other hosts than this machine must be https. */
      production: boolean;
      /** Never a client id: the audience of the service's access tokens. */
      reservedIds: string[];
    },
    /** oidc-provider's own checks, where a provider is at hand. */
    private readonly check?: MetadataCheck,
  ) {}

  async register(input: ClientMetadata): Promise<NewClient> {
    const metadata = this.normalize(input);
    const secret = metadata.token_endpoint_auth_method === 'none' ? undefined : randomBytes(SECRET_BYTES).toString('base64url');
    let clientId = randomBytes(CLIENT_ID_BYTES).toString('base64url');
    while (this.options.reservedIds.includes(clientId)) clientId = randomBytes(CLIENT_ID_BYTES).toString('base64url');
    const secretHash = secret === undefined ? null : hashSecret(secret);
    await this.check?.(providerMetadata({ id: clientId, metadata, secretHash, createdAt: new Date(), updatedAt: new Date() }));
    const stored = await insertClient(this.db, { id: clientId, metadata, secretHash }).catch((error: unknown) => {
      // 128 random bits: a collision is a fault, not a request to answer.
      throw isUniqueViolation(error) ? new Error('client id collision') : error;
    });
    return { client: registered(stored), secret };
  }

  async list(): Promise<RegisteredClient[]> {
    return (await listClients(this.db)).map(registered);
  }

  async get(clientId: string): Promise<RegisteredClient> {
    const stored = await findClient(this.db, clientId);
    if (!stored) throw notFound();
    return registered(stored);
  }

  /**
   * Changes the fields given (`backchannel: null` removes the back-channel logout URI); the secret stays, so a
   * client cannot move between public and confidential.
   */
  async update(clientId: string, changes: Omit<ClientMetadata, 'backchannel_logout_uri'>, backchannel?: string | null): Promise<RegisteredClient> {
    const stored = await findClient(this.db, clientId);
    if (!stored) throw notFound();
    const current = stored.metadata as ClientMetadata;
    const merged = this.normalize({
      ...current,
      ...withoutUndefined(changes),
      backchannel_logout_uri: backchannel === null ? undefined : (backchannel ?? current.backchannel_logout_uri),
    });
    const wasPublic = stored.secretHash === null;
    if ((merged.token_endpoint_auth_method === 'none') !== wasPublic) {
      throw invalid(
        wasPublic
          ? 'token_endpoint_auth_method: this client has no secret; register a new client to authenticate with one'
          : 'token_endpoint_auth_method: this client has a secret; register a new client without one',
      );
    }
    await this.check?.(providerMetadata({ ...stored, metadata: merged }));
    const updated = await updateClient(this.db, clientId, merged);
    if (!updated) throw notFound();
    return registered(updated);
  }

  /** The client's grants, codes and tokens go with it: it signs nobody in, and its tokens stop working. */
  async remove(clientId: string): Promise<void> {
    if (!(await deleteClient(this.db, clientId))) throw notFound();
  }

  /** The client as oidc-provider reads it, or undefined. */
  async providerMetadata(clientId: string): Promise<AdapterPayload | undefined> {
    const stored = await findClient(this.db, clientId);
    return stored && providerMetadata(stored);
  }

  /** Every field checked, and every default written down. */
  private normalize(input: ClientMetadata): Record<string, unknown> & { token_endpoint_auth_method: AuthMethod } {
    const grantTypes = unique(input.grant_types ?? ['authorization_code']);
    if (grantTypes.length === 0) throw invalid('grant_types must hold at least one of ' + GRANT_TYPES.join(', '));
    const unknownGrant = grantTypes.find((grant) => !(GRANT_TYPES as readonly string[]).includes(grant));
    if (unknownGrant !== undefined) throw invalid(`grant_types: ${JSON.stringify(unknownGrant)} is not one of ${GRANT_TYPES.join(', ')}`);
    const method = input.token_endpoint_auth_method ?? 'client_secret_basic';
    if (!(AUTH_METHODS as readonly string[]).includes(method)) {
      throw invalid(`token_endpoint_auth_method: ${JSON.stringify(method)} is not one of ${AUTH_METHODS.join(', ')}`);
    }
    const code = grantTypes.includes('authorization_code');
    if (grantTypes.includes('refresh_token') && !code) throw invalid('grant_types: refresh_token comes with authorization_code');
    if (grantTypes.includes('client_credentials') && method === 'none') {
      throw invalid('grant_types: client_credentials needs a client that authenticates (a token_endpoint_auth_method other than none)');
    }
    const redirectUris = this.uris('redirect_uris', input.redirect_uris ?? []);
    if (code && redirectUris.length === 0) throw invalid('redirect_uris: the authorization_code grant needs at least one');
    if (!code && redirectUris.length > 0) throw invalid('redirect_uris: only a client with the authorization_code grant redirects');
    const postLogout = this.uris('post_logout_redirect_uris', input.post_logout_redirect_uris ?? []);
    const backchannel = input.backchannel_logout_uri === undefined ? undefined : this.uris('backchannel_logout_uri', [input.backchannel_logout_uri])[0];
    const scope = unique((input.scope ?? DEFAULT_SCOPE).split(' ').filter((token) => token !== ''));
    if (scope.length > MAX_SCOPES) throw invalid(`scope: at most ${MAX_SCOPES} values`);
    const badScope = scope.find((token) => !SCOPE_TOKEN.test(token));
    if (badScope !== undefined) throw invalid(`scope: ${JSON.stringify(badScope)} is not a scope value (RFC 6749: printable ASCII but space, " and \\, at most 64)`);
    const name = input.client_name;
    if (name !== undefined && (name.trim() === '' || name.length > MAX_NAME_LENGTH || /[\u0000-\u001F\u007F-\u009F]/.test(name))) {
      throw invalid(`client_name: 1 to ${MAX_NAME_LENGTH} characters on one line`);
    }
    return {
      ...(name === undefined ? {} : { client_name: name.trim() }),
      redirect_uris: redirectUris,
      post_logout_redirect_uris: postLogout,
      grant_types: grantTypes,
      token_endpoint_auth_method: method as AuthMethod,
      ...(backchannel === undefined ? {} : { backchannel_logout_uri: backchannel }),
      scope: scope.join(' '),
    };
  }

  /** Absolute http(s) URLs, compared as written (exact match), without a fragment or credentials. */
  private uris(field: string, uris: string[]): string[] {
    if (uris.length > MAX_URIS) throw new ServiceError('invalid_redirect_uri', `${field}: at most ${MAX_URIS}`);
    for (const uri of uris) {
      let url: URL;
      try {
        url = new URL(uri);
      } catch {
        throw new ServiceError('invalid_redirect_uri', `${field}: ${JSON.stringify(uri.slice(0, 200))} is not an absolute URL`);
      }
      const problem =
        uri.length > MAX_URI_LENGTH ? `is longer than ${MAX_URI_LENGTH} characters`
        : url.protocol !== 'https:' && url.protocol !== 'http:' ? 'is not http or https'
        : url.hash !== '' || uri.includes('#') ? 'has a fragment'
        : url.username !== '' || url.password !== '' ? 'holds credentials'
        : this.options.production && url.protocol === 'http:' && !LOOPBACK.has(url.hostname) ? 'is http on another host than this machine: production needs https'
        : undefined;
      if (problem) throw new ServiceError('invalid_redirect_uri', `${field}: ${JSON.stringify(uri.slice(0, 200))} ${problem}`);
    }
    return unique(uris);
  }
}

/** A client as the admin API and the CLI show it (RFC 7591's names). */
export function clientBody(client: RegisteredClient) {
  return {
    client_id: client.clientId,
    ...(client.clientName === undefined ? {} : { client_name: client.clientName }),
    redirect_uris: client.redirectUris,
    post_logout_redirect_uris: client.postLogoutRedirectUris,
    grant_types: client.grantTypes,
    response_types: client.grantTypes.includes('authorization_code') ? ['code'] : [],
    token_endpoint_auth_method: client.tokenEndpointAuthMethod,
    ...(client.backchannelLogoutUri === undefined ? {} : { backchannel_logout_uri: client.backchannelLogoutUri }),
    scope: client.scope,
    client_id_issued_at: Math.floor(client.createdAt.getTime() / 1000),
  };
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as Partial<T>;
}

export function hashSecret(secret: string): Buffer {
  return sha256(secret);
}

/** Whether `presented` is the secret stored as `storedHashHex` (the placeholder the provider holds), in constant time. */
export function secretMatches(storedHashHex: string, presented: string): boolean {
  const stored = Buffer.from(storedHashHex, 'hex');
  const given = hashSecret(presented);
  return stored.length === given.length && timingSafeEqual(stored, given);
}

function registered(stored: StoredClient): RegisteredClient {
  const m = stored.metadata as Record<string, any>;
  return {
    clientId: stored.id,
    clientName: m['client_name'],
    redirectUris: m['redirect_uris'] ?? [],
    postLogoutRedirectUris: m['post_logout_redirect_uris'] ?? [],
    grantTypes: m['grant_types'] ?? [],
    tokenEndpointAuthMethod: m['token_endpoint_auth_method'],
    backchannelLogoutUri: m['backchannel_logout_uri'],
    scope: m['scope'] ?? '',
    createdAt: stored.createdAt,
    updatedAt: stored.updatedAt,
  };
}

/**
 * A client as oidc-provider takes it. Its `client_secret` is the secret's SHA-256 in hex: the provider compares
 * presented secrets through `secretMatches` (see openid-provider.ts), so the secret itself is stored nowhere.
 * Its `scope` holds the OpenID scopes (the provider knows no others); the API scopes ride beside it.
 */
function providerMetadata(stored: StoredClient): AdapterPayload {
  const client = registered(stored);
  const scopes = client.scope.split(' ').filter((token) => token !== '');
  const accountScopes = scopes.filter((scope) => ACCOUNT_SCOPES.includes(scope));
  const apiScopes = scopes.filter((scope) => !ACCOUNT_SCOPES.includes(scope));
  const code = client.grantTypes.includes('authorization_code');
  return {
    client_id: client.clientId,
    ...(stored.secretHash === null ? {} : { client_secret: stored.secretHash.toString('hex') }),
    ...(client.clientName === undefined ? {} : { client_name: client.clientName }),
    redirect_uris: client.redirectUris,
    post_logout_redirect_uris: client.postLogoutRedirectUris,
    grant_types: client.grantTypes,
    response_types: code ? ['code'] : [],
    // The authorization response comes back in the redirect's query: no page of the provider's posts it on with a script.
    response_modes: ['query'],
    token_endpoint_auth_method: client.tokenEndpointAuthMethod,
    ...(client.backchannelLogoutUri === undefined ? {} : { backchannel_logout_uri: client.backchannelLogoutUri, backchannel_logout_session_required: true }),
    // Without a scope of its own, the provider would let a client ask for any: a client that signs users in may ask for `openid`, no more.
    scope: (accountScopes.length > 0 ? accountScopes : ['openid']).join(' '),
    [API_SCOPE_METADATA]: apiScopes.join(' '),
  };
}
