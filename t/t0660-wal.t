#!/usr/bin/env python3
# The WAL starts over under a steady stream of writes, so its file stays
# small. With the writer, the writer itself does it between two batches
# once the WAL holds wal_restart_frames: it does so even with the
# checkpointer stopped, and when the database's path is too long for its
# own socket next to it, as long as it serves the write socket. With
# "writes": "direct", or with no writer at all (write workers and such a
# path), the checkpointer does: its passes let the WAL start over whenever the
# writes pause, and its RESTART under a steady load (which a test this
# size does not reach). With the checkpointer stopped and no writer to do it,
# the WAL keeps every frame written: that is what each case is held to.
import concurrent.futures, contextlib, os, re, subprocess
from harness import Stack, ok, is_, done, diag, promo, sqlite_only, SRC

sqlite_only("the WAL and the checkpointer are SQLite's; PostgreSQL keeps its own")

P = "t-wal"
N = 1500  # visits of fresh users per stack, 8 at a time
FRAME = 4096 + 24  # a WAL frame: its header and a page
DB = "luckydice.db"
LONG_DB = "luckydice-" + "x" * 100 + ".db"  # its "-writer" socket path cannot be


def wal_frames(s, db):
    """The most frames the WAL ever held: its file only grows."""
    try:
        size = os.path.getsize(os.path.join(s.dir, db + "-wal"))
    except FileNotFoundError:
        return 0
    return max(0, (size - 32) // FRAME)


def wal_pages(s, frames):
    """bench/wal-pages names the b-trees of the visits' pages in the WAL."""
    r = subprocess.run([os.path.join(SRC, "bench", "wal-pages"), os.path.join(s.dir, DB)],
                       capture_output=True, text=True, timeout=60)
    is_(r.returncode, 0, "bench/wal-pages reads the kept WAL") or diag(r.stderr)
    head = re.match(r"(\d+) commits, (\d+) pages", r.stdout)
    trees = dict((l.split()[0], int(l.split()[1])) for l in r.stdout.splitlines()[1:])
    ok(head and 0 < int(head.group(2)) <= frames and int(head.group(1)) > 0,
       "it counts the WAL's pages, at most its %d frames: %s" % (frames, r.stdout.splitlines()[:1]))
    ok(trees.get("balances", 0) > 0 and trees.get("grants_by_user", 0) > 0 and
       trees.get("grants", 0) > 0, "and names the b-trees a visit writes: %s" % sorted(trees))


def run(name, extra, stop_checkpointer):
    s = Stack(promos=[promo(P)], extra_config=extra)
    s.db_name = extra.get("db", DB)
    toks = s.tokens(*("%s%d" % (name, i) for i in range(N)))
    with s.checkpointer_stopped(s.db_name) if stop_checkpointer else contextlib.nullcontext():
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            codes = list(ex.map(lambda t: s.api("POST", P, "visit", token=t).status, toks))
    is_(codes.count(200), N, "%s: all %d visits are granted" % (name, N))
    frames = wal_frames(s, s.db_name)
    diag("%s: the WAL held at most %d frames" % (name, frames))
    if name == "grouped-kept":
        wal_pages(s, frames)
    if s.db_name == LONG_DB:
        with open(os.path.join(s.dir, "log", "fcgi.log")) as f:
            log = f.read()
        serves = extra.get("write_workers", 0) == 0
        ok("too long for a socket next to it; %s" % (
            "it serves the write socket" if serves else "the workers write themselves") in log,
           "%s: %s" % (name, "the writer serves the write socket all the same" if serves
                       else "there is no writer"))
        is_("checkpointer: no writer process" in log, not serves,
            "%s: the checkpointer %s the WAL over itself" % (name, "leaves it to the writer to start"
                                                             if serves else "starts"))
    s.stop()
    return frames


kept = run("grouped-kept", {"wal_restart_frames": 1000000}, True)
ok(kept > N, "no checkpointer and a threshold never reached: the WAL keeps every frame (%d)" % kept)
grouped = run("grouped", {"wal_restart_frames": 100}, True)
ok(grouped < kept / 4,
   "with wal_restart_frames 100 the writer starts it over by itself: %d frames at most" % grouped)
kept = run("direct-kept", {"writes": "direct"}, True)
ok(kept > N, "writes direct, no checkpointer: the WAL keeps every frame (%d)" % kept)
direct = run("direct", {"writes": "direct"}, False)
ok(direct < kept / 2,
   "writes direct: the checkpointer keeps it small: %d frames at most" % direct)
writerless = run("writerless", {"db": LONG_DB, "write_workers": 2}, False)
ok(writerless < kept / 2,
   "no writer (write workers, the path too long): the checkpointer keeps it small: %d frames at most"
   % writerless)
long_path = run("long-path", {"db": LONG_DB, "wal_restart_frames": 100}, False)
ok(long_path < kept / 4,
   "the path too long but the writer serving: it starts the WAL over itself: %d frames at most"
   % long_path)
done()
