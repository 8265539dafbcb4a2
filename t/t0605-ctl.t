#!/usr/bin/env python3
# The operator's command lines: luckydicectl and luckydice-dispatch take
# their options anywhere (before or after the operands), answer -h/--help
# for every command without a config or a database, print --version, take
# --config FILE, exit 0/1/2 as their help says, and every command that
# lists or shows something prints JSON with --json. luckydicectl secrets
# makes the secret files.
import base64, grp, json, os, re, stat, subprocess, tempfile
from harness import Stack, ok, is_, done, diag, skip, promo, BUILD, SRC

CTL = os.path.join(BUILD, "luckydicectl")
DISPATCH = os.path.join(BUILD, "luckydice-dispatch")
with open(os.path.join(SRC, "configure.ac")) as f:
    VERSION = re.search(r"AC_INIT\(\[luckydice\], \[([^]]+)\]", f.read()).group(1)

# No config anywhere: $LUCKYDICE_CONFIG names a file that is not there.
nocfg = dict(os.environ, LUCKYDICE_CONFIG="/nonexistent/luckydice.json")


def run(prog, *args, env=nocfg, input=None):
    return subprocess.run([prog] + [str(a) for a in args], env=env, capture_output=True,
                          text=True, timeout=120, input=input)


# ---- help, version, usage: no config needed --------------------------
r = run(CTL, "--help")
ok(r.returncode == 0 and r.stdout.startswith("usage: luckydicectl"), "luckydicectl --help exits 0")
commands = re.findall(r"^  luckydicectl ([a-z-]+(?: (?:load|list|show|simulate|verify|rebuild"
                      r"|winners|retry|history|pause|resume|renew-id|add|role|disable|enable"
                      r"|token|log))?)", r.stdout, re.M)
diag("commands: %s" % ", ".join(commands))
is_(len(commands), 32, "--help lists the 32 commands")
is_(run(CTL, "-h").stdout, r.stdout, "-h is --help")
is_(run(CTL, "help").stdout, r.stdout, "luckydicectl help is --help")
ok("exit status:" in r.stdout and "--config FILE" in r.stdout and "--version" in r.stdout,
   "the help names the global options and the exit statuses")
is_(run(CTL, "--version").stdout, "luckydicectl (luckydice) %s\n" % VERSION,
    "--version prints the package version")
r = run(CTL)
ok(r.returncode == 2 and "usage:" in r.stderr, "no command: usage on stderr, exit 2")
r = run(CTL, "frobnicate")
ok(r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr, "an unknown command exits 2")

bad = []
for cmd in commands:
    words = cmd.split()
    for flag in ("--help", "-h"):
        r = run(CTL, *words, flag)
        if not (r.returncode == 0 and r.stdout.startswith("usage: luckydicectl " + cmd) and
                "\nexit status: " in r.stdout and r.stderr == ""):
            bad.append((cmd, flag, r.returncode, r.stderr[:200]))
    # --help after operands and other options works too
    r = run(CTL, *words, "X", "--config", "F", "--help")
    if r.returncode != 0 or not r.stdout.startswith("usage: luckydicectl " + cmd):
        bad.append((cmd, "X --config F --help", r.returncode, r.stderr[:200]))
    if run(CTL, "help", *words).stdout != run(CTL, *words, "--help").stdout:
        bad.append((cmd, "help", "differs"))
is_(bad, [], "every command and subcommand answers -h and --help without a config, with its"
    " exit statuses")
for group, subs in (("promo", "load list show simulate history pause resume"), ("user", "show"),
                    ("ledger", "show renew-id"),
                    ("cache", "verify rebuild"), ("export", "winners"), ("outbox", "list retry")):
    r = run(CTL, group, "--help")
    ok(r.returncode == 0 and all("luckydicectl %s %s" % (group, s) in r.stdout
                                 for s in subs.split()),
       "%s --help lists its commands" % group)
    r = run(CTL, group)
    ok(r.returncode == 2 and "luckydicectl %s %s" % (group, subs.split()[0]) in r.stderr,
       "%s alone: its commands on stderr, exit 2" % group)
r = run(CTL, "promo", "frob")
ok(r.returncode == 2 and "unknown command 'promo frob'" in r.stderr, "an unknown subcommand exits 2")
r = run(CTL, "stats", "--jsn", "P")
ok(r.returncode == 2 and "unknown option '--jsn'" in r.stderr and "usage: luckydicectl stats" in r.stderr,
   "an unknown option is named, with the usage, exit 2")
