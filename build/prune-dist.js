#!/usr/bin/env node
/**
 * tsc never deletes what it emitted for a source that was since moved or removed, and the package ships
 * dist/provider as it finds it: this step (run by `npm run build`, after tsc) removes every output under
 * dist/provider whose source is gone, and any source map (the build emits none: the package ships no sources).
 */
"use strict";
const { existsSync, readdirSync, rmSync } = require("node:fs");
const { join, relative } = require("node:path");

const root = join(__dirname, "..");
const dist = join(root, "dist", "provider");

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? walk(join(dir, entry.name)) : [join(dir, entry.name)]));
}

if (existsSync(dist)) {
  for (const file of walk(dist)) {
    const base = relative(dist, file).replace(/(\.d\.ts|\.js|\.js\.map|\.d\.ts\.map)$/, "");
    if (file.endsWith(".map") || !existsSync(join(root, "provider", `${base}.ts`))) rmSync(file);
  }
}
