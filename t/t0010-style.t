#!/usr/bin/env python3
# One written C layout: every C file of the tree is as clang-format
# (Debian's clang-format, with the tree's .clang-format) would write it.
# `clang-format -i FILE` puts a file right; docs/development.md says more.
import os, shutil, subprocess
from harness import SRC, ok, done, diag

fmt = shutil.which("clang-format")
if not fmt:
    print("1..0 # SKIP clang-format is not installed (script/bootstrap installs it)")
    raise SystemExit(0)
files = subprocess.run(["git", "-C", SRC, "ls-files", "*.c", "*.h"], capture_output=True,
                       text=True).stdout.split()
if not files:  # a tarball: no git
    files = [os.path.relpath(os.path.join(d, f), SRC)
             for top in ("lib", "cgi", "ctl", "cron", "bench", "fuzz", "t/unit")
             for d, _, fs in os.walk(os.path.join(SRC, top)) for f in fs
             if f.endswith((".c", ".h")) and f != "schema.c"]
ok(len(files) > 50, "the tree's C files are found (%d)" % len(files))
bad = []
for f in files:
    r = subprocess.run([fmt, "--dry-run", "--Werror", "--style=file", os.path.join(SRC, f)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        bad.append(f)
        diag("%s: %s" % (f, r.stderr.splitlines()[0].split(": ", 1)[-1] if r.stderr else "differs"))
ok(not bad, "every C file is laid out as .clang-format says (%d are not: clang-format -i them)"
   % len(bad))
done()
