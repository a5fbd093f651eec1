#!/usr/bin/env node
/**
 * `pulumi-resource-rootless-docker`: the plugin the Pulumi engine starts. Arguments as the engine passes them
 * (`[--logtostderr] [-v=N] [--tracing URL] ENGINE_ADDRESS`); it serves on a free loopback port and prints that
 * port as its first stdout line, which is how the engine finds it.
 */
import * as grpc from "@grpc/grpc-js";
import { RootlessDockerPlugin, serviceDefinition } from "./server";

function engineAddress(args: string[]): string | undefined {
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--tracing") i++;
    else if (args[i] !== "--logtostderr" && !args[i].startsWith("-v=")) rest.push(args[i]);
  }
  return rest[0];
}

async function main(): Promise<void> {
  const { version } = require("../../../package.json") as { version: string };
  const plugin = new RootlessDockerPlugin({ version, engineAddress: engineAddress(process.argv.slice(2)) });
  const server = new grpc.Server();
  server.addService(serviceDefinition(), plugin.service());
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  process.stdout.write(`${port}\n`);
  // The engine ends a plugin with SIGINT/SIGTERM (or by closing our stdin) once the deployment is done.
  const stop = () => {
    plugin.close();
    server.forceShutdown();
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`pulumi-resource-rootless-docker: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
