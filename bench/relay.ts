/**
 * Link latency without `tc netem` (this kernel has no sch_netem): a TCP relay on loopback that holds every chunk
 * for `delayMs` in each direction before passing it on, in order, FIN included. The benchmark dials the relay's
 * port instead of the host, so every byte of an SSH connection crosses the delay once each way.
 *
 * Runs as its own process (`node dist/bench/relay.js DELAY_MS HOST:PORT…`) so that its work does not share the
 * event loop of the process being measured; prints one JSON line `{"ports":[…]}` (same order as the targets) when
 * it listens.
 */
import { createServer, connect, type Server, type Socket } from "node:net";

interface Target {
  host: string;
  port: number;
}

/** Forwards `from` → `to` with every chunk (and the end of the stream) delivered `delayMs` after it arrived. */
function delayedPipe(from: Socket, to: Socket, delayMs: number): void {
  const queue: { due: number; chunk: Buffer | null }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const drain = () => {
    timer = undefined;
    const now = Date.now();
    while (queue.length > 0 && queue[0].due <= now) {
      const { chunk } = queue.shift()!;
      if (chunk === null) to.end();
      else to.write(chunk);
    }
    if (queue.length > 0) timer = setTimeout(drain, queue[0].due - now);
  };
  const enqueue = (chunk: Buffer | null) => {
    queue.push({ due: Date.now() + delayMs, chunk });
    // One timer for the head of the queue keeps delivery in arrival order.
    if (timer === undefined) timer = setTimeout(drain, delayMs);
  };
  from.on("data", (chunk: Buffer) => enqueue(chunk));
  from.on("end", () => enqueue(null));
  from.on("close", () => {
    if (queue.length === 0) to.destroy();
  });
}

function relay(target: Target, delayMs: number): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, (client) => {
    client.setNoDelay(true);
    const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true });
    upstream.setNoDelay(true);
    delayedPipe(client, upstream, delayMs);
    delayedPipe(upstream, client, delayMs);
    const abort = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", abort);
    upstream.on("error", abort);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") reject(new Error("relay: no TCP address"));
      else resolve({ server, port: address.port });
    });
  });
}

async function main(): Promise<void> {
  const [delayText, ...targetTexts] = process.argv.slice(2);
  const delayMs = Number(delayText);
  const targets = targetTexts.map((text) => {
    const separator = text.lastIndexOf(":");
    return { host: text.slice(0, separator), port: Number(text.slice(separator + 1)) };
  });
  if (!Number.isFinite(delayMs) || delayMs < 0 || targets.length === 0 || targets.some((target) => !Number.isInteger(target.port))) {
    throw new Error("usage: relay.js DELAY_MS HOST:PORT [HOST:PORT…]");
  }
  const relays = await Promise.all(targets.map((target) => relay(target, delayMs)));
  process.stdout.write(`${JSON.stringify({ ports: relays.map((entry) => entry.port) })}\n`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
