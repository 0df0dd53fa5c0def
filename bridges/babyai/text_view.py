"""BabyAI's egocentric 7x7 view as English (the rules are in README.md beside this file).

The view (`obs["image"]`, indexed [x][y]) has the agent at x=3, y=6 facing up (towards y=0):
a cell (x, y) is `6 - y` steps ahead and `x - 3` to the right (negative: to the left).
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX, STATE_TO_IDX

OBJECTS = {i: name for name, i in OBJECT_TO_IDX.items()}
COLORS = {i: name for name, i in COLOR_TO_IDX.items()}
STATES = {i: name for name, i in STATE_TO_IDX.items()}
FACING = ["east", "south", "west", "north"]  # obs["direction"]
AGENT_X, AGENT_Y = 3, 6
NOT_THINGS = {"unseen", "empty", "wall", "floor", "agent"}


def _steps(n: int) -> str:
    return f"{n} step" if n == 1 else f"{n} steps"


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def name_of(obj: int, color: int, state: int) -> str:
    """"a red ball", "a locked blue door", "the goal", "lava"."""
    kind = OBJECTS.get(int(obj), "thing")
    if kind == "goal":
        return "the green goal square"
    if kind == "lava":
        return "lava"
    if kind == "wall":
        return "a wall"
    words = [COLORS.get(int(color), ""), kind]
    if kind == "door":
        words.insert(0, STATES.get(int(state), ""))
    return _article(" ".join(w for w in words if w))


def where(ahead: int, right: int) -> str:
    """"2 steps ahead and 1 to the left", "3 steps ahead", "1 step to your right"."""
    side = "right" if right > 0 else "left"
    if ahead == 0:
        return f"{_steps(abs(right))} to your {side}"
    if right == 0:
        return f"{_steps(ahead)} ahead"
    return f"{_steps(ahead)} ahead and {abs(right)} to the {side}"


def _first_blocked(image, cells: List[Tuple[int, int]]) -> Optional[int]:
    """How many steps along `cells` (in order, from the agent) until the first wall, or None
    when no wall is seen along them."""
    for k, (x, y) in enumerate(cells, start=1):
        kind = OBJECTS.get(int(image[x][y][0]))
        if kind == "wall":
            return k
        if kind == "unseen":
            return None
    return None


def render_view(image, direction: int, carrying) -> str:
    """The whole observation text (without the mission)."""
    lines = [f"You face {FACING[int(direction) % 4]}."]
    fx, fy = AGENT_X, AGENT_Y - 1
    kind = OBJECTS.get(int(image[fx][fy][0]))
    front = "nothing" if kind in ("empty", "floor") else (
        "something you cannot see" if kind == "unseen" else name_of(*image[fx][fy]))
    lines.append(f"In front of you: {front}.")
    seen = []
    for x in range(7):
        for y in range(7):
            if (x, y) == (AGENT_X, AGENT_Y) or OBJECTS.get(int(image[x][y][0])) in NOT_THINGS:
                continue
            ahead, right = AGENT_Y - y, x - AGENT_X
            seen.append((ahead + abs(right), ahead, abs(right), right, name_of(*image[x][y])))
    seen.sort()
    lines.append("You see " + ("; ".join(f"{n} {where(a, r)}" for _, a, _, r, n in seen) if seen else "no objects")
                 + ".")
    walls = []
    for label, cells in (("ahead", [(AGENT_X, AGENT_Y - k) for k in range(1, 7)]),
                         ("to your left", [(AGENT_X - k, AGENT_Y) for k in range(1, 4)]),
                         ("to your right", [(AGENT_X + k, AGENT_Y) for k in range(1, 4)])):
        d = _first_blocked(image, cells)
        if d is not None:
            walls.append(f"{_steps(d)} {label}")
    lines.append("Walls: " + (", ".join(walls) if walls else "none in sight") + ".")
    lines.append(carrying_text(carrying))
    return "\n".join(lines)


def carrying_text(carrying) -> str:
    if carrying is None:
        return "You carry nothing."
    return f"You carry {_article(f'{carrying.color} {carrying.type}')}."
