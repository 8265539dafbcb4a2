#!/usr/bin/env python3
# make install honours DESTDIR, prefix, sysconfdir and localstatedir; the
# installed programs run with the installed sample config and promotion;
# the systemd unit runs the workers unprivileged and hardened; the
# dispatcher's schedule (cron.d, or a systemd service and timer) is
# installed with the configured paths; so are the Prometheus alert rules,
# each alert pointing at the installed runbook.
#
# Then docs/install.md is followed literally: its blocks marked
# "sh test:NAME" run as written, in a copy of the sources, with the layout
# in a temporary directory (autoreconf, configure, make install, secrets,
# init, promo load, a dispatcher run), and the installed luckydice-fcgi
# with the installed config answers a visit and a draw behind a real
# nginx with the installed site and locations. The steps that need root
# or systemd are not run: the files they name are checked instead, and the
# units pass systemd-analyze verify.
import json, os, re, shlex, shutil, signal, socket, ssl, stat, subprocess, sys, tempfile, time
import http.client
from harness import ok, is_, done, diag, skip, free_port, promo, self_signed, BUILD, SRC

dest = tempfile.mkdtemp(prefix="ld-install-")
env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE") and k != "MFLAGS"}


def make(*args):
    return subprocess.run(["make", "-s", "-C", BUILD] + list(args) + ["DESTDIR=" + dest, "prefix=/usr/local"],
                          env=env, capture_output=True, text=True, timeout=300)


r = make("install")
ok(r.returncode == 0, "make install DESTDIR=... prefix=/usr/local succeeds") or diag(r.stderr)
root = lambda p: os.path.join(dest, p.lstrip("/"))
files = [
    "/usr/local/bin/luckydice-fcgi", "/usr/local/bin/luckydicectl",
    "/usr/local/share/luckydice/www/index.html", "/usr/local/share/luckydice/www/app.js",
    "/usr/local/share/luckydice/promotions/lucky-dice-2024.json",
    "/usr/local/etc/luckydice/nginx/luckydice-locations.conf",
    "/usr/local/etc/luckydice/nginx/luckydice-site.conf",
    "/usr/local/etc/luckydice/luckydice.json.sample",
    "/usr/local/lib/systemd/system/luckydice-fcgi.service",
    "/usr/local/lib/systemd/system/luckydice-dispatch.service",
    "/usr/local/lib/systemd/system/luckydice-dispatch.timer",
    "/usr/local/lib/sysusers.d/luckydice.conf",
    "/usr/local/lib/tmpfiles.d/luckydice.conf",
    "/usr/local/etc/cron.d/luckydice",
    "/usr/local/etc/cron.d/luckydice-backup",
    "/usr/local/lib/systemd/system/luckydice-backup.service",
    "/usr/local/lib/systemd/system/luckydice-backup.timer",
    "/usr/local/share/man/man8/luckydicectl.8",
    "/usr/local/share/man/man8/luckydice-fcgi.8",
    "/usr/local/share/man/man8/luckydice-dispatch.8",
    "/usr/local/share/man/man5/luckydice.json.5",
    "/usr/local/share/man/man5/luckydice-promotion.5",
    "/usr/local/share/luckydice/prometheus/luckydice.rules.yml",
    "/usr/local/share/doc/luckydice/runbook.md",
]
is_([f for f in files if not os.path.isfile(root(f))], [], "every piece is installed")
ok(all(os.access(root(f), os.X_OK) for f in files[:2]), "the programs are executable")
ok(os.path.isdir(root("/usr/local/var/lib/luckydice")), "the state directory is under localstatedir")
tmpfiles = open(root("/usr/local/lib/tmpfiles.d/luckydice.conf")).read()
ok(re.search(r"^d /run/luckydice 0710 luckydice www-data -$", tmpfiles, re.M),
   "tmpfiles makes the sockets' directory 0710 luckydice:www-data: only nginx's group enters")