r = run(CTL, "stats")
ok(r.returncode == 2 and "expected PROMO" in r.stderr, "a missing operand exits 2")
r = run(CTL, "stats", "P", "Q")
ok(r.returncode == 2 and "unexpected argument 'Q'" in r.stderr, "an extra operand exits 2")
r = run(CTL, "export", "winners", "P", "--day")
ok(r.returncode == 2 and "'--day' needs an argument" in r.stderr, "an option without its argument exits 2")
r = run(CTL, "stats", "P")
ok(r.returncode == 2 and "/nonexistent/luckydice.json" in r.stderr,
   "a command that needs the config says which file it could not read")
env = {k: v for k, v in os.environ.items() if k != "LUCKYDICE_CONFIG"}
r = run(CTL, "promo", "list", env=env)
ok(r.returncode == 2 and "luckydice/luckydice.json" in r.stderr,
   "without $LUCKYDICE_CONFIG the installed path is read") or diag(r.stderr)

r = run(DISPATCH, "--help")
ok(r.returncode == 0 and r.stdout.startswith("usage: luckydice-dispatch") and
   "exit status:" in r.stdout, "luckydice-dispatch --help exits 0 without a config")
is_(run(DISPATCH, "-h").stdout, r.stdout, "luckydice-dispatch -h is --help")
is_(run(DISPATCH, "--version").stdout, "luckydice-dispatch (luckydice) %s\n" % VERSION,
    "luckydice-dispatch --version")
r = run(DISPATCH, "--frob")
is_(r.returncode, 2, "luckydice-dispatch: an unknown option exits 2")
r = run(DISPATCH, "--max-seconds", "5", "--config", "/nonexistent/other.json")
ok(r.returncode == 2 and "/nonexistent/other.json" in r.stderr, "luckydice-dispatch --config FILE is read")

# ---- a stack: options anywhere, --config, --json -----------------------
P = "t-ctl"
s = Stack(promos=[promo(P, prizes=[
    {"id": "coffee", "name": "Coffee", "daily_stock": 100, "probability": 1.0}])])
tok = s.token("U")
is_(s.api("POST", P, "visit", token=tok).status, 200, "U visits")
r = s.api("POST", P, "draws", {"request_id": "req-ctl-0001"}, token=tok)
is_(r.json["draw"]["prize"]["id"], "coffee", "U rolls and wins")
day = s.scalar("SELECT day FROM draws")


def ctl(*args):
    return s.ctl(*args, check=False)


a, b = ctl("stats", "--json", P), ctl("stats", P, "--json")
ok(a.returncode == 0 and a.stdout == b.stdout and json.loads(a.stdout)["promotion"] == P,
   "stats --json PROMO is stats PROMO --json") or diag(a.stderr)
a, b = ctl("export", "winners", "--day", day, P), ctl("export", "winners", P, "--day", day)
ok(a.returncode == 0 and a.stdout == b.stdout and "U,coffee" in a.stdout,
   "export winners --day D PROMO is export winners PROMO --day D") or diag(a.stderr)
a = ctl("export", "winners", "--day=" + day, P)
is_(a.stdout, b.stdout, "--day=D works too")
cfgenv = {k: v for k, v in s.env.items() if k != "LUCKYDICE_CONFIG"}
for args, where in ((["--config", s.config, "promo", "list"], "before the command"),
                    (["promo", "list", "--config", s.config], "after it")):
    r = run(CTL, *args, env=cfgenv)
    ok(r.returncode == 0 and P in r.stdout, "--config FILE %s" % where) or diag(r.stderr)
r = run(CTL, "promo", "list", "--config", s.config, env=nocfg)
ok(r.returncode == 0 and P in r.stdout, "--config wins over $LUCKYDICE_CONFIG")
r = run(DISPATCH, "--dry-run", "--config", s.config, env=cfgenv)
ok(r.returncode == 0 and "dispatch: dry run, 2 due" in r.stdout,
   "luckydice-dispatch --config FILE") or diag(r.stdout + r.stderr)

# --json, command by command
js = {}
for args in (["promo", "list"], ["promo", "show", P], ["stats", P], ["user", "show", P, "U"],
             ["outbox", "list"], ["cache", "verify", P], ["cache", "rebuild", P],
             ["token", "V", "W"],
             ["promo", "simulate", os.path.join(s.dir, P + ".json"), "--participants", 100]):
    r = ctl(*args, "--json")
    try:
        js[" ".join(map(str, args[:2]))] = json.loads(r.stdout)
        ok(r.returncode == 0, "%s --json prints JSON" % " ".join(map(str, args[:2])))
    except ValueError:
        ok(False, "%s --json prints JSON" % " ".join(map(str, args[:2])))
        diag(r.stdout[:300] + r.stderr)
