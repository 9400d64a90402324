import { createServer, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Redis } from "ioredis";

/** Polls `check` until it holds; fails with `what` after `timeoutMs`. */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The test redis-server's URL; a missing URL fails the test rather than skipping it. */
export function redisUrl(): string {
  const url = process.env.SUPERSPREADER_REDIS_URL;
  if (!url) throw new Error("SUPERSPREADER_REDIS_URL is not set: run the tests through the root vitest config (it starts redis-server)");
  return url;
}

/** A connection usable by BullMQ workers too (maxRetriesPerRequest: null). */
export function connect(): Redis {
  return new Redis(redisUrl(), { maxRetriesPerRequest: null });
}

/** A key prefix / queue name no other test uses. */
export function unique(label: string): string {
  return `${label}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A node:http server on a free loopback port. */
export interface TestServer {
  readonly server: Server;
  readonly origin: string;
  close(): Promise<void>;
}

export async function listen(listener: RequestListener | Server): Promise<TestServer> {
  const server = typeof listener === "function" ? createServer(listener) : listener;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface StreamEvent {
  readonly event: string;
  readonly data: unknown;
}

/** Reads Server-Sent Events off a fetch response, across several waits. */
export class EventReader {
  readonly events: StreamEvent[] = [];
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private buffer = "";

  constructor(response: Response) {
    this.reader = response.body!.getReader();
  }

  /** Reads until `until` holds for the events seen so far (all of them, since the stream opened). */
  async until(what: string, until: (events: readonly StreamEvent[]) => boolean, timeoutMs = 10_000): Promise<StreamEvent[]> {
    const deadline = Date.now() + timeoutMs;
    while (!until(this.events)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: not within ${timeoutMs} ms; got ${JSON.stringify(this.events.map((e) => e.event))}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const idle = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: the stream sent nothing for ${left} ms`)), left);
      });
      const { done, value } = await Promise.race([this.reader.read(), idle]).finally(() => clearTimeout(timer));
      if (done) throw new Error(`${what}: the stream ended`);
      this.buffer += this.decoder.decode(value, { stream: true });
      let cut: number;
      while ((cut = this.buffer.indexOf("\n\n")) >= 0) {
        const block = this.buffer.slice(0, cut);
        this.buffer = this.buffer.slice(cut + 2);
        let event = "message";
        const data: string[] = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) event = line.slice(7);
          else if (line.startsWith("data: ")) data.push(line.slice(6));
        }
        if (data.length > 0) this.events.push({ event, data: JSON.parse(data.join("\n")) });
      }
    }
    return this.events;
  }

  close(): void {
    void this.reader.cancel().catch(() => {});
  }
}
