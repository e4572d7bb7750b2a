-- orket.engine.setup: an engine for a project directory, wired to the real collaborators:
-- orket.lua (orket.config + engine settings), the store and board, the model client
-- (orket.llm), tools and policies (built-ins overridden by the project's), the gate, the
-- workspace, roles and routing. Used by `orket run`, `orket resume` and the REPL.
local rt = require "orket.c.runtime"
local config = require "orket.config"
local project = require "orket.project"
local board_mod = require "orket.board"
local memory_mod = require "orket.memory"
local settings_mod = require "orket.engine.settings"
local roles = require "orket.engine.roles"
local routing = require "orket.engine.routing"
local engine = require "orket.engine"

local M = {}

--- open(dir, {model=, concurrency=, emit=}) -> engine, db | nil, message, CODE
function M.open(dir, opts)
  opts = opts or {}
  local cfg, err, code = config.load(dir)
  if not cfg then return nil, err, code end
  local s, serr, scode = settings_mod.resolve(cfg)
  if not s then return nil, serr, scode end
  local home = rt.home()
  local role_set, rerr, rcode = roles.load(roles.dirs(dir))
  if not role_set then return nil, rerr, rcode end
  local route, ro_err, ro_code = routing.load(dir .. "/routing.lua")
  if not route then return nil, ro_err, ro_code end
  local tools_mod, policy, gate = require "orket.tools", require "orket.policy", require "orket.gate"
  local reg, terr, tcode = tools_mod.load_dirs { home .. "/tools", dir .. "/tools" }
  if not reg then return nil, terr, tcode end
  local pol, perr, pcode = policy.load(policy.files_in { home .. "/policies", dir .. "/policies" })
  if not pol then return nil, perr, pcode end
  local okmk = require("luv").fs_mkdir(dir .. "/workspace", 493)
  local _ = okmk
  local ws, werr, wcode = require("orket.workspace").open(dir .. "/workspace")
  if not ws then return nil, werr, wcode end
  local db, derr, dcode = project.open_store(dir, false)
  if not db then
    ws:close()
    return nil, derr, dcode
  end
  local b = board_mod.open(db)
  local client = require("orket.llm").new(cfg)
  local e = engine.new {
    db = db, board = b, memory = memory_mod.open(db), settings = s, llm = client, tools = reg,
    roles = role_set, routing = route, workspace = ws, toolcalls = require "orket.toolcalls",
    count = gate.counters_add, emit = opts.emit, concurrency = opts.concurrency,
    model = routing.override_model(opts.model),
    gate = function(input)
      input.tools, input.policies = reg, pol
      return gate.check(input)
    end,
  }
  e.dir = dir
  function e.close_all()
    ws:close()
    db:close()
  end
  return e, db
end

return M