pl = [p for p in js["promo list"]["promotions"] if p["id"] == P]
ok(len(pl) == 1 and pl[0]["state"] == "active" and pl[0]["prizes"] == 1,
   "promo list --json: the promotion, active, with its prize count")
with open(os.path.join(s.dir, P + ".json")) as f:
    is_(js["promo show"], json.load(f), "promo show --json is the definition as loaded")
with open(os.path.join(s.dir, "again.json"), "w") as f:
    json.dump(js["promo show"], f)
r = ctl("promo", "load", os.path.join(s.dir, "again.json"))
ok(r.returncode == 0 and "updated promotion" in r.stdout, "and promo load takes it back")
r = ctl("promo", "show", P)
ok(r.returncode == 0 and "coffee" in r.stdout and "active" in r.stdout, "promo show: the rules in words")
is_([d["prizes"]["coffee"]["won"] for d in js["stats " + P] ["days"] if d["day"] == day], [1],
    "stats --json: one coffee won today")
is_((js["user show"]["balance"], js["user show"]["cache"]["state"]), (0, "hit"),
    "user show --json: balance and cache")
ev = js["outbox list"]["events"]
ok(sorted(e["event"] for e in ev) == ["notify.win", "reward.issue"] and
   all(e["state"] == "pending" and e["user"] == "U" and e["next_at"] for e in ev) and
   js["outbox list"]["more"] is False, "outbox list --json: the two pending events")
is_((js["cache verify"]["drift"], js["cache verify"]["drifted"]), (0, []), "cache verify --json: no drift")
is_(js["cache rebuild"]["written"], 0, "cache rebuild --json: nothing to write")
toks = js["token V"]["tokens"]
is_([t["user"] for t in toks], ["V", "W"], "token --json: one per user")
is_(s.api("GET", P, "balance", token=toks[0]["token"]).status, 200, "and the token is accepted")
# The JSON is documented: every key at the top and in the objects of the
# top's arrays is named in luckydicectl(8), JSON OUTPUT.
with open(os.path.join(SRC, "ctl", "luckydicectl.8")) as f:
    man_json = f.read().split("\n.Sh JSON OUTPUT\n")[1].split("\n.Sh ")[0]
named = set(re.findall(r"^\.Qq ([a-z_]+)", man_json, re.M))
undocumented = set()
for cmd, out in js.items():
    if cmd == "promo show":
        continue  # the promotion file, luckydice-promotion(5)
    for k, v in out.items():
        undocumented |= {cmd + ": " + k} - {cmd + ": " + n for n in named}
        if isinstance(v, list) and v and isinstance(v[0], dict):
            undocumented |= {"%s: %s[].%s" % (cmd, k, x) for x in v[0] if x not in named}
is_(sorted(undocumented), [], "every key of the --json outputs is in luckydicectl(8)")
sim = js["promo simulate"]
ok(sim["participants"] == 100 and len(sim["days"]) > 1 and "coffee" in sim["totals"]["prizes"],
   "promo simulate --json: per day and totals")

# drift: cache verify exits 1, and --json lists the user
s.redis_cli("SET", s.cache_key(P, "U"), "99:5")
keys = s.redis_cli("KEYS", "*")
r = ctl("cache", "verify", P, "--json")
j = json.loads(r.stdout) if r.stdout else {}
ok(r.returncode == 1 and j.get("drift") == 1 and j["drifted"][0]["user"] == "U",
   "cache verify --json: drift exits 1 and names the user") or diag(keys + r.stdout + r.stderr)

# "--" ends the options: a user id may start with "-"
r = ctl("token", "--", "-dash")
ok(r.returncode == 0 and r.stdout.startswith("-dash."), "token -- -dash")

# ---- secrets ------------------------------------------------------------
work = tempfile.mkdtemp(prefix="ld-secrets-")
cfg = os.path.join(work, "luckydice.json")
with open(cfg, "w") as f:
    json.dump({"db": "luckydice.db", "token_secret_file": "token.secret",
               "signing_secret_file": "signing.secret"}, f)
files = [os.path.join(work, n) for n in ("token.secret", "signing.secret")]
r = run(CTL, "secrets", "--config", cfg)
is_(r.returncode, 0, "secrets writes the two files") or diag(r.stderr)
try:
    group = grp.getgrnam("luckydice").gr_gid if os.geteuid() == 0 else None
