-- calls(t, name, f) -> how many times t[name] was called while f ran: t[name] is wrapped
-- for f's run and put back after it, even when f fails (then its error is raised again).
return function(t, name, f)
  local original, n = t[name], 0
  t[name] = function(...)
    n = n + 1
    return original(...)
  end
  local ok, err = pcall(f)
  t[name] = original
  if not ok then error(err, 0) end
  return n
end
