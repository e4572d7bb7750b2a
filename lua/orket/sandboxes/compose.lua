-- orket.sandboxes.compose: the same service a sandbox runs, written for deploying elsewhere:
-- compose.yaml (Compose specification: build, command, environment, ports, healthcheck) and,
-- when the tree has none, a Dockerfile for its stack. Text only; `orket sandbox compose`
-- writes the files. Every scalar is emitted as a JSON string, which is a valid YAML
-- double-quoted scalar, so no value from the tree can change the document's structure.
-- Contract: docs/sandbox.md.
local cjson = require "cjson"
local plan_mod = require "orket.sandboxes.plan"

local M = {}

M.PORT = 8080 -- the port inside the container

local function q(s) return (cjson.encode(tostring(s)):gsub("\\/", "/")) end

local function flow(list)
  local out = {}
  for i, a in ipairs(list) do out[i] = q(a) end
  return "[" .. table.concat(out, ", ") .. "]"
end

--- health_test(health, port) -> the health check as a command every image with bash can
--- run (also a sandbox's services' own check, orket.sandboxes.supervise): a TCP connect
--- through bash's /dev/tcp, and for HTTP a request whose status line must be 2xx or 3xx. In
--- the CMD-SHELL form, one string for /bin/sh: podman-compose (Debian 12's 1.0.3) joins a
--- CMD list's words with quotes that break any word holding a space, so the check always
--- failed. The script holds no single quote (the path keeps only what a URL path needs and
--- no shell reads inside double quotes), so it goes between single quotes as it is.
local function health_test(h, port)
  local script
  if h.kind == "http" then
    local path = h.path:gsub("[^%w%-%._~/%?=&+:@,;%%]", ""):gsub("%%", "%%%%")
    script = string.format("exec 3<>/dev/tcp/127.0.0.1/%d && printf \"GET %s HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n\" >&3 "
      .. "&& head -n 1 <&3 | grep -q \" [23][0-9][0-9]\"", port, path)
  else
    script = string.format("exec 3<>/dev/tcp/127.0.0.1/%d", port)
  end
  return { "CMD-SHELL", "exec bash -c '" .. script .. "'" }
end

M.health_test = health_test

local function seconds(ms) return string.format("%ds", math.max(1, (ms + 999) // 1000)) end

--- yaml(plan [, {name=, port=, context=, dockerfile=}]) -> the text of compose.yaml; context
--- is the build context (default "."), dockerfile the Dockerfile's path from it
function M.yaml(p, o)
  o = o or {}
  local port = o.port or M.PORT
  local name = (o.name or "app"):lower():gsub("[^%w_-]", "-")
  -- the app listens where $HOST and the port variable say: all interfaces in a container
  local env = { [p.port_env] = tostring(port), HOST = "0.0.0.0" }
  for k, v in pairs(p.env or {}) do env[k] = v end
  local keys = {}
  for k in pairs(env) do keys[#keys + 1] = k end
  table.sort(keys)
  local h = p.health
  local lines = {
    "# Written by `orket sandbox compose`: the service Orket runs in its sandbox, for deploying",
    "# it elsewhere (`docker-compose up`, `docker compose up` or `podman-compose up`). Stack: " .. p.stack .. ".",
    "services:",
    "  " .. q(name) .. ":",
    "    build:",
    "      context: " .. q(o.context or "."),
    "    command: " .. flow(plan_mod.argv(p, "0.0.0.0", port)),
    "    environment:",
  }
  if o.dockerfile then table.insert(lines, 7, "      dockerfile: " .. q(o.dockerfile)) end
  for _, k in ipairs(keys) do lines[#lines + 1] = "      " .. q(k) .. ": " .. q(env[k]) end
  lines[#lines + 1] = "    ports:"
  lines[#lines + 1] = "      - " .. q(port .. ":" .. port)
  lines[#lines + 1] = "    healthcheck:"
  lines[#lines + 1] = "      test: " .. flow(health_test(h, port))
  lines[#lines + 1] = "      interval: " .. q(seconds(h.interval_ms))
  lines[#lines + 1] = "      timeout: " .. q(seconds(h.timeout_ms))
  lines[#lines + 1] = "      retries: " .. h.failures
  lines[#lines + 1] = "      start_period: " .. q(seconds(h.start_timeout_ms))
  lines[#lines + 1] = "    restart: \"unless-stopped\""
  return table.concat(lines, "\n") .. "\n"
end

-- Each stack's image: its runtime's official slim image, the dependencies installed the way
-- the plan found them, the tree copied in.
local BASES = {
  node = "node:20-bookworm-slim",
  python = "python:3.11-slim-bookworm",
  go = "golang:1.19-bookworm",
  make = "debian:12-slim",
  custom = "debian:12-slim",
}

-- What the image leaves out of the tree: the repository's history (.git holds every version
-- of every file, secrets once committed and removed too).
M.DOCKERIGNORE = "# Written by `orket sandbox compose`: what the image leaves out of the tree.\n"
  .. ".git\n.gitignore\n.dockerignore\n"

--- dockerfile(plan) -> the text of a Dockerfile | nil when the tree has its own. The tree
--- is copied in owned by an unprivileged user, `app`, who runs the service.
function M.dockerfile(p)
  if p.dockerfile then return nil end
  local lines = {
    "# Written by `orket sandbox compose` for a tree without a Dockerfile (stack: " .. p.stack .. ").",
    "FROM " .. BASES[p.stack],
  }
  if p.stack == "make" or p.stack == "custom" then
    lines[#lines + 1] = "RUN apt-get update && apt-get install -y --no-install-recommends make build-essential "
      .. "&& rm -rf /var/lib/apt/lists/*"
  end
  -- the service runs as a user of its own, never as root; it may write its tree as it
  -- does in a sandbox
  lines[#lines + 1] = "RUN useradd --create-home --user-group --uid 10001 app"
  lines[#lines + 1] = "WORKDIR /app"
  if p.stack == "node" then
    lines[#lines + 1] = "COPY package*.json ./"
    lines[#lines + 1] = "RUN npm install --omit=dev"
  elseif p.stack == "python" and p.install then
    if p.install[#p.install] == "requirements.txt" then
      lines[#lines + 1] = "COPY requirements.txt ./"
      lines[#lines + 1] = "RUN python3 -m pip install --no-cache-dir -r requirements.txt"
    end
  end
  lines[#lines + 1] = "COPY --chown=app:app . ."
  if p.stack == "python" and p.install and p.install[#p.install] == "." then
    lines[#lines + 1] = "RUN python3 -m pip install --no-cache-dir ."
  elseif p.stack == "go" then
    lines[#lines + 1] = "RUN go build ./..."
  end
  lines[#lines + 1] = "USER app"
  lines[#lines + 1] = "EXPOSE " .. M.PORT
  lines[#lines + 1] = "CMD " .. flow(plan_mod.argv(p, "0.0.0.0", M.PORT))
  return table.concat(lines, "\n") .. "\n"
end

return M
