// The official SDK calling server-everything's echo N times over stdio, for bench/mcp.lua:
// prints the microseconds per call. Usage: node bench_sdk.mjs SERVER_JS N
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
const [server, n] = process.argv.slice(2);
const t = new StdioClientTransport({ command: "node", args: [server, "stdio"], stderr: "ignore" });
const c = new Client({ name: "bench", version: "1" });
await c.connect(t);
for (let i = 0; i < 30; i++) await c.callTool({ name: "echo", arguments: { message: "warm" } });
const N = Number(n);
const t0 = process.hrtime.bigint();
for (let i = 0; i < N; i++) await c.callTool({ name: "echo", arguments: { message: "m" + i } });
console.log((Number(process.hrtime.bigint() - t0) / 1000 / N).toFixed(1));
await c.close();