unit = open(root("/usr/local/lib/systemd/system/luckydice-fcgi.service")).read()
for line in ["User=luckydice", "NoNewPrivileges=yes", "ProtectSystem=strict",
             "ReadWritePaths=/usr/local/var/lib/luckydice /run/luckydice",
             "SupplementaryGroups=www-data",
             "UMask=0027", "Environment=LUCKYDICE_CONFIG=/usr/local/etc/luckydice/luckydice.json",
             "ExecStart=/usr/local/bin/luckydice-fcgi --socket /run/luckydice/fcgi.sock"
             " --write-socket /run/luckydice/fcgi-writes.sock",
             "Restart=on-failure", "CapabilityBoundingSet="]:
    ok(re.search("^" + re.escape(line) + "$", unit, re.M), "the unit has " + line)

# The dispatcher's schedule: the cron line and the unit run the same
# command with the configured paths, every minute.
cron = open(root("/usr/local/etc/cron.d/luckydice")).read()
jobs = [l.split() for l in cron.splitlines() if l and not l.startswith("#") and "=" not in l.split()[0]]
cmd = "/usr/local/bin/luckydice-dispatch --config /usr/local/etc/luckydice/luckydice.json --max-seconds 50 --quiet"
is_([(j[:6], " ".join(j[6:])) for j in jobs], [(["*"] * 5 + ["luckydice"], cmd)],
    "the cron.d file runs the installed dispatcher every minute as luckydice, with the installed config")
dunit = open(root("/usr/local/lib/systemd/system/luckydice-dispatch.service")).read()
ok(re.search("^ExecStart=" + re.escape(cmd) + "$", dunit, re.M) and
   re.search("^User=luckydice$", dunit, re.M) and re.search("^Type=oneshot$", dunit, re.M),
   "luckydice-dispatch.service runs the same command as the cron line, as luckydice")
ok(re.search(r"^OnCalendar=minutely$", open(root("/usr/local/lib/systemd/system/luckydice-dispatch.timer")).read(), re.M),
   "luckydice-dispatch.timer starts it every minute")
# The backup's schedule: nightly, the same commands in cron and the unit.
bcron = open(root("/usr/local/etc/cron.d/luckydice-backup")).read()
bjobs = [l.split(None, 6) for l in bcron.splitlines() if l and not l.startswith("#") and "=" not in l.split()[0]]
ctl = "/usr/local/bin/luckydicectl --config /usr/local/etc/luckydice/luckydice.json"
bcmds = [ctl + " backup --dir /usr/local/var/backups/luckydice --keep 14", ctl + " purge"]
is_([(j[:6], j[6]) for j in bjobs], [(["17", "3", "*", "*", "*", "luckydice"],
                                      "%s >/dev/null && %s >/dev/null" % tuple(bcmds))],
    "the backup's cron.d file backs up then purges nightly as luckydice")
bunit = open(root("/usr/local/lib/systemd/system/luckydice-backup.service")).read()
is_(re.findall(r"^ExecStart=(.*)$", bunit, re.M), bcmds, "luckydice-backup.service runs the same commands")
ok(re.search(r"^OnCalendar=\*-\*-\* 03:17:00$", open(root("/usr/local/lib/systemd/system/luckydice-backup.timer")).read(), re.M),
   "luckydice-backup.timer starts it nightly")
ok(os.path.isdir(root("/usr/local/var/backups/luckydice")), "the backup directory is made")
rules = open(root("/usr/local/share/luckydice/prometheus/luckydice.rules.yml")).read()
urls = re.findall(r'runbook_url: "([^"]*)"', rules)
ok(len(urls) >= 9 and all(u.startswith("/usr/local/share/doc/luckydice/runbook.md#") for u in urls),
   "each alert's runbook_url points at the installed runbook (%d alerts)" % len(urls))
leftover = [f for f in files[2:] if re.search(r"@[a-z]+@", open(root(f), errors="replace").read())]
is_(leftover, [], "no @placeholder@ is left in installed files")
site = open(root("/usr/local/etc/luckydice/nginx/luckydice-site.conf")).read()
ok("root /usr/local/share/luckydice/www;" in site and
   "include /usr/local/etc/luckydice/nginx/luckydice-locations.conf;" in site,
   "the nginx site points at the installed page and locations")
