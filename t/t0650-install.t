#!/usr/bin/env python3
# make install honours DESTDIR, prefix, sysconfdir and localstatedir; the
# installed programs run with the installed sample config and promotion;
# the systemd unit runs the workers unprivileged and hardened.
import json, os, re, shutil, subprocess, tempfile
from harness import ok, is_, done, diag, BUILD, SRC

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
    "/usr/local/lib/sysusers.d/luckydice.conf",
    "/usr/local/lib/tmpfiles.d/luckydice.conf",
]
is_([f for f in files if not os.path.isfile(root(f))], [], "every piece is installed")
ok(all(os.access(root(f), os.X_OK) for f in files[:2]), "the programs are executable")
ok(os.path.isdir(root("/usr/local/var/lib/luckydice")), "the state directory is under localstatedir")

unit = open(root("/usr/local/lib/systemd/system/luckydice-fcgi.service")).read()
for line in ["User=luckydice", "NoNewPrivileges=yes", "ProtectSystem=strict",
             "ReadWritePaths=/usr/local/var/lib/luckydice", "RuntimeDirectory=luckydice",
             "UMask=0027", "Environment=LUCKYDICE_CONFIG=/usr/local/etc/luckydice/luckydice.json",
             "ExecStart=/usr/local/bin/luckydice-fcgi --socket /run/luckydice/fcgi.sock"
             " --write-socket /run/luckydice/fcgi-writes.sock",
             "Restart=on-failure", "CapabilityBoundingSet="]:
    ok(re.search("^" + re.escape(line) + "$", unit, re.M), "the unit has " + line)
leftover = [f for f in files[2:] if re.search(r"@[a-z]+@", open(root(f), errors="replace").read())]
is_(leftover, [], "no @placeholder@ is left in installed files")
site = open(root("/usr/local/etc/luckydice/nginx/luckydice-site.conf")).read()
ok("root /usr/local/share/luckydice/www;" in site and
   "include /usr/local/etc/luckydice/nginx/luckydice-locations.conf;" in site,
   "the nginx site points at the installed page and locations")
ok("unix:/run/luckydice/fcgi.sock" in site and "unix:/run/luckydice/fcgi-writes.sock" in site,
   "the nginx site uses the unit's sockets")

# nginx itself accepts the installed site (with the locations it
# includes), its log and include paths pointed into the scratch tree.
ngx = tempfile.mkdtemp(prefix="ld-install-nginx-")
with open(os.path.join(ngx, "site.conf"), "w") as f:
    f.write(site.replace("/usr/local/etc/", root("/usr/local/etc/") + "/")
                .replace("/var/log/nginx/", ngx + "/"))
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
done()
