/**
 * The package as users get it: `npm pack` of the checkout (only the published files), installed with the
 * packages a user names into a new app folder outside the repository.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CHECKOUT } from "../../tools/pulumi/build";

/** Packs the checkout into `destination` and returns the tarball's path. */
export function packCheckout(destination: string): string {
  mkdirSync(destination, { recursive: true });
  const [packed] = JSON.parse(
    execFileSync("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", destination], { cwd: CHECKOUT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }),
  ) as { filename: string }[];
  return join(destination, packed.filename);
}

/**
 * Creates `dir` as an app that installs the tarball and `packages` from the registry (install scripts off: nothing
 * of ours or theirs needs one, and the tests run no code fetched from the registry at install time).
 */
export function installApp(dir: string, tarball: string, packages: string[]): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), `${JSON.stringify({ name: "fresh-app", private: true }, null, 2)}\n`);
  execFileSync("npm", ["install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error", tarball, ...packages], {
    cwd: dir,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 10 * 60_000,
  });
}
