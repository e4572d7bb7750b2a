// The official MCP conformance suite's server scenarios against Orket's /mcp, for
// tests/e2e/mcp_test.lua. Usage: node conformance.mjs URL KEY SCENARIO...
// The suite's command line takes no headers, and every route of orket serve needs the API
// key: fetch (which the suite and the SDK under it use) is wrapped to send it. Then the
// suite's own command line runs, one scenario at a time; it exits non-zero when a check
// fails, and prints each check.
const [url, key, ...scenarios] = process.argv.slice(2);
const plain = globalThis.fetch;
globalThis.fetch = (input, init = {}) => {
  const headers = new Headers(init.headers || (input instanceof Request ? input.headers : undefined));
  headers.set("Authorization", "Bearer " + key);
  return plain(input, { ...init, headers });
};
const args = ["server", "--url", url, "--verbose"];
for (const s of scenarios) args.push("--scenario", s);
process.argv = [process.argv[0], "conformance", ...args];
await import("./node_modules/@modelcontextprotocol/conformance/dist/index.js");
