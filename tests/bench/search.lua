-- search.lua — wrk script for GET /api/search: cycles through a fixed list of
-- questions (English and German, like data/sample) so consecutive requests
-- differ; k and mode come from the environment (BENCH_K, BENCH_MODE).
dofile("tests/bench/report.lua")

local queries = {
  "Who approves vacation requests?",
  "How do I set up the VPN with WireGuard?",
  "Wie viele Tage pro Woche darf ich im Homeoffice arbeiten?",
  "travel expenses per diem hotel limit",
  "printer driver installation on the third floor",
  "Passwort Länge und Wechsel",
  "escalation process for priority one tickets",
  "release notes of the latest Lumen version",
  "code of conduct harassment reporting",
  "Reisekosten Abrechnung Frist",
  "onboarding first week laptop account",
  "Datenschutz personenbezogene Daten Löschung",
}

local function urlencode(s)
  return (s:gsub("[^%w%-_%.~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local k = os.getenv("BENCH_K") or "10"
local mode = os.getenv("BENCH_MODE") or "hybrid"
local paths = {}
for i, q in ipairs(queries) do
  paths[i] = "/api/search?q=" .. urlencode(q) .. "&k=" .. k .. "&mode=" .. mode
end

local n = 0
function request()
  n = n + 1
  return wrk.format("GET", paths[(n % #paths) + 1])
end
