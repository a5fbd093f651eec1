import { createServer } from "node:http";

/**
 * The lab's reachability target: started by the lab inside the hub netns as
 * `node target-server.js PORT ADDRESS...`. Answers every request with 200 and the address it was reached on.
 * Logs every TCP connection with the peer and the time on CLOCK_MONOTONIC (µs; the hosts' systemd shares this
 * kernel's clock): when a host's verification reached the target, comparable with its units' start times.
 */
const [port, ...addresses] = process.argv.slice(2);
for (const address of addresses) {
  const server = createServer((request, response) => {
    response.writeHead(200, { "content-type": "text/plain" });
    response.end(`rdl-target ${address} from ${request.socket.remoteAddress}\n`);
  });
  server.on("connection", (socket) => process.stdout.write(`connection from ${socket.remoteAddress} at ${process.hrtime.bigint() / 1000n}\n`));
  server.listen(Number(port), address, () => process.stdout.write(`listening on ${address} port ${port}\n`));
}
