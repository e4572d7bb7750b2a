-- orket.inert: makes hostile text (model output, tool names and arguments, cards and
-- comments agents wrote, servers' error bodies) inert before it reaches a terminal: every
-- character a terminal acts on, or that hides or reorders what is shown, is written as a
-- visible escape. Plain Lua; used by every command and view that prints such text.
local M = {}

-- Bytes worth a second look: C0 controls but tab and newline, DEL, and every non-ASCII byte
-- (C1 controls, bidi controls and invalid UTF-8 are all among them).
local SUSPECT = "[%z\1-\8\11-\31\127-\255]"
local SUSPECT_LINE = "[%z\1-\31\127-\255]"

-- Code points shown as \u{...}: C1 controls (U+0080-U+009F, which a terminal may take for
-- CSI, OSC, DCS...), and the invisible format characters that hide text or reorder it on
-- screen (the bidi embeddings, overrides and isolates "Trojan Source" uses, marks, zero
-- width spaces, word joiners, the BOM, interlinear annotations, tag characters).
-- ZWJ/ZWNJ (U+200C/D) stay: scripts and emoji need them and they reorder nothing.
-- The list and the strict UTF-8 decoding are C (core/inert.c), shared with the JSON
-- encoder (core/jsonout.c), so both print the same characters escaped.
local cinert = require "orket.c.inert"
local invisible = cinert.invisible
M.invisible = invisible

--- decode(s, i) -> length, code point of one strictly valid UTF-8 sequence of 2 to 4
--- bytes at i (no overlongs, no surrogates, at most U+10FFFF) | nil
local decode = cinert.decode
M.decode = decode

--- chars(s) -> s's length in characters as the API's schemas count them (code points: each
--- byte but a UTF-8 continuation byte starts one, and a fourth continuation byte in a row;
--- core/inert.c): the one count behind a character limit
M.chars = cinert.chars

local byte = string.byte

local NAMED = { [9] = "\\t", [10] = "\\n", [13] = "\\r" }

local function render(s, pat)
  local out, i, n = {}, 1, #s
  while i <= n do
    local j = s:find(pat, i)
    if not j then
      out[#out + 1] = s:sub(i)
      break
    end
    if j > i then out[#out + 1] = s:sub(i, j - 1) end
    local b = byte(s, j)
    if b < 0x80 then
      out[#out + 1] = NAMED[b] or string.format("\\x%02x", b)
      i = j + 1
    else
      local len, cp = decode(s, j)
      if not len then
        out[#out + 1] = string.format("\\x%02x", b) -- not UTF-8: the byte, shown
        i = j + 1
      elseif invisible(cp) then
        out[#out + 1] = string.format("\\u{%x}", cp)
        i = j + len
      else
        out[#out + 1] = s:sub(j, j + len - 1)
        i = j + len
      end
    end
  end
  return table.concat(out)
end

--- text(v) -> string: tostring(v) safe to print on a terminal. Newlines and tabs stay (a
--- CRLF becomes a newline); any other control (ESC, so no escape sequence survives; CR,
--- BEL, backspace), DEL and bytes that are not UTF-8 become \xNN; C1 controls and
--- invisible format characters (bidi overrides and isolates, zero-width spaces) become
--- \u{NNNN}. Text with none of them is returned as it is.
function M.text(v)
  local s = tostring(v)
  if not s:find(SUSPECT) then return s end
  return render((s:gsub("\r\n", "\n")), SUSPECT)
end

--- line(v) -> string: as text, and newlines and tabs too are escaped (\n, \t), for a
--- value that must stay on its line: an id, a seat, a tool name, a table cell.
function M.line(v)
  local s = tostring(v)
  if not s:find(SUSPECT_LINE) then return s end
  return render(s, SUSPECT_LINE)
end

--- named(v) -> tostring(v) in double quotes, as line() shows it and with its own quotes and
--- backslashes escaped: a name (a card id, a priority, a seat) said in a message. Lua's %q
--- wrote a CR as "\13" (read as octal by a C eye) and a newline as a backslash and a line
--- break; every message shows a control the one way, \xNN.
function M.named(v)
  return '"' .. M.line((tostring(v):gsub('[\\"]', "\\%0"))) .. '"'
end

--- cut(s, n) -> the first n bytes of s (s when shorter), cut back to the start of a UTF-8
--- sequence the cut would split: half a character is invalid UTF-8 (a provider may refuse a
--- request holding it; a store escapes it).
function M.cut(s, n)
  if #s <= n then return s end
  local i = n
  while i > 0 and i > n - 3 and (byte(s, i + 1) or 0) & 0xC0 == 0x80 do i = i - 1 end
  return s:sub(1, i)
end

--- clip(s, n[, show]) -> s at most n bytes of it (cut as cut does) as show(s) gives it
--- (tostring by default: an escaping function for a terminal, JSON for a document), a
--- longer one marked cut after what is shown ("...", then its whole length in bytes), so a
--- name cut at 64 never reads as a whole name of 64, nor a reason cut at 300 as the whole
--- reason. The one way hostile text is shortened for a message.
function M.clip(s, n, show)
  show = show or tostring
  if #s <= n then return show(s) end
  return string.format("%s... (%d bytes)", show(M.cut(s, n)), #s)
end

-- s with NUL and every byte that is not part of valid UTF-8 written as \xNN (bytes())
local function storable(s)
  return (M.bytes(s):gsub("%z", "\\x00"))
end

--- quote(v[, n]) -> tostring(v) made safe to keep in a message that is stored: at most n
--- bytes of it (default 200; cut and marked as clip does), NUL and every byte that is not
--- UTF-8 written as \xNN. For text a server or a model sent (an event that did not parse,
--- an error body, a header): a message is kept by both stores, and PostgreSQL refuses NUL
--- and bytes that are not UTF-8, which rolled back the record of the failure. Other
--- controls are kept as sent, as the journal keeps model text: what shows a message makes
--- it inert there (line() on a terminal), and --json gives it exact.
function M.quote(v, n)
  return M.clip(tostring(v), n or 200, storable)
end

--- indented(v, pad) -> text(v) with every line after the first led by pad (empty lines
--- left empty), so a multi-line value printed after a label reads as one item.
function M.indented(v, pad)
  -- empty lines get no pad: no trailing blanks
  local rep = "\n" .. pad:gsub("%%", "%%%%") .. "%1"
  return (M.text(v):gsub("\n([^\n])", rep))
end

--- bytes(s) -> s | s with every byte that is not part of valid UTF-8 written as \xNN, and
--- the position of the first such byte. For hostile text a store must keep (both stores
--- hold UTF-8 text; PostgreSQL refuses anything else): the bytes stay readable, and the
--- caller records that they were escaped, since a literal "\xff" reads the same.
function M.bytes(s)
  local first = select(2, utf8.len(s))
  if not first then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local b = byte(s, i)
    if b < 0x80 then
      local j = s:find("[\128-\255]", i) or n + 1
      out[#out + 1] = s:sub(i, j - 1)
      i = j
    else
      local len = decode(s, i)
      if len then
        out[#out + 1] = s:sub(i, i + len - 1)
        i = i + len
      else
        out[#out + 1] = string.format("\\x%02x", b)
        i = i + 1
      end
    end
  end
  return table.concat(out), first
end

--- copy(v[, depth]) -> v with every string in it (keys and values, nested tables to depth
--- 8) made inert with line(); tables are copied, other values kept. For a whole event.
function M.copy(v, depth)
  local t = type(v)
  if t == "string" then return M.line(v) end
  if t ~= "table" then return v end
  depth = depth or 8
  if depth <= 0 then return {} end
  local out = {}
  for k, x in pairs(v) do out[M.copy(k, depth - 1)] = M.copy(x, depth - 1) end
  return out
end

--- shell_word(s) -> the shell word for s, for a command a person may paste: as is when it
--- is plain, else in single quotes ('my project'), where neither $, ` nor bash's history
--- expansion (!) acts; a word with a character a terminal would show escaped in $'...'.
--- A word starting with '-' is the caller's to make safe (./-x, or --).
function M.shell_word(s)
  if s:match("^[%w_./+,:@%%=-]+$") then return s end
  if M.line(s) == s then return "'" .. s:gsub("'", [['\'']]) .. "'" end
  -- A word a terminal would show escaped (a newline, a control, a byte that is not UTF-8,
  -- an invisible character) is written in bash's $'...' (zsh's and ksh's too), those bytes
  -- as \xHH: single quotes would print them escaped by inert.line, and that text pasted
  -- names another file, or none.
  local out, i, n = { "$'" }, 1, #s
  while i <= n do
    local b = s:byte(i)
    local len, cp = 1, nil
    if b >= 0x80 then len, cp = decode(s, i) end
    if b == 0x5c or b == 0x27 then
      out[#out + 1] = "\\" .. string.char(b)
    elseif b >= 0x20 and b < 0x7f then
      out[#out + 1] = string.char(b)
    elseif len and cp and not invisible(cp) then
      out[#out + 1] = s:sub(i, i + len - 1)
    else
      len = len or 1
      for k = i, i + len - 1 do out[#out + 1] = string.format("\\x%02x", s:byte(k)) end
    end
    i = i + (len or 1)
  end
  out[#out + 1] = "'"
  return table.concat(out)
end

return M
