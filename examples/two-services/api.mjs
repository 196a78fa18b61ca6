// A second service that trusts user-auth-service: it checks access tokens on its own with @user-auth/verify
// (the keys come from the service's JWKS, found through its discovery document), and never sees a password.
//
//   AUTH_URL   the service's URL, which is also its token issuer (default http://localhost:5000)
//   PORT       where this API listens (default 5001; 0 picks a free port)
//   LOG_LEVEL  info (default: each refused token with its reason), or warn (only what stops all verification)
import Fastify from 'fastify';
import { createVerifier } from '@user-auth/verify';
import { fastifyAccess } from '@user-auth/verify/fastify';

const AUTH_URL = process.env.AUTH_URL ?? 'http://localhost:5000';
const PORT = Number(process.env.PORT ?? 5001);

const verifier = createVerifier({ issuer: AUTH_URL, audience: 'user-auth-service' });
// Without a logger, a misconfigured verifier (another issuer, say) would answer 503 and say why to nobody.
const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' }, disableRequestLogging: true });
await app.register(fastifyAccess, { verifier });

// Any signed-in user: who is calling, as the token says.
app.get('/hello', { config: { access: true } }, async (request) => ({
  message: `Hello, ${request.user.username}`,
  user_id: request.user.user_id,
  session: request.user.sid,
}));

// Only for tokens that carry the role `admin`.
app.get('/admin/report', { config: { access: { roles: ['admin'] } } }, async () => ({ report: 'all figures' }));

// Only for a sign-in with a second factor (assurance level 2).
app.post('/payouts', { config: { access: { aal: 2 } } }, async () => ({ message: 'Payout scheduled' }));

const url = await app.listen({ host: '127.0.0.1', port: PORT });
console.log(`api listening on ${url}, trusting tokens of ${AUTH_URL}`);
