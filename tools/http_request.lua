-- http_request: one HTTP request to the project's live sandbox, through its socket and from
-- inside its network, never to any other host or port (docs/sandbox.md). The handler only
-- asks; the engine sends it and caps the answer (effect "sandbox", docs/tools.md).
return {
  name = "http_request",
  description = "Send one HTTP request to the app running in the project's live sandbox (main's tree after "
    .. "merges) and get its status, headers and body (the first 16 KiB). path is a path on the app, "
    .. "e.g. \"/notes?limit=2\"; no host or port can be given: only that sandbox is reachable.",
  effect = "sandbox",
  parameters = {
    type = "object",
    properties = {
      method = { type = "string", enum = { "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS" } },
      -- in characters (up to 4 bytes each), a quarter of an HTTP check's 2048 and 65536 bytes
      path = { type = "string", minLength = 1, maxLength = 512 },
      body = { type = "string", maxLength = 16384 },
      headers = { type = "object", description = "header names and their string values" },
    },
    required = { "path" },
  },
  handler = function(args)
    return { op = "http", method = args.method or "GET", path = args.path, body = args.body, headers = args.headers }
  end,
}
