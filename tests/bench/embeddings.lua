-- embeddings.lua — wrk script for POST /v1/embeddings: one input string per
-- request, cycling through sentences of different lengths (6 to ~60 words).
dofile("tests/bench/report.lua")

local inputs = {
  "Who approves vacation requests?",
  "How do I set up the VPN with WireGuard on a company laptop running Debian?",
  "Wie viele Tage pro Woche darf ich im Homeoffice arbeiten, und wer muss zustimmen?",
  "Travel expenses are reimbursed within thirty days when the receipts are submitted through the portal. " ..
    "Hotel costs above the city limit need the approval of the cost centre owner before the trip.",
  "The escalation process starts with the first-level support team, which answers within four hours; " ..
    "priority one tickets go straight to the on-call engineer, who informs the customer every hour " ..
    "until the problem is solved and writes a short report for the weekly review.",
  "Linsensuppe mit Speck",
}

local bodies = {}
for i, s in ipairs(inputs) do
  bodies[i] = '{"model":"mrag","input":"' .. s .. '"}'
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local n = 0
function request()
  n = n + 1
  return wrk.format(nil, nil, nil, bodies[(n % #bodies) + 1])
end
