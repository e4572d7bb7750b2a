-- orket.cost: what model calls cost (docs/cost.md). Prices come from orket.lua's
-- models.prices, per "provider:model", per million tokens; amounts are kept as integers
-- of micro-units of the currency (1 USD = 1,000,000), so sums over a day of calls are
-- exact and never drift as floats would. A call's cost is rounded once, to the nearest
-- micro-unit. A call of a model with no price has no cost ("unknown"), never 0; one whose
-- provider reported no usage is charged its estimate (orket.engine.spend.record).
local M = {}

M.UNIT = 1000000 -- micro-units in one unit of a currency; also tokens in a price's million

-- ISO 4217 codes a price may name: the currencies in use (ISO 4217's list one), not its
-- funds, metals or test codes (CLF, XAU, XTS), which no one is billed in. Anything else is
-- a typo.
M.CURRENCIES = {}
for c in ([[AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL
  BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR
  FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY
  KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU
  MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD
  RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY
  TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
  ZWL]]):gmatch("%u%u%u") do M.CURRENCIES[c] = true end

local FIELDS = { input = true, cached_input = true, output = true, currency = true }
local AMOUNTS = { "input", "cached_input", "output" }

-- An amount in micro-units: a number or decimal text of at most 6 decimals, >= 0 and
-- below a billion. nil plus why otherwise.
function M.micros(v)
  local s
  if math.type(v) == "integer" then
    s = tostring(v)
  elseif math.type(v) == "float" then
    if v ~= v or v < 0 or v >= 1e9 then return nil, "must be from 0 to 999999999" end
    s = string.format("%.6f", v + 0.0) -- (-0.0 + 0.0 is 0.0: a zero, not a negative)
    -- a float written with more than 6 decimals would be silently rounded
    if math.abs(tonumber(s) - v) > 1e-9 * math.max(1, v) then return nil, "has more than 6 decimals" end
  elseif type(v) == "string" then
    s = v
  else
    return nil, "must be a number or decimal text such as \"0.15\" (got " .. type(v) .. ")"
  end
  -- "-0" and "-0.00" are zero, not negative
  if s:match("^%-%d") and s:match("^%-0*%.?0*$") then s = s:sub(2) end
  if s:sub(1, 1) == "-" then return nil, "must not be negative (got " .. s .. ")" end
  local int, frac = s:match("^(%d+)%.?(%d*)$")
  if not int then return nil, "must be a decimal number (got \"" .. s .. "\")" end
  frac = frac:gsub("0+$", "")
  if #frac > 6 then return nil, "has more than 6 decimals (got " .. s .. ")" end
  if #int > 9 then return nil, "must be from 0 to 999999999" end
  return math.tointeger(tonumber(int) * M.UNIT + tonumber((frac .. "000000"):sub(1, 6)))
end

--- price(v, at) -> {input=, cached_input=, output= (micro-units per million tokens),
--- currency=} | nil, "at.field message"
function M.price(v, at)
  if type(v) ~= "table" then return nil, at .. " must be a table {input=, cached_input=, output=, currency=}" end
  for k in pairs(v) do
    if not FIELDS[k] then
      return nil, at .. "." .. tostring(k) .. " is not a price field (input, cached_input, output, currency)"
    end
  end
  local out = {}
  for _, k in ipairs(AMOUNTS) do
    if v[k] == nil then return nil, at .. "." .. k .. " is missing (a price per million tokens)" end
    local m, why = M.micros(v[k])
    if not m then return nil, at .. "." .. k .. " " .. why end
    out[k] = m
  end
  if v.currency == nil then return nil, at .. ".currency is missing (an ISO 4217 code such as \"USD\")" end
  if type(v.currency) ~= "string" or not M.CURRENCIES[v.currency] then
    return nil, at .. ".currency must be the ISO 4217 code of a currency in use, such as \"USD\" (got "
      .. tostring(v.currency) .. ")"
  end
  out.currency = v.currency
  return out
end

--- prices(models_prices) -> {["provider:model"] = price} | nil, message: the whole section
--- (orket.lua's models.prices) checked; messages name the field, as "models.prices[...]".
function M.prices(t)
  if t == nil then return {} end
  if type(t) ~= "table" then return nil, "models.prices must be a table of \"provider:model\" = {...}" end
  local out = {}
  for spec, v in pairs(t) do
    local at = string.format("models.prices[%q]", tostring(spec))
    if type(spec) ~= "string" or not spec:match("^[%w_%-%.]+:.+$") then
      return nil, at .. " must name a model as \"provider:model\""
    end
    local p, err = M.price(v, at)
    if not p then return nil, err end
    out[spec] = p
  end
  return out
end

-- Below this an input or output price per million tokens looks written per 1,000 tokens,
-- as some price lists give them (0.0025 for 2.50 per million: 1000 times too small), in
-- micro-units: 0.005 of a unit. Real prices go as low as 0.01 USD a million (a 1B model's
-- input and output, a small embedding model's), so the line is under them, and over the
-- input price per 1,000 tokens of all but the dearest models in a currency near the
-- dollar (a mistake made in one field is made in all; docs/cost.md says what is missed).
-- Cached input is not judged: real ones go as low as 0.0025 USD a million (a nano
-- model's batch price). 0 is no mistake (a local model costs nothing).
M.PLAUSIBLE_MIN = 5000
local JUDGED = { "input", "output" }

--- price_warnings(models_prices) -> {messages}: for each nonzero input or output amount
--- below PLAUSIBLE_MIN of a price the section's check accepted, and each cached_input above
--- its input, a message naming the field (sorted), as "orket.lua: models.prices[...].input
--- is ..."; {} for a section refused.
function M.price_warnings(t)
  local parsed = M.prices(t)
  local out = {}
  if not parsed then return out end
  for spec, p in pairs(parsed) do
    local per_1k = false
    for _, k in ipairs(JUDGED) do
      local m = p[k]
      if m > 0 and m < M.PLAUSIBLE_MIN then
        per_1k = per_1k or k == "input"
        out[#out + 1] = string.format("orket.lua: models.prices[%q].%s is %s per million tokens: it looks "
          .. "like a price per 1,000 tokens; prices are per million (per million it would be %s)", spec, k,
          M.format(m, p.currency), M.format(m * 1000, p.currency))
      end
    end
    -- every provider bills a cached prompt token below an uncached one (or alike, without
    -- a discount): more is a mistake of one of the two, as "cached_input" and "input"
    -- swapped, and every cached token would be charged more than it cost. Not said again
    -- of an input already said to be per 1,000 tokens.
    if p.cached_input > p.input and not per_1k then
      out[#out + 1] = string.format("orket.lua: models.prices[%q].cached_input is %s per million tokens, more "
        .. "than its input (%s): providers bill cached prompt tokens below uncached ones (the same when they "
        .. "give no discount); check the two", spec, M.format(p.cached_input, p.currency), M.format(p.input, p.currency))
    end
  end
  table.sort(out)
  return out
end

-- The most tokens of one kind a call may report: 2^31 - 1, far beyond any model's
-- context. With prices below a billion a unit, no product of the two passes 2^63.
M.MAX_TOKENS = 2147483647

-- The most a call's cost is counted as, in micro-units: a billion units, more than any
-- budget or price may be, so sums of many such calls still fit an integer.
M.MAX_COST = 1000000000 * M.UNIT

local USAGE_FIELDS = { "prompt_tokens", "completion_tokens", "cached_tokens" }

--- usage_error(u) -> nil | why: a reported usage {prompt_tokens=, completion_tokens=,
--- cached_tokens=} (each optional) whose counts are not whole numbers from 0 to
--- MAX_TOKENS: a server's (or a gateway's) mistake no cost may be made of (a negative
--- count would lower the day's spending below its budget). A whole float (12.0, 1e4) is a
--- whole number.
function M.usage_error(u)
  for _, k in ipairs(USAGE_FIELDS) do
    local v = u[k]
    local n = type(v) == "number" and math.tointeger(v)
    if v ~= nil and (not n or n < 0 or n > M.MAX_TOKENS) then
      return string.format("%s is %s, not a token count (a whole number from 0 to %d)", k,
        math.type(v) == "float" and string.format("%.17g", v) or tostring(v), M.MAX_TOKENS)
    end
  end
  -- more cached than prompt tokens is priced as their sum (counted), which must be a count
  -- too: cut to MAX_TOKENS, it dropped uncached tokens and cost less than any reading
  local p, c = math.tointeger(u.prompt_tokens), math.tointeger(u.cached_tokens)
  if p and c and c > p and p + c > M.MAX_TOKENS then
    return string.format("prompt_tokens (%d) + cached_tokens (%d), read as Anthropic's counts (more cached than "
      .. "prompt tokens), is %d, not a token count (a whole number from 0 to %d)", p, c, p + c, M.MAX_TOKENS)
  end
end

--- counted(u) -> usage, note | nil: a usage usage_error accepted, its counts as integers.
--- More cached than prompt tokens is read as Anthropic counts (a relay of its models):
--- prompt_tokens leaving the cache reads out. Priced as prompt + cached tokens, cached
--- ones among them, it costs at least what any other reading would; note says so.
function M.counted(u)
  local out = {}
  for k, v in pairs(u) do out[k] = v end
  for _, k in ipairs(USAGE_FIELDS) do out[k] = out[k] ~= nil and math.tointeger(out[k]) or nil end
  local p, c = out.prompt_tokens, out.cached_tokens
  if not (p and c and c > p) then return out end
  out.prompt_tokens = p + c -- (at most MAX_TOKENS: usage_error refused a larger sum)
  return out, string.format("cached_tokens (%d) is more than prompt_tokens (%d): read as prompt tokens that leave "
    .. "the cached ones out, priced as %d prompt tokens, %d of them cached", c, p, out.prompt_tokens, c)
end

--- storable_usage(u) -> {prompt_tokens=, completion_tokens=, cached_tokens=}: a usage's
--- counts as they came, each not an integer as its text ("-1.5", "nan"), so JSON holds it
function M.storable_usage(u)
  local out = {}
  for _, k in ipairs(USAGE_FIELDS) do
    local v = u[k]
    if math.type(v) == "integer" then out[k] = v elseif v ~= nil then out[k] = string.format("%.17g", v) end
  end
  return out
end

--- plausible(v) -> the count a refused usage's value (or its storable_usage text) may be
--- taken as: a count from 0 to MAX_TOKENS as it is, a fraction in range rounded up; 0 for
--- the rest (below 0, NaN, past any context)
function M.plausible(v)
  v = tonumber(v)
  if not v or v ~= v or v < 0 or v > M.MAX_TOKENS then return 0 end
  return math.tointeger(math.ceil(v)) or 0
end

-- A count as the cost takes it: from 0 to MAX_TOKENS whatever came (usage_error refused
-- the rest before; a usage recorded earlier may not have been checked).
local function count(n)
  n = math.tointeger(n) or 0
  return math.max(0, math.min(n, M.MAX_TOKENS))
end

-- sum of tokens * price / UNIT over the pairs, rounded half up once, at most MAX_COST:
-- each price's whole units and its fraction apart, so no product passes 2^63 (a count
-- below 2^31 times a price below 10^15)
local function priced(pairs_, round_up)
  local whole, frac = 0, 0
  for i = 1, #pairs_, 2 do
    local n, p = pairs_[i], pairs_[i + 1]
    whole, frac = whole + n * (p // M.UNIT), frac + n * (p % M.UNIT)
  end
  local r = round_up and (frac + M.UNIT - 1) // M.UNIT or (frac + M.UNIT // 2) // M.UNIT
  return math.min(whole + r, M.MAX_COST)
end

--- of(price, usage) -> micro-units | nil: a call's cost from the provider's usage
--- {prompt_tokens (cached included), cached_tokens, completion_tokens, estimated}. nil
--- when there is no price or the usage was estimated (the provider reported none: the
--- caller charges the estimate before the call instead, orket.engine.spend.record).
--- From 0 to MAX_COST, whatever the counts.
function M.of(price, u)
  if not price or not u or u.estimated then return nil end
  local prompt = count(u.prompt_tokens)
  local cached = math.min(count(u.cached_tokens), prompt)
  local out = count(u.completion_tokens)
  return priced({ prompt - cached, price.input, cached, price.cached_input, out, price.output })
end

--- estimate(price, prompt_tokens, max_output_tokens) -> micro-units | nil: the most a call
--- not yet sent may cost: its whole prompt uncached, its whole allowance of output.
function M.estimate(price, prompt, max_out)
  if not price then return nil end
  return priced({ count(prompt), price.input, count(max_out), price.output }, true)
end

--- spent(micros) -> a recorded call's cost as counted: one below 0 (recorded before usages
--- were checked) as 0 (the store's sums: orket.store.costs.spent)
function M.spent(micros)
  if type(micros) ~= "number" or micros >= 0 then return micros end
  return 0
end

--- plus(a, b) -> a + b for amounts from 0 up, at most math.maxinteger: a sum that never
--- wraps to a negative
function M.plus(a, b)
  if b > 0 and a > math.maxinteger - b then return math.maxinteger end
  return a + b
end

-- The currencies of the list with no minor unit (ISO 4217's exponent 0): their amounts
-- are written with no decimals unless they have a fraction ("12 JPY", not "12.00 JPY").
-- Those whose minor unit is a thousandth (exponent 3) are written with three at least.
M.NO_MINOR = {}
for c in ("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF"):gmatch("%u+") do M.NO_MINOR[c] = true end
M.THOUSANDTHS = {}
for c in ("BHD IQD JOD KWD LYD OMR TND"):gmatch("%u+") do M.THOUSANDTHS[c] = true end

--- format(micros[, currency]) -> "0.0042 USD": at most six decimals, at least two (none
--- for a currency in NO_MINOR, when the amount is whole)
function M.format(micros, currency)
  if micros == nil then return "unknown" end
  local neg = micros < 0 and "-" or ""
  micros = math.abs(micros)
  local frac = string.format("%06d", micros % M.UNIT):gsub("0+$", "")
  local least = M.NO_MINOR[currency] and 0 or M.THOUSANDTHS[currency] and 3 or 2
  if #frac < least then frac = frac .. string.rep("0", least - #frac) end
  return string.format("%s%d%s%s%s", neg, micros // M.UNIT, #frac > 0 and "." or "", frac,
    currency and (" " .. currency) or "")
end

--- add(sums, currency, micros): sums[currency] += micros (nil: nothing known to add)
function M.add(sums, currency, micros)
  if micros and currency then sums[currency] = M.plus(sums[currency] or 0, micros) end
  return sums
end

--- text(sums) -> "0.12 USD" | "0.12 USD + 3.00 EUR" | nil (no cost known)
function M.text(sums)
  local cs = {}
  for c in pairs(sums or {}) do cs[#cs + 1] = c end
  if #cs == 0 then return nil end
  table.sort(cs)
  for i, c in ipairs(cs) do cs[i] = M.format(sums[c], c) end
  return table.concat(cs, " + ")
end

--- usage_text(totals) -> "usage: 2 calls, 8000 prompt tokens (6000 cached), 400 output
--- tokens, cost 0.0165 USD": orket.store.costs.totals as a line. The tokens say when they
--- were estimated (all, or "(1 call's estimated)"); the cost says how many calls it leaves
--- out (no price, no usage), and is left out when none is known.
function M.usage_text(t)
  local s = string.format("usage: %d call%s, %d prompt tokens%s, %d output tokens", t.calls, t.calls == 1 and "" or "s",
    t.input, t.cached > 0 and string.format(" (%d cached)", t.cached) or "", t.output)
  -- counts taken from the text, not the provider's (orket log marks each such step)
  local est = t.estimated or 0
  if est > 0 then
    s = s .. (est == t.calls and " (estimated)" or string.format(" (%d call%s estimated)", est, est == 1 and "'s" or "s'"))
  end
  local c = M.text(t.cost)
  if c then
    s = s .. ", cost " .. c
    if t.priced < t.calls then s = s .. string.format(" (%d call%s of unknown cost)", t.calls - t.priced, t.calls - t.priced == 1 and "" or "s") end
  end
  return s
end

return M