ok("unix:/run/luckydice/fcgi.sock" in site and "unix:/run/luckydice/fcgi-writes.sock" in site,
   "the nginx site uses the unit's sockets")

# nginx itself accepts the installed site (with the locations it
# includes), its log and include paths pointed into the scratch tree and
# its certificate one made here.
ngx = tempfile.mkdtemp(prefix="ld-install-nginx-")
cert, key = self_signed(ngx)
ok("ssl_certificate /etc/ssl/luckydice/fullchain.pem;" in site and
   "ssl_certificate_key /etc/ssl/luckydice/privkey.pem;" in site,
   "the nginx site names the certificate files to fill in")
with open(os.path.join(ngx, "site.conf"), "w") as f:
    f.write(site.replace("/usr/local/etc/", root("/usr/local/etc/") + "/")
                .replace("/var/log/nginx/", ngx + "/")
                .replace("/etc/ssl/luckydice/fullchain.pem", cert)
                .replace("/etc/ssl/luckydice/privkey.pem", key))
with open(os.path.join(ngx, "nginx.conf"), "w") as f:
    f.write("pid %s/nginx.pid;\nerror_log %s/error.log;\nevents {}\n"
            "http {\n  include %s/site.conf;\n}\n" % (ngx, ngx, ngx))
r = subprocess.run(["nginx", "-t", "-p", ngx, "-c", os.path.join(ngx, "nginx.conf"),
                    "-e", os.path.join(ngx, "error.log")], capture_output=True, text=True)
ok(r.returncode == 0, "nginx -t accepts the installed site and locations") or diag(r.stderr)
shutil.rmtree(ngx, ignore_errors=True)

# The installed sample config, pointed at a scratch state, works with the
# installed programs.
sample = json.load(open(root("/usr/local/etc/luckydice/luckydice.json.sample")))
is_(sample["db"], "/usr/local/var/lib/luckydice/luckydice.db", "the sample's database is in the state dir")
# Every key of the config table in docs/operations.md is in the sample,
# so that an operator sees each one there.
with open(os.path.join(SRC, "docs", "operations.md")) as f:
    doc = f.read()
table = doc.split("\n## Config\n", 1)[1].split("\n## ", 1)[0]
documented = set(re.findall(r"`([a-z_]+)`", "\n".join(l.split("|")[1] for l in table.splitlines()
                                                      if l.startswith("| `"))))
ok(len(documented) > 10 and documented <= set(sample),
   "the sample has every key of the config table in docs/operations.md (missing: %s)"
   % sorted(documented - set(sample)))
work = tempfile.mkdtemp(prefix="ld-install-run-")
for k in ("token_secret_file", "signing_secret_file"):
    with open(os.path.join(work, k), "w") as f:
        f.write("ab" * 32)
    sample[k] = os.path.join(work, k)
sample["db"] = os.path.join(work, "luckydice.db")
with open(os.path.join(work, "luckydice.json"), "w") as f:
    json.dump(sample, f)
renv = dict(os.environ, LUCKYDICE_CONFIG=os.path.join(work, "luckydice.json"))
ctl = root("/usr/local/bin/luckydicectl")
r1 = subprocess.run([ctl, "init"], env=renv, capture_output=True, text=True)
r2 = subprocess.run([ctl, "promo", "load", root("/usr/local/share/luckydice/promotions/lucky-dice-2024.json")],
                    env=renv, capture_output=True, text=True)
ok(r1.returncode == 0 and r2.returncode == 0 and "lucky-dice-2024" in r2.stdout,
   "the installed luckydicectl accepts the sample config and loads the installed promotion") or diag(r1.stderr + r2.stderr)

r = make("uninstall")
left = [f for f in files if os.path.exists(root(f))]
ok(r.returncode == 0 and left == [], "make uninstall removes every installed file") or diag(r.stderr + repr(left))
shutil.rmtree(dest, ignore_errors=True)
shutil.rmtree(work, ignore_errors=True)

