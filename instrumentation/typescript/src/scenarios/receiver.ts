// A tiny OTLP/HTTP receiver on loopback that keeps each export request's raw
// body (and writes it to a directory when asked). Used to make the golden
// captures and by the tests of the scenario runner.
//
//   node dist/scenarios/receiver.js --out DIR [--port 0] [--token TOKEN]
//
// prints {"endpoint":"http://127.0.0.1:PORT"} once listening, writes
// DIR/capture-0001.pb, capture-0002.pb, ... (one per POST /v1/traces,
// ExportTraceServiceRequest protobuf as received) and DIR/requests.txt
// (path, content type, authorization check, size of each), and stops on
// SIGTERM/SIGINT. Answers 200 with an empty ExportTraceServiceResponse (or
// 401 when --token is set and the bearer token differs).
import { createServer, IncomingMessage, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { mkdirSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Received {
  path: string;
  contentType: string;
  authorization: string;
  body: Buffer;
}

export interface Receiver {
  endpoint: string;
  requests: Received[];
  close(): Promise<void>;
}

export async function startReceiver(opts: { out?: string; port?: number; token?: string } = {}): Promise<Receiver> {
  const requests: Received[] = [];
  if (opts.out) mkdirSync(opts.out, { recursive: true });
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = {
        path: req.url ?? '',
        contentType: String(req.headers['content-type'] ?? ''),
        authorization: String(req.headers['authorization'] ?? ''),
        body: Buffer.concat(chunks),
      };
      const authorized = !opts.token || r.authorization === `Bearer ${opts.token}`;
      if (req.method !== 'POST' || !r.path.startsWith('/v1/traces')) {
        res.writeHead(404).end();
        return;
      }
      if (!authorized) {
        res.writeHead(401).end();
        return;
      }
      requests.push(r);
      if (opts.out) {
        const name = `capture-${String(requests.length).padStart(4, '0')}.pb`;
        writeFileSync(join(opts.out, name), r.body);
        appendFileSync(
          join(opts.out, 'requests.txt'),
          `${name}\tPOST ${r.path}\t${r.contentType}\t${opts.token ? 'bearer token matched' : 'no token check'}\t${r.body.length} bytes\n`,
        );
      }
      // An empty ExportTraceServiceResponse is zero bytes of protobuf.
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (require.main === module) {
  startReceiver({ out: arg('out'), port: Number(arg('port') ?? 0), token: arg('token') }).then(
    (r) => {
      process.stdout.write(JSON.stringify({ endpoint: r.endpoint }) + '\n');
      const stop = () => void r.close().then(() => process.exit(0));
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    },
    (err) => {
      process.stderr.write(`receiver: ${err}\n`);
      process.exit(1);
    },
  );
}