except KeyError:
    group = None
want_owner = (0, group) if group is not None else (os.geteuid(), os.getegid())
first = []
for p in files:
    st = os.stat(p)
    with open(p, "rb") as f:
        data = f.read()
    first.append(data)
    is_(stat.S_IMODE(st.st_mode), 0o640, "%s is mode 0640" % os.path.basename(p))
    is_((st.st_uid, st.st_gid), want_owner, "%s is owned by %s" % (
        os.path.basename(p), "root:luckydice" if group is not None else "the caller"))
    ok(data.endswith(b"\n") and len(base64.b64decode(data.strip(), validate=True)) == 32,
       "%s holds 32 random bytes in base64" % os.path.basename(p))
ok(first[0] != first[1], "the two secrets differ")
r = run(CTL, "secrets", "--config", cfg)
ok(r.returncode == 1 and "exists" in r.stderr and "--force" in r.stderr,
   "secrets again refuses (exit 1), naming --force")
is_([open(p, "rb").read() for p in files], first, "and changes nothing")
os.unlink(files[1])
r = run(CTL, "secrets", "--config", cfg)
ok(r.returncode == 1 and not os.path.exists(files[1]), "one file existing: nothing is written")
r = run(CTL, "--config", cfg, "secrets", "--force")
is_(r.returncode, 0, "secrets --force replaces them")
ok(open(files[0], "rb").read() != first[0] and os.path.exists(files[1]), "with new secrets")
is_(sorted(os.listdir(work)), ["luckydice.json", "signing.secret", "token.secret"],
    "no temporary file is left beside them")
# an upgrade adds the console's secret to the config: --missing writes it alone
with open(cfg, "w") as f:
    json.dump({"db": "luckydice.db", "token_secret_file": "token.secret",
               "signing_secret_file": "signing.secret",
               "console_secret_file": "console.secret"}, f)
kept = [open(p, "rb").read() for p in files]
r = run(CTL, "secrets", "--config", cfg, "--missing")
is_(r.returncode, 0, "secrets --missing") or diag(r.stderr)
ok("kept '%s'" % files[0] in r.stdout and "wrote '%s'" % os.path.join(work, "console.secret")
   in r.stdout, "says what it kept and what it wrote") or diag(r.stdout)
is_([open(p, "rb").read() for p in files], kept, "the token and signing secrets are kept")
ok(len(base64.b64decode(open(os.path.join(work, "console.secret"), "rb").read().strip(),
                        validate=True)) == 32, "the console secret is new, 32 bytes")
r = run(CTL, "secrets", "--config", cfg, "--missing")
ok(r.returncode == 0 and "wrote" not in r.stdout, "again: nothing to write")
r = run(CTL, "secrets", "--config", cfg, "--missing", "--force")
is_(r.returncode, 2, "--missing with --force is a usage error")
os.unlink(os.path.join(work, "console.secret"))
r = run(CTL, "token", "--config", cfg, "U")
ok(r.returncode == 0 and r.stdout.startswith("U."), "luckydicectl token signs with the new secret")

# ---- root leaves the service's files to the service ---------------------
# As root, init gives a new database to the owner of its directory (the
# service's user), SQLite gives its -wal and -shm that owner, and the
# dispatcher gives it its lock file: nothing root made by hand is closed
# to the service afterwards.
desc = "run as root, init, promo load and the dispatcher leave every file to the state directory's owner"
if os.geteuid() != 0:
    skip(desc, "not root")
else:
    state = os.path.join(work, "state")
    os.mkdir(state, 0o750)
    os.chown(state, 65534, 65534)
    with open(cfg, "w") as f:
        json.dump({"db": "state/luckydice.db", "token_secret_file": "token.secret",
                   "signing_secret_file": "signing.secret"}, f)
    rs = [run(CTL, "--config", cfg, "init"),
          run(CTL, "--config", cfg, "promo", "load", os.path.join(s.dir, P + ".json")),
          run(DISPATCH, "--config", cfg, "--quiet")]
    owners = {n: (os.stat(os.path.join(state, n)).st_uid, os.stat(os.path.join(state, n)).st_gid)
              for n in os.listdir(state)}
    ok([r.returncode for r in rs] == [0, 0, 0] and "luckydice.db.dispatch.lock" in owners and
       set(owners.values()) == {(65534, 65534)}, desc) or diag(repr(owners) + "".join(
           r.stderr for r in rs))
done()
