/**
 * A Debian tree that only runs Node.js, for end-to-end runs under a Node.js other than the machine's: Debian forky
 * ships Node.js 24. Built once with debootstrap (as the lab builds its hosts) and cached by suite and packages;
 * commands run in it with systemd-nspawn, without boot, on the machine's network, on a throw-away overlay.
 */
import { ensureTree, type TreeRecipe } from "../../lab/rootfs";
import { run, type CommandResult } from "../../lab/exec";

const NODE_TREE: TreeRecipe = {
  name: "forky-nodejs",
  suite: "forky",
  packages: ["nodejs"],
  configure: "set -eu\nnode --version\napt-get clean\n",
};

export function ensureNodeTree(log: (line: string) => void): Promise<string> {
  return ensureTree(NODE_TREE, log);
}

export interface InTreeOptions {
  /** Folders of the machine visible at the same path inside (read-write). */
  binds: string[];
  cwd: string;
  env: Record<string, string>;
  timeoutMs: number;
}

/** Runs argv in the tree; never throws on a non-zero exit. */
export function runInTree(tree: string, argv: string[], options: InTreeOptions): Promise<CommandResult> {
  return run(
    [
      "systemd-nspawn",
      "--quiet",
      "--register=no",
      "--keep-unit",
      "--volatile=overlay",
      // Pipes, not a pseudo-terminal: the CLI then prints no terminal queries into the output.
      "--console=pipe",
      `--directory=${tree}`,
      `--chdir=${options.cwd}`,
      ...options.binds.map((path) => `--bind=${path}`),
      ...Object.entries(options.env).map(([name, value]) => `--setenv=${name}=${value}`),
      "--",
      ...argv,
    ],
    { timeoutMs: options.timeoutMs },
  );
}
