"""Generate TextWorld games from seeds with TextWorld's own generators (`tw-make`).

Families (each a task of the bridge; its games are the task's variations):

* ``custom``         `tw-make custom`: a house of 5 rooms, 10 objects, a quest of 5 actions
* ``coin_collector`` `tw-make tw-coin_collector`: find the coin, level 5 (+5 for every 4th game)
* ``cooking``        `tw-make tw-cooking`: the First TextWorld Problems recipe games
                     (2 ingredients, 1 to find, 6 rooms, open/cook/cut)

Game `i` of a family is built from seed ``base + i`` and written as
``<out>/<family>/<family>-<i:03d>.z8`` plus its ``.json`` (walkthrough, objective); a game already
on disk is never rebuilt, so generation is idempotent and incremental. Each game takes 5 to 8 s.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional

FAMILIES = ("custom", "coin_collector", "cooking")
BASE_SEED = {"custom": 1000, "coin_collector": 2000, "cooking": 3000}


def family_args(family: str, index: int) -> List[str]:
    seed = str(BASE_SEED[family] + index)
    if family == "custom":
        return ["custom", "--world-size", "5", "--nb-objects", "10", "--quest-length", "5", "--seed", seed]
    if family == "coin_collector":
        return ["tw-coin_collector", "--level", str(5 + 5 * (index % 4)), "--seed", seed]
    if family == "cooking":
        return ["tw-cooking", "--recipe", "2", "--take", "1", "--go", "6", "--open", "--cook", "--cut",
                "--seed", seed]
    raise ValueError(f"unknown family {family!r}; known: {FAMILIES}")


def game_path(out: str, family: str, index: int) -> str:
    return os.path.join(out, family, f"{family}-{index:03d}.z8")


def _tw_make() -> List[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "tw-make")
    if os.path.exists(exe):
        return [exe]
    found = shutil.which("tw-make")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from textworld.scripts.tw_make import main; sys.exit(main())"]


def make_game(out: str, family: str, index: int) -> str:
    """Build game `index` of `family` (nothing to do when it exists); returns its path."""
    path = game_path(out, family, index)
    if os.path.exists(path) and os.path.exists(path[:-3] + ".json"):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = os.path.join(os.path.dirname(path), f".tmp-{os.getpid()}-{index}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        target = os.path.join(tmp, os.path.basename(path))
        cmd = _tw_make() + family_args(family, index) + ["--output", target, "--silent", "-f"]
        # tw-make prints to stdout: keep it off ours (it may be a protocol channel).
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              cwd=tmp, timeout=600)
        if proc.returncode != 0 or not os.path.exists(target):
            raise RuntimeError(f"tw-make failed for {family} #{index}: {proc.stdout.decode(errors='replace')[-2000:]}")
        os.replace(target[:-3] + ".json", path[:-3] + ".json")
        os.replace(target, path)  # the .z8 last: its presence means the game is complete
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def make_games(out: str, per_family: int, families=FAMILIES, jobs: int = 2, log=None) -> Dict[str, List[str]]:
    todo = [(f, i) for f in families for i in range(per_family)]
    missing = [(f, i) for f, i in todo if not os.path.exists(game_path(out, f, i))]
    if missing and log:
        log(f"generating {len(missing)} TextWorld game(s) into {out} ({jobs} at a time)")
    t0 = time.time()
    with cf.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for f in [pool.submit(make_game, out, fam, i) for fam, i in missing]:
            f.result()
    if missing and log:
        log(f"generated {len(missing)} game(s) in {time.time() - t0:.1f} s")
    return {f: [game_path(out, f, i) for i in range(per_family)] for f in families}


def list_games(out: str, family: str) -> List[str]:
    """The games of a family on disk, in index order (`<family>-NNN.z8`, then any other .z8/.ulx)."""
    d = os.path.join(out, family)
    if not os.path.isdir(d):
        return []
    names = [n for n in os.listdir(d) if n.endswith((".z8", ".ulx")) and not n.startswith(".")]
    return [os.path.join(d, n) for n in sorted(names)]


def default_games_dir() -> Optional[str]:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.environ.get("STEPWIRE_TEXTWORLD_GAMES") or os.path.join(root, ".cache", "textworld", "games")
