/**
 * The shell files of provider/remote (embedded at build time, so the core stays free of I/O), with their
 * parameters passed as a header of single-quoted assignments: a value is never spliced into the script's text.
 */
import { REMOTE_SCRIPTS, type RemoteScriptName } from "./remote-scripts.generated";

export type { RemoteScriptName };
export const REMOTE_SCRIPT_NAMES = Object.keys(REMOTE_SCRIPTS) as RemoteScriptName[];

const PARAMETER_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** One single-quoted shell word: safe for any content, including quotes and newlines. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The script `name` with `parameters` assigned right after its `#!` line (or at its top). */
export function remoteScript(name: RemoteScriptName, parameters: Readonly<Record<string, string>> = {}): string {
  const body = REMOTE_SCRIPTS[name];
  const header = Object.entries(parameters)
    .map(([key, value]) => {
      if (!PARAMETER_NAME.test(key)) throw new Error(`remote script ${name}: invalid parameter name ${JSON.stringify(key)}`);
      return `${key}=${shellQuote(value)}\n`;
    })
    .join("");
  if (header === "") return body;
  if (!body.startsWith("#!")) return header + body;
  const firstLineEnd = body.indexOf("\n") + 1;
  return body.slice(0, firstLineEnd) + header + body.slice(firstLineEnd);
}
