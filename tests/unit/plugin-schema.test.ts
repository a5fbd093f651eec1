/**
 * The plugin's Pulumi schema is generated from the zod schema of the inputs: the same properties at every level,
 * the same enums, defaults and required fields, a description everywhere, and `connection` secret.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { z } from "zod";
import { networkArgsSchema } from "../../provider/core/schema";
import { NETWORK_DRIVERS, PORT_DRIVERS } from "../../provider/core/types";
import { NETWORK_TOKEN, packageSchema, PLUGIN_HIDDEN_INPUTS, type PropertySpec } from "../../provider/plugin/schema";

const schema = packageSchema("0.1.0");
const network = schema.resources[NETWORK_TOKEN];
const typeOf = (spec: PropertySpec) => schema.types[spec.$ref!.replace("#/types/", "")];

/** The zod object inside optional/default wrappers and unions. */
function objectOf(type: z.ZodType): z.ZodObject | undefined {
  const def = (type as unknown as { def: { type: string; innerType?: z.ZodType; options?: z.ZodType[] } }).def;
  if (def.type === "object") return type as z.ZodObject;
  if (def.innerType) return objectOf(def.innerType);
  if (def.options) return def.options.map(objectOf).find((found) => found !== undefined);
  if (def.type === "array") return objectOf((type as z.ZodArray).element as z.ZodType);
  return undefined;
}

function refOf(spec: PropertySpec): PropertySpec | undefined {
  if (spec.$ref) return spec;
  if (spec.items) return refOf(spec.items);
  return spec.oneOf?.map(refOf).find((found) => found !== undefined && typeOf(found).type === "object");
}

describe("plugin schema generated from the zod schema", () => {
  test("the Network's inputs are the zod schema's, at every nesting level, each with a description", () => {
    const compare = (zodObject: z.ZodObject, properties: Record<string, PropertySpec>, path: string, hidden: readonly string[] = []) => {
      const expected = Object.keys(zodObject.shape).filter((name) => !hidden.includes(name));
      assert.deepEqual(Object.keys(properties).sort(), expected.sort(), `properties of ${path || "Network"}`);
      for (const name of expected) {
        assert.ok(properties[name].description, `${path}${name} has a description`);
        const nested = objectOf(zodObject.shape[name] as z.ZodType);
        if (nested === undefined) continue;
        const ref = refOf(properties[name]);
        assert.ok(ref, `${path}${name} refers to an object type`);
        const type = typeOf(ref);
        assert.equal(type.type, "object");
        compare(nested, (type as { properties: Record<string, PropertySpec> }).properties, `${path}${name}.`);
      }
    };
    compare(networkArgsSchema, network.inputProperties, "", PLUGIN_HIDDEN_INPUTS);
    assert.deepEqual(network.requiredInputs, ["networkDriver"], "connection may come from the provider configuration");
  });

  test("connection is secret on the resource and in the provider configuration", () => {
    assert.equal(network.inputProperties.connection.secret, true);
    assert.equal(network.properties.connection.secret, true);
    assert.equal(schema.config.variables.connection.secret, true);
    assert.equal(schema.provider.inputProperties.connection.secret, true);
  });

  test("drivers are enums with exactly the core's values; primitive defaults are the zod defaults", () => {
    const values = (name: string) => (typeOf(network.inputProperties[name]) as { enum: { value: string }[] }).enum.map((entry) => entry.value);
    assert.deepEqual(values("networkDriver"), [...NETWORK_DRIVERS]);
    assert.deepEqual(values("portDriver"), [...PORT_DRIVERS]);
    assert.deepEqual(values("restart"), ["on-change", "never"]);
    assert.equal(network.inputProperties.ipv6.default, false);
    assert.equal(network.inputProperties.unit.default, "docker.service");
    assert.equal(network.inputProperties.dropInName.default, "override.conf");
    const connection = typeOf(network.inputProperties.connection) as { properties: Record<string, PropertySpec> };
    assert.equal(connection.properties.port.default, 22);
    // No default user: rootless Docker never runs as root, so the user is required.
    assert.equal(connection.properties.user.default, undefined);
  });

  test("every output is declared; every input is echoed as an output", () => {
    for (const name of Object.keys(network.inputProperties)) assert.ok(network.properties[name], `output ${name}`);
    for (const name of ["host", "networkDriverInEffect", "ipv6InEffect", "dropInSha256", "invocationId", "warnings", "verification"]) assert.ok(network.properties[name], `output ${name}`);
    for (const ref of JSON.stringify(schema).match(/#\/types\/[^"]+/g) ?? []) assert.ok(schema.types[ref.replace("#/types/", "")], `type ${ref} is defined`);
  });

  test("npm run build wrote the same schema to plugin/schema.json", () => {
    const written = JSON.parse(readFileSync(join(__dirname, "..", "..", "..", "plugin", "schema.json"), "utf8")) as unknown;
    const { version } = JSON.parse(readFileSync(join(__dirname, "..", "..", "..", "package.json"), "utf8")) as { version: string };
    assert.deepEqual(written, packageSchema(version));
  });
});
