// The official MCP conformance suite's server scenarios against Orket's /mcp, for
// tests/e2e/mcp_test.lua. Usage: node conformance.mjs URL KEY SCENARIO... (or --list: the
// suite's server scenarios).
// The suite's command line takes no headers, and every route of orket serve needs the API
// key. The suite talks HTTP through undici, both its fetch and undici's own request (the DNS
// rebinding scenario), and both go through undici's global dispatcher: one that adds the key
// to every request is set first. Then the suite's own command line runs, one scenario at a
// time; it exits non-zero when a check fails, and prints each check.
import { Agent, setGlobalDispatcher } from "undici";

const [url, key, ...scenarios] = process.argv.slice(2);

// headers as undici hands them to a dispatcher: a flat [name, value, ...] list, an object,
// or nothing; the same kind back, with Authorization replaced
function withKey(headers) {
  const auth = "Bearer " + key;
  if (Array.isArray(headers)) {
    const out = [];
    for (let i = 0; i < headers.length; i += 2) {
      if (String(headers[i]).toLowerCase() !== "authorization") out.push(headers[i], headers[i + 1]);
    }
    return [...out, "authorization", auth];
  }
  const out = {};
  for (const [k, v] of Object.entries(headers || {})) if (k.toLowerCase() !== "authorization") out[k] = v;
  out.authorization = auth;
  return out;
}

setGlobalDispatcher(new Agent().compose((dispatch) => (opts, handler) =>
  dispatch({ ...opts, headers: withKey(opts.headers) }, handler)));

const args = url === "--list" ? ["list", "--server"] : ["server", "--url", url, "--verbose"];
for (const s of scenarios) args.push("--scenario", s);
process.argv = [process.argv[0], "conformance", ...args];
await import("./node_modules/@modelcontextprotocol/conformance/dist/index.js");
