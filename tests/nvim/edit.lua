-- Driven by tests/nvim.rs: Neovim (0.7.2 and later) as a real LSP client of
-- `deladas lsp`. Environment: DELADAS (the binary), GOAL (the file to edit),
-- OUT (where the final buffer goes), GOAL2 and OUT2 (a goal with an upgrade
-- and a deployment beside it), LOG (a trace of the steps).
-- Steps: wait for the typo's diagnostic, apply its quick fix, format, rename
-- a host, save, wait for the solver's conflict, apply a repair it offers;
-- then in GOAL2, save, wait for the E0610 of the cluster check and apply the
-- `upgrade` its help asks for, save again and see it gone.
local deladas, goal, out, logfile = os.getenv("DELADAS"), os.getenv("GOAL"), os.getenv("OUT"), os.getenv("LOG")
local goal2, out2 = os.getenv("GOAL2"), os.getenv("OUT2")
local WAIT = 30000
local trace = {}
local function log(msg) table.insert(trace, msg); vim.fn.writefile(trace, logfile) end
local function fail(msg) log("FAIL: " .. msg); vim.cmd("cquit! 1") end

vim.cmd("edit " .. vim.fn.fnameescape(goal))
local buf = vim.api.nvim_get_current_buf()
local id = vim.lsp.start_client({
  name = "deladas",
  cmd = { deladas, "lsp" },
  root_dir = vim.fn.fnamemodify(goal, ":h"),
})
if not id then fail("the server did not start") end
vim.lsp.buf_attach_client(buf, id)
local client = vim.lsp.get_client_by_id(id)
if not vim.wait(WAIT, function() return client.initialized end, 20) then fail("no initialize") end
log("initialized")

local function params(line, col)
  return { textDocument = { uri = vim.uri_from_bufnr(buf) }, position = { line = line, character = col } }
end
local function request(method, p)
  local r, err = client.request_sync(method, p, WAIT, buf)
  if not r then fail(method .. ": " .. tostring(err)) end
  if r.err then fail(method .. ": " .. vim.inspect(r.err)) end
  return r.result
end
local function diags(code)
  local out = {}
  for _, d in ipairs(vim.diagnostic.get(buf)) do
    local lsp = d.user_data and d.user_data.lsp or {}
    if d.code == code or lsp.code == code then table.insert(out, d) end
  end
  return out
end
local function apply_action(d, prefix)
  local range = { start = { line = d.lnum, character = d.col }, ["end"] = { line = d.end_lnum, character = d.end_col } }
  local actions = request("textDocument/codeAction", {
    textDocument = { uri = vim.uri_from_bufnr(buf) }, range = range, context = { diagnostics = {} },
  }) or {}
  for _, a in ipairs(actions) do
    if a.title:sub(1, #prefix) == prefix then
      log("applying: " .. a.title)
      vim.lsp.util.apply_workspace_edit(a.edit, "utf-16")
      return
    end
  end
  fail("no code action `" .. prefix .. "` among " .. vim.inspect(vim.tbl_map(function(a) return a.title end, actions)))
end

-- 1. The typo's diagnostic, and its quick fix.
if not vim.wait(WAIT, function() return #diags("E0101") > 0 end, 20) then
  fail("no E0101 diagnostic: " .. vim.inspect(vim.diagnostic.get(buf)))
end
log("diagnostic: " .. diags("E0101")[1].message:gsub("\n.*", ""))
apply_action(diags("E0101")[1], "Replace with `Web`")
if not vim.wait(WAIT, function() return #diags("E0101") == 0 end, 20) then fail("the fix did not clear it") end

-- 2. Format the buffer.
local edits = request("textDocument/formatting", {
  textDocument = { uri = vim.uri_from_bufnr(buf) }, options = { tabSize = 4, insertSpaces = true },
})
vim.lsp.util.apply_text_edits(edits or {}, buf, "utf-16")
log("formatted")

-- 3. Rename the host `h1` (on its declaration: line 2, column 5) to `server`.
local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
local row, col
for i, l in ipairs(lines) do
  local c = l:find("h1", 1, true)
  if c and not row then row, col = i - 1, c - 1 end
end
local edit = request("textDocument/rename", vim.tbl_extend("force", params(row, col), { newName = "server" }))
vim.lsp.util.apply_workspace_edit(edit, "utf-16")
log("renamed")

-- 4. Save: the server solves the goal; it is unsatisfiable; apply a repair.
vim.cmd("write")
if not vim.wait(WAIT, function() return #diags("E0801") > 0 end, 50) then
  fail("no conflict after saving: " .. vim.inspect(vim.diagnostic.get(buf)))
end
log("conflict: " .. diags("E0801")[1].message:gsub("\n.*", ""))
apply_action(diags("E0801")[1], "Add 1 more host")

vim.fn.writefile(vim.api.nvim_buf_get_lines(buf, 0, -1, false), out)

-- 5. A goal with an upgrade whose changed port crosses the cluster boundary.
vim.cmd("edit " .. vim.fn.fnameescape(goal2))
buf = vim.api.nvim_get_current_buf()
vim.lsp.buf_attach_client(buf, id)
vim.cmd("write")
if not vim.wait(WAIT, function() return #diags("E0610") > 0 end, 50) then
  fail("no E0610 after saving: " .. vim.inspect(vim.diagnostic.get(buf)))
end
log("boundary: " .. diags("E0610")[1].message:gsub("\n.*", ""))
apply_action(diags("E0610")[1], "Add `upgrade Client`")
vim.cmd("write")
if not vim.wait(WAIT, function() return #diags("E0610") == 0 end, 50) then fail("the upgrade did not clear E0610") end
vim.fn.writefile(vim.api.nvim_buf_get_lines(buf, 0, -1, false), out2)
log("done")
vim.lsp.stop_client(id)
vim.wait(2000, function() return vim.lsp.client_is_stopped(id) end, 20)
vim.cmd("qall!")
