import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Webhook } from 'standardwebhooks';

/** A request as a receiver got it. */
export interface Received {
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** What to answer: a status (with an optional body), or never to answer at all. */
export type Answer = number | { status: number; body?: string; headers?: Record<string, string>; endless?: boolean } | 'hang';

/**
 * A real HTTP server on loopback that records every request, as a service receiving webhooks (or serving a token
 * hook) would. `answer` decides each reply from the request and how many came before it.
 */
export class Receiver {
  readonly received: Received[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly server: http.Server;
  url = '';

  private constructor(public answer: (request: Received, index: number) => Answer) {
    this.server = http.createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(request.headers)) if (typeof value === 'string') headers[name] = value;
        const received = { path: request.url ?? '/', headers, body: Buffer.concat(chunks).toString('utf8') };
        const index = this.received.length;
        this.received.push(received);
        const answer = this.answer(received, index);
        if (answer === 'hang') return;
        const { status, body = '', headers: extra = {}, endless = false } = typeof answer === 'number' ? { status: answer } : answer;
        response.writeHead(status, { 'content-type': 'application/json', ...extra });
        if (!endless) {
          response.end(body);
          return;
        }
        // An answer that never ends: the sender must stop reading on its own.
        const chunk = Buffer.alloc(16 * 1024, 'x');
        const pump = () => {
          while (!response.destroyed && response.write(chunk));
          if (!response.destroyed) response.once('drain', pump);
        };
        pump();
      });
    });
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  static async start(answer: (request: Received, index: number) => Answer = () => 204, port = 0): Promise<Receiver> {
    const receiver = new Receiver(answer);
    await new Promise<void>((resolve) => receiver.server.listen(port, '127.0.0.1', resolve));
    receiver.url = `http://127.0.0.1:${(receiver.server.address() as AddressInfo).port}`;
    return receiver;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** The requests whose `webhook-id` is `id`. */
  withId(id: string): Received[] {
    return this.received.filter((r) => r.headers['webhook-id'] === id);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** The payload of a request signed with `secret`, as a receiver using the `standardwebhooks` package reads it; throws if the signature is wrong. */
export function verified(secret: string, request: Received): { type: string; timestamp: string; data: Record<string, any> } {
  return new Webhook(secret).verify(request.body, request.headers) as { type: string; timestamp: string; data: Record<string, any> };
}

/** Polls `check` until it gives a value (or true); fails after about 60 seconds. */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, what = 'condition'): Promise<T> {
  for (let i = 0; ; i++) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (i > 1200) throw new Error(`${what}: not reached`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
