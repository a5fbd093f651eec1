// Writes plugin/schema.json (for `pulumi package gen-sdk plugin/schema.json`) from the compiled zod schema,
// the same text the plugin serves from GetSchema.
const { writeFileSync } = require("node:fs");
const { join } = require("node:path");
const root = join(__dirname, "..");
const { packageSchema } = require(join(root, "dist/provider/plugin/schema.js"));
const { version } = require(join(root, "package.json"));
writeFileSync(join(root, "plugin", "schema.json"), `${JSON.stringify(packageSchema(version), null, 2)}\n`);
