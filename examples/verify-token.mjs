// How another Node service checks this service's access tokens: no call to the auth service per request.
import { createRemoteJWKSet, jwtVerify } from 'jose';

const AUTH_URL = process.env.AUTH_URL ?? 'http://localhost:5000';
const jwks = createRemoteJWKSet(new URL('/.well-known/jwks.json', AUTH_URL)); // cached; refetched for an unknown kid

export async function verifyAccessToken(token) {
  const { payload } = await jwtVerify(token, jwks, { issuer: AUTH_URL, audience: 'user-auth-service' });
  return { userId: payload.sub, username: payload.username, sessionId: payload.sid };
}

if (process.argv[2]) console.log(await verifyAccessToken(process.argv[2]));
