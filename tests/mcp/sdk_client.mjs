// The official TypeScript SDK as a client of Orket's MCP server, for tests/e2e/mcp_test.lua.
// Usage: node sdk_client.mjs stdio ORKET_BIN PROJECT_DIR | http URL KEY
// It works the board through the server and prints one JSON object of what it saw.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const [mode, a, b] = process.argv.slice(2);
const out = {};
const transport = mode === "stdio"
  ? new StdioClientTransport({ command: a, args: ["mcp", "serve", "-C", b], stderr: "inherit" })
  : new StreamableHTTPClientTransport(new URL(a), { requestInit: { headers: { Authorization: "Bearer " + b } } });
const client = new Client({ name: "orket-test", version: "1.0.0" });
const updated = [];
client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => { updated.push(n.params.uri); });

const text = (r) => r.content && r.content[0] && r.content[0].text;
async function attempt(f) {
  try { return { ok: true, value: await f() }; } catch (e) { return { ok: false, code: e.code, message: String(e.message) }; }
}

await client.connect(transport);
out.server = client.getServerVersion();
out.protocol = transport.protocolVersion || null;
out.capabilities = client.getServerCapabilities();
out.tools = (await client.listTools()).tools.map((t) => t.name).sort();
const board = JSON.parse(text(await client.callTool({ name: "board", arguments: {} })));
out.board_cards = board.cards.map((c) => c.id);
const card = await client.callTool({ name: "get_card", arguments: { id: "NOTES-1" } });
out.card_status = card.structuredContent.card.status;
out.missing = await client.callTool({ name: "get_card", arguments: { id: "NOPE-9" } });
out.bad_args = await client.callTool({ name: "comment", arguments: { id: "NOTES-1", text: "wrong field" } });
out.unknown_tool = await attempt(() => client.callTool({ name: "no_such_tool", arguments: {} }));
const created = await client.callTool({ name: "create_issue", arguments: { parent: "NOTES", summary: "Filed over MCP", priority: 1 } });
out.created = created.isError ? text(created) : created.structuredContent.card.id;
out.resources = (await client.listResources()).resources.map((r) => r.uri);
const read = await client.readResource({ uri: "orket://cards/NOTES-1" });
out.read_status = JSON.parse(read.contents[0].text).card.status;
out.read_missing = await attempt(() => client.readResource({ uri: "orket://cards/NOPE-9" }));
out.subscribe = await attempt(() => client.subscribeResource({ uri: "orket://cards/NOTES-1" }));
const commented = await client.callTool({ name: "comment", arguments: { id: "NOTES-1", body: "a comment over MCP" } });
out.commented = !commented.isError;
// over HTTP this server sends messages only in answers (no GET stream): no updates to wait for
for (let i = 0; mode === "stdio" && i < 100 && updated.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
out.updated = updated;
out.ping = await attempt(() => client.ping());
if (mode === "stdio") {
  const run = await client.callTool({ name: "start_run", arguments: { target: "NOTES-1" } });
  out.run = run.isError ? text(run) : run.structuredContent.run.target;
}
out.session = transport.sessionId || null;
if (mode !== "stdio") await transport.terminateSession();
await client.close();
console.log(JSON.stringify(out));
