// How another Node service checks this service's access tokens: no call to the auth service per request.
import { createRemoteJWKSet, jwtVerify } from 'jose';

const AUTH_URL = process.env.AUTH_URL ?? 'http://localhost:5000';
// The discovery document names the issuer to expect and where the public keys are.
const discovery = await (await fetch(new URL('/.well-known/openid-configuration', AUTH_URL))).json();
// Cached, and fetched again when a token names a key it has not seen (after a key rotation).
const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));

export async function verifyAccessToken(token) {
  const { payload } = await jwtVerify(token, jwks, { issuer: discovery.issuer, audience: 'user-auth-service' });
  return { userId: payload.sub, username: payload.username, sessionId: payload.sid };
}

if (process.argv[2]) console.log(JSON.stringify(await verifyAccessToken(process.argv[2])));
