import { createServer } from "node:http";

/**
 * The lab's reachability target: started by the lab inside the hub netns as
 * `node target-server.js PORT ADDRESS...`. Answers every request with 200 and the address it was reached on.
 */
const [port, ...addresses] = process.argv.slice(2);
for (const address of addresses) {
  createServer((request, response) => {
    response.writeHead(200, { "content-type": "text/plain" });
    response.end(`rdl-target ${address} from ${request.socket.remoteAddress}\n`);
  }).listen(Number(port), address, () => process.stdout.write(`listening on ${address} port ${port}\n`));
}