# ---- docs/install.md, followed literally ------------------------------
with open(os.path.join(SRC, "docs", "install.md")) as f:
    doc = f.read()
blocks = re.findall(r"^```sh( test:([a-z]+))?\n(.*?)^```$", doc, re.M | re.S)
steps = {name: text for _, name, text in blocks if name}
is_([name for _, name, _ in blocks if name], ["layout", "build", "config", "secrets", "init", "dispatch"],
    "docs/install.md marks the steps a test runs, in order")
layout = [l.split("=", 1)[0] for l in steps.get("layout", "").splitlines()]
is_(layout, ["prefix", "sysconfdir", "localstatedir"], "its layout block names the three directories")


def top_of_checkout():
    """SRC when it is the top of a git checkout (what the doc starts from)."""
    r = subprocess.run(["git", "-C", SRC, "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    return r.returncode == 0 and os.path.realpath(r.stdout.strip()) == os.path.realpath(SRC)


if not top_of_checkout():
    skip("the documented install steps", "the sources are not a git checkout")
    done()

tmp = tempfile.mkdtemp(prefix="ld-install-doc-")
os.chmod(tmp, 0o755)
lay = {"prefix": tmp + "/usr/local", "sysconfdir": tmp + "/etc", "localstatedir": tmp + "/var"}
srcdir = os.path.join(tmp, "src")
os.mkdir(srcdir)
# The checkout as git has it (committed and new files, nothing ignored):
# what a git clone with this work in it would give.
names = subprocess.run(["git", "-C", SRC, "ls-files", "-co", "--exclude-standard", "-z"],
                       capture_output=True, check=True).stdout.split(b"\0")
for n in filter(None, names):
    src_path = os.path.join(SRC.encode(), n)
    if os.path.isfile(src_path):
        dst = os.path.join(srcdir.encode(), n)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src_path, dst)
# $prefix/bin on PATH, as /usr/local/bin is on root's; no config named,
# so the programs read the installed one.
denv = {k: v for k, v in env.items() if k != "LUCKYDICE_CONFIG"}
denv["PATH"] = lay["prefix"] + "/bin:" + denv["PATH"]
denv["MAKEFLAGS"] = "-j%d" % min(2, os.cpu_count() or 1)


def step(name, timeout=120):
    """Runs the doc's block name as written, after its layout block with
    the test's directories."""
    script = "".join("%s=%s\n" % (k, shlex.quote(lay[k])) for k in layout) + steps[name]
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=srcdir, env=denv,
                       capture_output=True, text=True, timeout=timeout)
    ok(r.returncode == 0, "docs/install.md step %s runs" % name) or diag(
        "$ " + steps[name] + r.stdout[-3000:] + r.stderr[-3000:])
    return r


P = lambda k, rel: os.path.join(lay[k], rel)
conf = P("sysconfdir", "luckydice/luckydice.json")
r = step("build", timeout=1200)
if r.returncode != 0:
    done()
ctl = P("prefix", "bin/luckydicectl")
ok(os.access(ctl, os.X_OK) and os.access(P("prefix", "bin/luckydice-fcgi"), os.X_OK) and
   os.access(P("prefix", "bin/luckydice-dispatch"), os.X_OK), "the three programs are installed in $prefix/bin")

units = [P("prefix", "lib/systemd/system/" + u) for u in
         ("luckydice-fcgi.service", "luckydice-dispatch.service", "luckydice-dispatch.timer")]
if shutil.which("systemd-analyze"):
    r = subprocess.run(["systemd-analyze", "verify"] + units, capture_output=True, text=True, timeout=60)
    ok(r.returncode == 0 and r.stderr.strip() == "", "systemd-analyze verify accepts the installed units") or diag(r.stderr)
else:
    skip("systemd-analyze verify accepts the installed units", "systemd-analyze is not installed")
with open(P("sysconfdir", "cron.d/luckydice")) as f:
    ok(P("prefix", "bin/luckydice-dispatch") + " --config " + conf in f.read(),
       "the cron.d file names the installed dispatcher and config")

