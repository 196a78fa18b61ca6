import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../helpers/app.js';

let t: TestApp;
let port: number;
beforeAll(async () => {
  t = await startTestApp();
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  port = (t.app.server.address() as { port: number }).port;
});
afterAll(async () => {
  await t.close();
});

/** Sends raw bytes and reads until the server closes the connection or `waitMs` passes. */
function raw(bytes: string, waitMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(answer);
    }, waitMs);
    socket.on('data', (chunk) => (answer += chunk.toString('latin1')));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(answer);
    });
    socket.on('error', reject);
    socket.write(bytes);
  });
}

function parseRaw(answer: string): { status: number; headers: Record<string, string>; body: string } {
  const [head, body = ''] = answer.split('\r\n\r\n');
  const [statusLine, ...lines] = head!.split('\r\n');
  const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine!.split(' ')[1]), headers, body };
}

/** The house style: JSON with exactly `error` and `message`, and the security headers. */
function expectHouseStyle(status: number, headers: Record<string, unknown>, body: string, code: string): void {
  expect(String(headers['content-type'])).toMatch(/^application\/json/);
  expect(headers['x-content-type-options']).toBe('nosniff');
  expect(headers['content-security-policy']).toBeTruthy();
  const parsed = JSON.parse(body) as Record<string, unknown>;
  expect(Object.keys(parsed).sort()).toEqual(['error', 'message']);
  expect(parsed['error']).toBe(code);
  expect(status).toBeGreaterThanOrEqual(400);
  expect(status).toBeLessThan(500);
}

describe("the framework's own refusals", () => {
  it('answer a URL that cannot be decoded with the usual error body and security headers', async () => {
    for (const url of ['/api/auth/%zz', '/%E0%A4%A', '/api/auth/sessions/%']) {
      const response = await fetch(`http://127.0.0.1:${port}${url}`);
      const headers = Object.fromEntries(response.headers);
      expect(response.status, url).toBe(400);
      expectHouseStyle(response.status, headers, await response.text(), 'invalid_request');
    }
  });

  it('answer oversized headers with 431 headers_too_large in JSON, then close', async () => {
    const answer = parseRaw(await raw(`GET /api/auth/me HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`));
    expect(answer.status).toBe(431);
    expectHouseStyle(answer.status, answer.headers, answer.body, 'headers_too_large');
    expect(answer.headers['connection']).toBe('close');
  });

  it('answer a request that is not HTTP with 400 invalid_request in JSON', async () => {
    const answer = parseRaw(await raw('HELLO THERE\r\n\r\n'));
    expect(answer.status).toBe(400);
    expectHouseStyle(answer.status, answer.headers, answer.body, 'invalid_request');
  });

  it('answer an OPTIONS request that is not a valid preflight in JSON, not text', async () => {
    for (const headers of [{}, { origin: 'https://app.example.com' }, { 'access-control-request-method': 'POST' }]) {
      const response = await t.app.inject({ method: 'OPTIONS', url: '/api/auth/login', headers });
      expect(response.statusCode).toBe(400);
      expectHouseStyle(response.statusCode, response.headers, response.body, 'invalid_request');
    }
  });
});

describe('slow clients', () => {
  /**
   * Sends a login body one byte at a time, `everyMs` apart, and resolves with what the server answered and how
   * many bytes it took before the connection closed.
   */
  function trickle(targetPort: number, everyMs: number, maxBytes: number): Promise<{ answer: string; sent: number }> {
    const body = JSON.stringify({ username: 'slow_client', password: 'x'.repeat(maxBytes) });
    return new Promise((resolve, reject) => {
      const socket = connect(targetPort, '127.0.0.1');
      let answer = '';
      let sent = 0;
      const timer = setInterval(() => {
        if (sent >= body.length || socket.destroyed) return;
        socket.write(body[sent]!);
        sent += 1;
      }, everyMs);
      socket.on('data', (chunk) => (answer += chunk.toString('latin1')));
      socket.on('close', () => {
        clearInterval(timer);
        resolve({ answer, sent });
      });
      socket.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code !== 'ECONNRESET' && error.code !== 'EPIPE') reject(error);
      });
      socket.write(`POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
    });
  }

  it('are answered 408 request_timeout and disconnected once REQUEST_TIMEOUT_SECONDS has passed', async () => {
    const slow = await startTestApp({ REQUEST_TIMEOUT_SECONDS: '2', HEADERS_TIMEOUT_SECONDS: '1' });
    try {
      await slow.app.listen({ host: '127.0.0.1', port: 0 });
      const slowPort = (slow.app.server.address() as { port: number }).port;
      // 100 ms a byte: the whole body would take over a minute; the server must not wait for it.
      const { answer, sent } = await trickle(slowPort, 100, 600);
      expect(sent).toBeLessThan(600);
      const parsed = parseRaw(answer);
      expect(parsed.status).toBe(408);
      expectHouseStyle(parsed.status, parsed.headers, parsed.body, 'request_timeout');
    } finally {
      await slow.close();
    }
  });

  it('are given the time the settings allow', async () => {
    expect(t.app.server.requestTimeout).toBe(30_000);
    expect(t.app.server.headersTimeout).toBe(10_000);
    expect(t.app.server.keepAliveTimeout).toBe(72_000);
  });
});
