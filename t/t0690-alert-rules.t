#!/usr/bin/env python3
# The Prometheus alert rules (dist/luckydice.rules.yml): promtool check
# rules finds them valid; promtool test rules makes each alert fire, and
# not fire, on synthetic series (t/luckydice.rules.test.yml); every alert
# has a summary, a severity and a runbook_url whose section is in
# docs/runbook.md, every metric the rules read is one /metrics serves
# (docs/operations.md lists it), and the runbook is linked from the docs.
import os, re, shutil, subprocess
from harness import ok, is_, done, diag, skip, SRC

RULES = os.path.join(SRC, "dist", "luckydice.rules.yml")
rules = open(RULES).read()
runbook = open(os.path.join(SRC, "docs", "runbook.md")).read()
operations = open(os.path.join(SRC, "docs", "operations.md")).read()

if shutil.which("promtool"):
    r = subprocess.run(["promtool", "check", "rules", RULES], capture_output=True, text=True)
    ok(r.returncode == 0 and "SUCCESS" in r.stdout, "promtool check rules: valid") or diag(r.stdout + r.stderr)
    r = subprocess.run(["promtool", "test", "rules", os.path.join(SRC, "t", "luckydice.rules.test.yml")],
                       capture_output=True, text=True)
    ok(r.returncode == 0 and "SUCCESS" in r.stdout, "promtool test rules: each alert fires when it should,"
       " and only then") or diag(r.stdout + r.stderr)
else:
    skip("promtool check rules and test rules", "promtool is not installed (script/bootstrap installs it)")

# The alerts, each with its block of text up to the next one.
blocks = re.split(r"\n      - alert: ", rules)[1:]
alerts = {b.split("\n", 1)[0].strip(): b for b in blocks}
ok(len(alerts) >= 9, "%d alerts: %s" % (len(alerts), ", ".join(alerts)))
want = {"LuckydiceDown", "LuckydiceErrors", "LuckydiceWriterRestarted", "LuckydiceChildrenRestarting",
        "LuckydiceOutboxDead", "LuckydiceOutboxBacklogOld", "LuckydiceNoDeliveries",
        "LuckydiceDeliveriesFailing", "LuckydicePrizeSoldOutEarly"}
is_(sorted(want - set(alerts)), [], "the service down, 5xx, restarts, dead letters, an old backlog, no"
    " deliveries, a kind failing, a prize sold out early: each has an alert")
bad = [a for a, b in alerts.items()
       if not re.search(r"severity: (page|warning)\n", b) or "summary:" not in b
       or 'runbook_url: "@runbookurl@#%s"' % a.lower() not in b]
is_(bad, [], "each has a severity (page or warning), a summary and a runbook_url to its own section")
headings = set(re.findall(r"^## (\S+)$", runbook, re.M))
is_(sorted(set(alerts) - headings), [], "docs/runbook.md has a section for each alert")
is_(sorted(h for h in headings - set(alerts) if h.startswith("Luckydice")), [],
    "and none for an alert that is not there")
sections = re.split(r"^## ", runbook, flags=re.M)
thin = [s.split("\n", 1)[0] for s in sections if s.startswith("Luckydice") and not all(
    w in s for w in ("**What it means.**", "**What to look at.**", "**What to do.**"))]
is_(thin, [], "each section says what it means, what to look at and what to do")

# Every metric a rule reads is one the service serves and the docs list.
metrics = set(re.findall(r"\b(luckydice_[a-z_]+)", " ".join(
    re.findall(r"expr: (\|\n(?:          .*\n)+|.*\n)", rules))))
metrics_c = open(os.path.join(SRC, "cgi", "metrics.c")).read()
is_(sorted(m for m in metrics if m not in metrics_c), [], "the rules read only metrics that /metrics serves"
    " (%s)" % ", ".join(sorted(metrics)))
is_(sorted(m for m in metrics if m not in operations), [], "and docs/operations.md lists each")

docs_readme = open(os.path.join(SRC, "docs", "README.md")).read()
ok("(runbook.md)" in docs_readme and "(runbook.md)" in operations
   and "docs/runbook.md" in open(os.path.join(SRC, "README.md")).read(),
   "the runbook is linked from docs/README.md, docs/operations.md and the README")
done()