# The doc's config step, then what it says to edit: the URLs and Redis
# (a receiver stands in for the reward and notify services).
step("config")
from dispatchlib import Receiver, example
rv = Receiver()
port = free_port()
run = os.path.join(tmp, "run")
os.mkdir(run, 0o755)
pids = []


def stop_all():
    for pid in reversed(pids):
        try:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    pids.clear()


import atexit
atexit.register(stop_all)
redis = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", run + "/redis.sock",
                          "--save", "", "--appendonly", "no", "--dir", run],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
pids.append(redis.pid)
with open(conf) as f:
    cfg = json.load(f)
cfg.update(public_url="https://127.0.0.1:%d" % port, reward_url=rv.url + "/reward",
           notify_url=rv.url + "/notify", redis=run + "/redis.sock")
with open(conf, "w") as f:
    json.dump(cfg, f, indent=2)

step("secrets")
secrets = [cfg["token_secret_file"], cfg["signing_secret_file"], cfg["console_secret_file"]]
ok(all(stat.S_IMODE(os.stat(p).st_mode) == 0o640 for p in secrets) and
   all(os.path.dirname(p) == P("sysconfdir", "luckydice") for p in secrets),
   "the secrets are in $sysconfdir/luckydice, mode 0640")
r = step("init")
ok("lucky-dice-2024" in r.stdout and os.path.exists(cfg["db"]) and
   cfg["db"].startswith(P("localstatedir", "lib/luckydice/")),
   "init made the database in $localstatedir/lib/luckydice and the promotion is loaded")
# What the steps that need root or systemd name is there once the tested
# steps ran: every $prefix, $sysconfdir or $localstatedir path in the
# doc's blocks, and every luckydice unit systemctl is told about.
named = set()
for _, name, text in blocks:
    if name == "layout":
        continue
    for var, rel in re.findall(r'\$\{?(prefix|sysconfdir|localstatedir)\}?(/[A-Za-z0-9_./-]+)', text):
        named.add(lay[var] + rel.rstrip("."))
    for line in text.splitlines():
        if line.startswith("systemctl enable"):
            for u in line.split()[2:]:
                if u.startswith("luckydice"):
                    named.add(P("prefix", "lib/systemd/system/" + (u if "." in u else u + ".service")))
missing = sorted(p for p in named if not os.path.exists(p))
is_(missing, [], "every file the doc names is installed (%d)" % len(named))
# A promotion running today, loaded the same way (the shipped one is over).
today = os.path.join(tmp, "today.json")
with open(today, "w") as f:
    json.dump(promo("install-check", prizes=[
        {"id": "coffee", "name": "Coffee", "daily_stock": 10, "probability": 1.0}]), f)
r = subprocess.run([ctl, "promo", "load", today], env=denv, capture_output=True, text=True)
ok(r.returncode == 0, "the installed luckydicectl loads a promotion of today") or diag(r.stderr)

# The installed luckydice-fcgi with the installed config (the one the
# unit's ExecStart runs, with the test's sockets), behind nginx with the
# installed site and locations, over https with a certificate made here.
for _ in range(100):
    if os.path.exists(run + "/redis.sock"):
        break
    time.sleep(0.05)
flog = open(os.path.join(tmp, "fcgi.log"), "w")
fcgi = subprocess.Popen([P("prefix", "bin/luckydice-fcgi"), "--socket", run + "/fcgi.sock",
                         "--write-socket", run + "/fcgi-writes.sock", "--workers", "2"],
                        env=denv, stdout=flog, stderr=subprocess.STDOUT)
pids.append(fcgi.pid)
site = open(P("sysconfdir", "luckydice/nginx/luckydice-site.conf")).read()
ok("include %s;" % P("sysconfdir", "luckydice/nginx/luckydice-locations.conf") in site and
   "root %s;" % P("prefix", "share/luckydice/www") in site,
   "the installed site includes the installed locations and serves the installed page")
