import { lookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { isNonPublicAddress } from '../../kernel/ip-addresses.js';

export interface OutboundOptions {
  /** The whole call, from resolving the name to the end of the answer (or of what is read of it). */
  timeoutMs: number;
  /** Loopback, private and link-local destinations are refused unless this is true. */
  allowPrivateNetworks: boolean;
  /** What is read of the answer's body; the rest is never read. */
  maxAnswerBytes: number;
}

export interface OutboundAnswer {
  status: number;
  /** At most `maxAnswerBytes` of it, as UTF-8. */
  body: string;
  /** Whether the answer had more than was read. */
  truncated: boolean;
}

/** Why a call failed, in words that are safe to store and show: no URL's secret, no body of ours. */
export class OutboundError extends Error {
  override readonly name = 'OutboundError';
  constructor(
    message: string,
    readonly kind: 'refused' | 'timeout' | 'network',
  ) {
    super(message);
  }
}

/** The addresses `hostname` stands for; an IP address stands for itself. */
async function resolve(hostname: string): Promise<{ address: string; family: number }[]> {
  const bare = hostname.replace(/^\[(.*)\]$/, '$1');
  const family = isIP(bare);
  if (family !== 0) return [{ address: bare, family }];
  try {
    return await lookup(bare, { all: true, verbatim: true });
  } catch (error) {
    const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : 'ENOTFOUND';
    throw new OutboundError(`${bare} could not be resolved (${code})`, 'network');
  }
}

function deadline<T>(work: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new OutboundError(`no answer within ${ms} ms`, 'timeout'));
    }, ms);
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

/**
 * POSTs `body` to `url` the way a webhook must be sent to a destination someone else chose: http(s) only, to an
 * address checked when sending (the address connected to is the one checked, so a name that resolves to another
 * address a moment later, DNS rebinding, changes nothing), no redirect followed, at most `maxAnswerBytes` of the
 * answer read, and the whole call bounded by `timeoutMs` however slowly the other side goes.
 */
export async function post(url: string, body: string, headers: Record<string, string>, options: OutboundOptions): Promise<OutboundAnswer> {
  const target = new URL(url);
  if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new OutboundError(`${target.protocol} is not http or https`, 'refused');
  let request: http.ClientRequest | undefined;
  let stopped = false;
  const work = (async () => {
    const addresses = await resolve(target.hostname);
    const refused = options.allowPrivateNetworks ? undefined : addresses.find((a) => isNonPublicAddress(a.address));
    if (refused) {
      throw new OutboundError(
        `${target.hostname} resolves to ${refused.address}, a loopback, private or link-local address: refused (WEBHOOK_ALLOW_PRIVATE_NETWORKS)`,
        'refused',
      );
    }
    const chosen = addresses[0];
    if (!chosen) throw new OutboundError(`${target.hostname} resolves to no address`, 'network');
    if (stopped) throw new OutboundError('stopped', 'timeout');
    // The connection goes to the addresses checked above (each in turn, as Node tries them), whatever a second
    // resolution would say.
    const pinned: LookupFunction = (_hostname, lookupOptions, callback) => {
      if (lookupOptions.all) (callback as (error: null, addresses: { address: string; family: number }[]) => void)(null, addresses);
      else callback(null, chosen.address, chosen.family);
    };
    return new Promise<OutboundAnswer>((resolveAnswer, reject) => {
      const client = target.protocol === 'https:' ? https : http;
      request = client.request(
        target,
        {
          method: 'POST',
          headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
          lookup: pinned,
          // One connection per call: nothing pooled outlives the call's deadline.
          agent: false,
        },
        (response) => {
          const chunks: Buffer[] = [];
          let size = 0;
          let truncated = false;
          const finish = () => {
            const text = Buffer.concat(chunks).subarray(0, options.maxAnswerBytes).toString('utf8');
            resolveAnswer({ status: response.statusCode ?? 0, body: text, truncated });
          };
          response.on('data', (chunk: Buffer) => {
            chunks.push(chunk);
            size += chunk.length;
            if (size > options.maxAnswerBytes) {
              truncated = true;
              // Enough is read: the rest is not waited for.
              response.destroy();
              request?.destroy();
              finish();
            }
          });
          response.on('end', finish);
          response.on('error', (error) => (truncated ? undefined : reject(error)));
        },
      );
      request.on('error', (error: NodeJS.ErrnoException) => {
        reject(error instanceof OutboundError ? error : new OutboundError(`connection failed (${error.code ?? error.message})`, 'network'));
      });
      request.end(body);
    });
  })();
  return deadline(work, options.timeoutMs, () => {
    stopped = true;
    request?.destroy();
  });
}
