/** The package's version, from its package.json (dist/provider/version.js is two levels below the package root). */
export const VERSION: string = (require("../../package.json") as { version: string }).version;