ngx = os.path.join(tmp, "nginx")
os.mkdir(ngx, 0o755)
cert, key = self_signed(ngx)
with open(os.path.join(ngx, "site.conf"), "w") as f:
    f.write(site.replace("listen 80;", "listen 127.0.0.1:%d;" % free_port())
                .replace("listen 443 ssl http2;", "listen 127.0.0.1:%d ssl http2;" % port)
                .replace("listen [::]:80;", "").replace("listen [::]:443 ssl http2;", "")
                .replace("/etc/ssl/luckydice/fullchain.pem", cert)
                .replace("/etc/ssl/luckydice/privkey.pem", key)
                .replace("/run/luckydice/", run + "/")
                .replace("/var/log/nginx/", ngx + "/"))
with open(os.path.join(ngx, "nginx.conf"), "w") as f:
    f.write("%sworker_processes 1;\npid %s/nginx.pid;\nerror_log %s/error.log;\n"
            "events {}\nhttp {\n  include /etc/nginx/mime.types;\n"
            "  client_body_temp_path %s/body;\n  fastcgi_temp_path %s/fastcgi;\n"
            "  proxy_temp_path %s/proxy;\n  uwsgi_temp_path %s/uwsgi;\n  scgi_temp_path %s/scgi;\n"
            "  include %s/site.conf;\n}\n"
            % ("user root;\n" if os.geteuid() == 0 else "", ngx, ngx, ngx, ngx, ngx, ngx, ngx, ngx))
nginx = subprocess.Popen(["nginx", "-p", ngx, "-c", ngx + "/nginx.conf", "-e", ngx + "/error.log",
                          "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
pids.append(nginx.pid)


def call(method, path, token=None, body=None):
    h = {"Host": "luckydice.example"}
    if token:
        h["Authorization"] = "Bearer " + token
    if body is not None or method == "POST":
        h["Content-Type"] = "application/json"
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=10,
                                    context=ssl.create_default_context(cafile=cert))
    try:
        c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()


health = None
for _ in range(150):
    try:
        health = call("GET", "/healthz")
        if health[0] == 200:
            break
    except OSError:
        pass
    time.sleep(0.1)
ok(health and health[0] == 200 and json.loads(health[1]) == {"status": "ok"},
   "the installed service answers /healthz through nginx") or diag(
    open(os.path.join(tmp, "fcgi.log")).read()[-2000:])
st, page = call("GET", "/?promo=install-check")
ok(st == 200 and "<html" in page.lower(), "nginx serves the installed page")
tok = subprocess.run([ctl, "token", "U1"], env=denv, capture_output=True, text=True).stdout.strip()
st, body = call("POST", "/api/promotions/install-check/visit", tok)
ok(st == 200 and json.loads(body) == {"granted": True, "balance": 1}, "a visit is answered: one dice granted") or diag(body)
st, body = call("POST", "/api/promotions/install-check/draws", tok, {"request_id": "install-check-1"})
ok(st == 200 and json.loads(body)["draw"]["prize"]["id"] == "coffee", "a draw is answered: coffee won") or diag(body)
st, body = call("POST", "/api/promotions/lucky-dice-2024/visit", tok)
ok(st == 403 and "promotion_not_active" in body, "the shipped promotion answers: it is over")

# The doc's dispatcher run, with the installed config: it sends the win.
r = step("dispatch")
ok("dispatch: dry run, 2 due" in r.stdout and "dispatch: delivered 2, retried 0, dead 0, still due 0" in r.stdout,
   "the installed dispatcher delivers the reward and the notification") or diag(r.stdout)
got = rv.requests()
key = example.read_secret(cfg["signing_secret_file"])
ok(sorted(q["headers"].get("x-luckydice-event") for q in got) == ["notify.win", "reward.issue"] and
   all(example.verify(key, q["headers"].get("x-luckydice-signature", ""),
                      q["headers"].get("idempotency-key", ""), q["body"].encode()) is None
       for q in got),
   "the receiver got both, signed with the secret luckydicectl made")
stop_all()
rv.stop()
flog.close()
shutil.rmtree(tmp, ignore_errors=True)
done()
