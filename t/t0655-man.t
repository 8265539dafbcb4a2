#!/usr/bin/env python3
# The manual pages: mandoc -T lint -W warning finds nothing in any of them;
# each program's page has the long options its --help prints, and its
# --help has every option of the page's SYNOPSIS and DESCRIPTION (for
# luckydicectl, command by command); the config and promotion pages have
# every key lib/config.c and lib/promo.c accept, and no other.
import os, re, shutil, subprocess
from harness import ok, is_, done, diag, skip, BUILD, SRC

PAGES = {
    "luckydicectl": "ctl/luckydicectl.8",
    "luckydice-fcgi": "cgi/luckydice-fcgi.8",
    "luckydice-dispatch": "cron/luckydice-dispatch.8",
    "luckydice.json": "lib/luckydice.json.5",
    "luckydice-promotion": "lib/luckydice-promotion.5",
}
env = dict(os.environ, LUCKYDICE_CONFIG="/nonexistent/luckydice.json")
OPT = re.compile(r"--[a-z][a-z-]*[a-z]")


def source(name):
    with open(os.path.join(SRC, PAGES[name])) as f:
        return f.read()


def rendered_sections(name, sections=("SYNOPSIS", "DESCRIPTION")):
    """The text of the page's sections as mandoc renders them."""
    r = subprocess.run(["mandoc", "-T", "ascii", "-O", "width=200", os.path.join(SRC, PAGES[name])],
                       capture_output=True, text=True, check=True)
    text = re.sub(".\b", "", r.stdout)
    out, keep = [], False
    for line in text.splitlines():
        if re.match(r"^[A-Z][A-Z ]+$", line):
            keep = line.strip() in sections
        elif keep:
            out.append(line)
    return "\n".join(out)


def helps(prog, *args):
    r = subprocess.run([os.path.join(BUILD, prog)] + list(args) + ["--help"], env=env,
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout


if not shutil.which("mandoc"):
    skip("the manual pages", "mandoc is not installed (script/bootstrap installs it)")
    done()

for name, path in sorted(PAGES.items()):
    r = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", os.path.join(SRC, path)],
                       capture_output=True, text=True)
    ok(r.returncode == 0 and r.stdout + r.stderr == "", "mandoc -T lint -W warning %s: nothing" % path) or \
        diag(r.stdout + r.stderr)

# luckydicectl: the options of --help and of every command's --help
rc, top = helps("luckydicectl")
commands = re.findall(r"^  luckydicectl ([a-z-]+(?: [a-z-]+)?)", top, re.M)
commands = [c for c in commands if c.split()[-1] not in ("PROMO", "UID", "FILE", "ID")]
help_opts = set(OPT.findall(top))
per_cmd = {}
for c in commands:
    rc, text = helps("luckydicectl", *c.split())
    per_cmd[c] = set(OPT.findall(text.split("\noptions:\n")[-1])) - {"--config", "--help"}
    help_opts |= set(OPT.findall(text))
man_opts = set(OPT.findall(rendered_sections("luckydicectl")))
is_(sorted(help_opts - man_opts), [], "luckydicectl(8) has every long option --help prints")
is_(sorted(man_opts - help_opts), [], "luckydicectl --help has every option of its page")
# command by command: the page's entry of each command (".It Cm promo list
# Op Fl \-json") names the command's own options
entries = {}
description = source("luckydicectl").split("\n.Sh DESCRIPTION\n")[1].split("\n.Sh ")[0]
for line in description.splitlines():
    m = re.match(r"^\.It Cm ((?:[a-z-]+ ?)+?)(?: (?:Ar|Op|Oo|Fl)\b|$)", line)
    if m:
        entries.setdefault(m.group(1).strip(), set()).update(
            "--" + o.replace("\\-", "-") for o in re.findall(r"Fl \\-([a-z\\-]+)", line))
ok(len(commands) >= 17 and all(c in entries for c in commands),
   "luckydicectl(8) describes every command (%d)" % len(commands)) or diag(
       "missing: %s" % [c for c in commands if c not in entries])
is_({c: sorted(o) for c, o in per_cmd.items() if entries.get(c) != o}, {},
    "each command's entry in luckydicectl(8) has the options of its --help") or diag(
        {c: sorted(entries.get(c) or []) for c in commands if entries.get(c) != per_cmd[c]})

# luckydice-dispatch and luckydice-fcgi
for prog in ("luckydice-dispatch", "luckydice-fcgi"):
    rc, text = helps(prog)
    if rc != 0 or not text.startswith("usage:"):
        skip("%s --help and %s(8) have the same options" % (prog, prog),
             "%s has no --help in this build" % prog)
        continue
    h, m = set(OPT.findall(text)), set(OPT.findall(rendered_sections(prog)))
    ok(h == m and len(h) >= 5, "%s --help and %s(8) have the same options" % (prog, prog)) or \
        diag("only in --help: %s; only in the page: %s" % (sorted(h - m), sorted(m - h)))

# The config keys: lib/config.c's tables against luckydice.json(5)
with open(os.path.join(SRC, "lib", "config.c")) as f:
    config_c = f.read()
keys = set(re.findall(r'^\s*\{ "([a-z_]+)", C_', config_c, re.M))
page_keys = set(re.findall(r'^\.It Dq ([a-z_]+)$', source("luckydice.json"), re.M))
ok(len(keys) > 20 and keys == page_keys, "luckydice.json(5) describes every config key (%d), and no other" % len(keys)) or \
    diag("not in the page: %s; not in config.c: %s" % (sorted(keys - page_keys), sorted(page_keys - keys)))

# The promotion keys: lib/promo.c's lists against luckydice-promotion(5)
with open(os.path.join(SRC, "lib", "promo.c")) as f:
    promo_c = f.read()
keys = set()
for body in re.findall(r"_keys\[\] = \{(.*?)\};", promo_c, re.S):
    keys |= set(re.findall(r'"([a-z_]+)"', body))
page_keys = set()
for line in source("luckydice-promotion").splitlines():
    if line.startswith(".It "):
        page_keys |= set(re.findall(r'(?:Dq|Do) ([a-z_]+)', line))
ok(len(keys) > 15 and keys == page_keys,
   "luckydice-promotion(5) describes every field of a promotion file (%d), and no other" % len(keys)) or \
    diag("not in the page: %s; not in promo.c: %s" % (sorted(keys - page_keys), sorted(page_keys - keys)))
done()
