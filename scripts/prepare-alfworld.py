#!/usr/bin/env python3
"""Unpack the ALFWorld text games and write each game's `game.tw-pddl` for the installed `alfworld`.

    .venv/bin/python scripts/prepare-alfworld.py [--archive PATH] [--out DIR] [--force]

The archive (default `$STEPWIRE_ALFWORLD_ARCHIVE`, else `<repo>/../shared/data/alfworld/
alfworld-json_2.1.1-text.tar.gz`) holds `alfworld/json_2.1.1/<split>/<game>/<trial>/` with
`initial_state.pddl` and `traj_data.json`. The output (default `$ALFWORLD_DATA`, else
`<repo>/.cache/alfworld`) gets the official layout `json_2.1.1/<split>/...`, each trial with a
`game.tw-pddl` built from the package's own domain (`alfworld.info.ALFRED_PDDL_PATH`), grammar
(`ALFRED_TWL2_PATH`) and task substitution (`alfworld.agents.utils.misc.add_task_to_grammar`),
so the files always match the installed grammar (the 0.4.2 hand-coded expert says "move X to Y").

Idempotent: a stamp file records the archive's size and mtime, the alfworld version and this
script's format version; when they match, nothing is done (a few milliseconds).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tarfile
import time

FORMAT = 1  # bump when the written files change
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_ARCHIVE = os.path.join(ROOT, "..", "shared", "data", "alfworld", "alfworld-json_2.1.1-text.tar.gz")
SPLITS = ("train", "valid_seen", "valid_unseen", "valid_train")


def log(msg: str) -> None:
    print(f"[prepare-alfworld] {msg}", file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archive", default=os.environ.get("STEPWIRE_ALFWORLD_ARCHIVE", DEFAULT_ARCHIVE))
    ap.add_argument("--out", default=os.environ.get("ALFWORLD_DATA") or os.path.join(ROOT, ".cache", "alfworld"))
    ap.add_argument("--force", action="store_true", help="redo even when the stamp matches")
    args = ap.parse_args()

    out = os.path.abspath(args.out)
    archive = os.path.abspath(args.archive)
    os.environ["ALFWORLD_DATA"] = out  # alfworld.info creates $ALFWORLD_DATA on import
    if not os.path.isfile(archive):
        if os.path.isdir(os.path.join(out, "json_2.1.1")) and os.path.exists(os.path.join(out, ".stepwire-stamp")):
            log(f"archive {archive} not found; keeping the games already in {out}")
            return 0
        log(f"archive not found: {archive} (set STEPWIRE_ALFWORLD_ARCHIVE or --archive)")
        return 2

    from importlib.metadata import version

    st = os.stat(archive)
    stamp_want = json.dumps(
        {"archive": os.path.basename(archive), "size": st.st_size, "mtime": int(st.st_mtime),
         "alfworld": version("alfworld"), "format": FORMAT},
        sort_keys=True,
    )
    stamp_path = os.path.join(out, ".stepwire-stamp")
    if not args.force and os.path.exists(stamp_path):
        with open(stamp_path) as f:
            if f.read() == stamp_want:
                log(f"ALFWorld games up to date in {out}")
                return 0

    import alfworld.info as info
    from alfworld.agents.utils.misc import add_task_to_grammar

    t0 = time.time()
    os.makedirs(out, exist_ok=True)
    tmp = out + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    log(f"extracting {archive}")
    with tarfile.open(archive, "r:gz") as tar:
        for m in tar.getmembers():
            name = m.name
            if not (m.isfile() or m.isdir()) or name.startswith("/") or ".." in name.split("/"):
                continue  # only plain files and folders inside the archive
            tar.extract(m, tmp, set_attrs=False)
    src = os.path.join(tmp, "alfworld", "json_2.1.1")
    if not os.path.isdir(src):
        src = os.path.join(tmp, "json_2.1.1")
    if not os.path.isdir(src):
        log("the archive holds no json_2.1.1 folder")
        return 2

    with open(info.ALFRED_PDDL_PATH) as f:
        domain = f.read()
    with open(info.ALFRED_TWL2_PATH) as f:
        grammar = f.read()

    counts = {}
    for split in sorted(os.listdir(src)):
        n = 0
        for dirpath, _dirs, files in os.walk(os.path.join(src, split)):
            if "traj_data.json" not in files or "initial_state.pddl" not in files:
                continue
            with open(os.path.join(dirpath, "traj_data.json")) as f:
                traj = json.load(f)
            with open(os.path.join(dirpath, "initial_state.pddl")) as f:
                problem = f.read()
            game = {
                "pddl_domain": domain,
                "grammar": add_task_to_grammar(grammar, traj),  # templated goal (no human annotation)
                "pddl_problem": problem,
                "solvable": True,
            }
            with open(os.path.join(dirpath, "game.tw-pddl"), "w") as f:
                json.dump(game, f)
            n += 1
        counts[split] = n

    dest = os.path.join(out, "json_2.1.1")
    old = dest + ".old"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(dest):
        os.rename(dest, old)
    os.rename(src, dest)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)
    with open(stamp_path, "w") as f:
        f.write(stamp_want)
    log(f"wrote {sum(counts.values())} games to {dest} {counts} in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
