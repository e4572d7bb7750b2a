-- orket.store.memory's search beyond ASCII, on the backend under test (tests.backends:
-- SQLite, or PostgreSQL when tests/with_pg.lua runs this file): punctuation of any script
-- ends a query's word as it ends a stored one, and the words of scripts written without
-- spaces (Japanese, Chinese, Thai) are found inside the sentences that hold them.
local H = require "tests.helpers"
local B = require "tests.backends"
local sm = require "orket.store.memory"

local function open()
  local db = B.open_store()
  local imports = require "orket.store.imports"
  assert(db:tx(function()
    imports.insert_card(db, { id = "E", type = "epic", name = "epic", priority = 2, seat = "developer" })
    imports.insert_card(db, { id = "E-1", type = "issue", parent = "E", name = "one", priority = 2, seat = "developer" })
    return true
  end))
  return db
end

local function ids(rows)
  local out = {}
  for i, r in ipairs(assert(rows)) do out[i] = r.id end
  return out
end

local function sorted(t)
  table.sort(t)
  return t
end

describe("memory search on " .. B.name(), function()
  after_each(H.cleanup)

  it("reads a query's words as the tokenizers read text: punctuation of any script ends one", function()
    assert.same({ { "deploy", "release" }, {} }, { sm.terms("deploy、release") })
    assert.same({ { "deploy", "release", "fix" }, {} }, { sm.terms("deploy—release،fix") })
    assert.same({ { "deploy", "release" }, {} }, { sm.terms("deploy，release") })       -- fullwidth comma
    assert.same({ { "café", "naïve" }, {} }, { sm.terms("«café» naïve…") })            -- letters stay
    assert.same({ { "make_inst" }, {} }, { sm.terms("make_inst") })                      -- as before
    assert.same({ {}, { "デプ", "プロ", "ロイ" } }, { sm.terms("デプロイ") })
    assert.same({ { "Orket" }, { "の設", "設定" } }, { sm.terms("Orketの設定") })
    assert.same({ {}, { "猫", "設定" } }, { sm.terms("猫、設定。猫") })                   -- each gram once
    -- bytes that are not UTF-8 (a description cut inside a character) end a word
    assert.same({ {}, { "デプ", "プロ", "ロイ" } }, { sm.terms("デプロイ\227\131") })
    local words, grams = sm.terms(("設定を変える "):rep(20) .. ("word "):rep(40))
    assert.equal(sm.MAX_TERMS, #words + #grams)
  end)

  it("finds each word of a query whose words non-ASCII punctuation separates", function()
    local db = open()
    local a = sm.insert(db, nil, "we deploy on Fridays", {})
    local b = sm.insert(db, nil, "the release script needs a token", {})
    sm.insert(db, nil, "the parser keeps comments", {})
    for _, q in ipairs { "deploy、release", "deploy — release", "deploy،release", "deploy，release", "“deploy” «release»" } do
      assert.same(sorted { a, b }, sorted(ids(sm.search(db, q, nil, 10))), q)
    end
    db:close()
  end)

  it("finds a Japanese word inside a stored sentence, best the entries holding most of it", function()
    local db = open()
    local deploy = sm.insert(db, "E-1", "本番へのデプロイは金曜日の午後に行う", { "運用" })
    local project = sm.insert(db, nil, "プロジェクトの説明はREADMEにある", {})
    local other = sm.insert(db, nil, "ログイン画面のバリデーションを直した", {})
    local english = sm.insert(db, nil, "we deploy on Fridays", {})
    assert.same({ deploy, project }, ids(sm.search(db, "デプロイ", nil, 10)))   -- 3 grams, then 1 ("プロ")
    assert.same({ deploy }, ids(sm.search(db, "デプロイ", nil, 1)))
    assert.same({ deploy }, ids(sm.search(db, "金曜日", nil, 10)))
    assert.same({ deploy }, ids(sm.search(db, "運用", nil, 10)))                -- tags are searched
    assert.same({ deploy }, ids(sm.search(db, "金曜日", "E-1", 10)))           -- card filter
    assert.same({}, ids(sm.search(db, "バリデーション", "E-1", 10)))
    -- a card's description as the engine's recall sends it: a sentence, cut anywhere
    local q = ("ログイン画面のバリデーションエラーを修正する"):sub(1, 40)
    assert.equal(other, ids(sm.search(db, q, nil, 10))[1])
    -- Latin words beside Japanese ones: both found, one entry once, its score the sum
    local rows = sm.search(db, "deploy の金曜日", nil, 10)
    assert.equal(2, #rows)
    assert.same(sorted { deploy, english }, sorted(ids(rows)))
    for _, r in ipairs(rows) do assert.is_true(r.score > 0, r.text) end
    assert.same({}, sm.search(db, "夜の会議", nil, 10))
    -- a query cut inside a character: no store is given bytes that are not UTF-8
    assert.same({ deploy, project }, ids(sm.search(db, "デプロイ\227\131", nil, 10)))
    db:close()
  end)

  it("recalls, as a role and the engine ask, the entries a Japanese card's words are in", function()
    local db = open()
    local memory = require("orket.memory").open(db)
    local e = assert(memory:remember { text = "バリデーションはsrc/validate.luaにまとめてある", tags = { "設計" } })
    assert(memory:remember { text = "本番へのデプロイは金曜日の午後に行う" })
    assert.same({ e.id }, ids(memory:recall("バリデーション")))
    local card = { summary = "ログイン画面のバリデーションを修正する", description = "エラー表示が二重になる。" }
    local got = require("orket.engine.context").recall(memory, card, { recall = 1, memory_max_age_days = 0 })
    assert.equal(1, #got)
    assert.equal(e.text, got[1].text)
    db:close()
  end)

  it("finds words inside Chinese and Thai text, and Korean words with their particles", function()
    local db = open()
    local zh = sm.insert(db, nil, "部署脚本在周五运行", {})
    local th = sm.insert(db, nil, "การติดตั้งระบบใช้เวลาสิบนาที", {})
    local ko = sm.insert(db, nil, "서울에서 배포했습니다", {})
    assert.same({ zh }, ids(sm.search(db, "脚本", nil, 10)))
    assert.same({ th }, ids(sm.search(db, "ติดตั้ง", nil, 10)))
    assert.same({ ko }, ids(sm.search(db, "배포", nil, 10)))
    db:close()
  end)

  it("looks for grams in the newest GRAM_SCAN entries only, and for words in all", function()
    local db = open()
    local old = sm.insert(db, nil, "古い設定 deploy", {})
    assert(db:tx(function()
      for i = 1, sm.GRAM_SCAN do sm.insert(db, nil, "entry " .. i, {}) end
      return true
    end))
    assert.same({}, sm.search(db, "設定", nil, 10))
    assert.same({ old }, ids(sm.search(db, "deploy", nil, 10)))
    assert.same({ old }, ids(sm.search(db, "設定 deploy", nil, 10)))
    -- a card's own entries are its newest
    assert.same({}, sm.search(db, "設定", "E-1", 10))
    db:close()
  end)
end)
