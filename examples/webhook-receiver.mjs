// A service that receives this service's webhooks and answers its token hook, verifying every request with the
// `standardwebhooks` package. `node examples/webhook-receiver.mjs [host:port]` (127.0.0.1:5050 by default), with
// WEBHOOK_SECRET (the endpoint's, from POST /admin/webhooks) and TOKEN_HOOK_SECRET (the service's setting).
// Each verified event is printed as one line of JSON; GET / answers 200, for whoever waits for it to start.
import http from 'node:http';
import { Webhook } from 'standardwebhooks';

const [host, port] = (process.argv[2] ?? '127.0.0.1:5050').split(':');
const webhooks = process.env.WEBHOOK_SECRET ? new Webhook(process.env.WEBHOOK_SECRET) : undefined;
const tokenHook = process.env.TOKEN_HOOK_SECRET ? new Webhook(process.env.TOKEN_HOOK_SECRET) : undefined;

function answer(response, status, body) {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

const server = http.createServer(async (request, response) => {
  const chunks = [];
  for await (const chunk of request) chunks.push(chunk);
  const body = Buffer.concat(chunks).toString('utf8');
  if (request.method === 'GET') return answer(response, 200, { ok: true });
  try {
    if (request.url === '/webhooks' && webhooks) {
      // Throws unless the signature is the endpoint's and the timestamp within 5 minutes.
      const event = webhooks.verify(body, request.headers);
      console.log(JSON.stringify({ type: event.type, data: event.data }));
      return answer(response, 204);
    }
    if (request.url === '/hook' && tokenHook) {
      const { user } = tokenHook.verify(body, request.headers);
      // Facts of this service's own, read from the account's metadata: in every access token from now on.
      return answer(response, 200, { claims: { tenant: 'acme', plan: user.app_metadata.plan ?? 'free' } });
    }
    return answer(response, 404, { error: 'not_found' });
  } catch {
    return answer(response, 401, { error: 'bad signature' });
  }
});
server.listen(Number(port), host);

// Started in the background of a shell: it goes when that shell goes.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 500).unref();
