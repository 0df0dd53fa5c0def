"""Reading recordings (`stepwire run --record`): every line validated against
schemas/record.line.json, transitions grouped into episodes closed by their `episode` line."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .util import RECORD_SCHEMA, UserError, log

OUTCOMES = ("won", "lost", "truncated", "failed")


@dataclass
class Episode:
    file: str
    id: str            # EpisodeKey.id(): env/task/split/variation#repeat
    game: str          # the id without the repeat: one game, one split
    summary: dict      # the `episode` line (outcome, score, steps, taskDescription, ...)
    transitions: list[dict] = field(default_factory=list)  # in file order

    @property
    def outcome(self) -> str:
        return self.summary["outcome"]

    def level(self, name: str) -> list[dict]:
        return [t for t in self.transitions if t["level"] == name]


def episode_id(key: dict) -> str:
    return f"{key['env']}/{key['task']}/{key['split']}/{key['variation']}#{key.get('repeat', 0)}"


_VALIDATORS: dict = {}


def _validator(kind=None, level=None):
    """The validator of the whole schema, or (faster, about 3x) of the one branch that a line's
    `kind` and `level` select. The schema's branches are told apart by those constants, so a
    line is valid against the whole schema exactly when it is valid against its branch."""
    if not _VALIDATORS:
        from jsonschema import Draft202012Validator

        schema = json.loads(RECORD_SCHEMA.read_text())
        Draft202012Validator.check_schema(schema)
        _VALIDATORS[None, None] = Draft202012Validator(schema)
        defs = schema["$defs"]
        for top in schema["oneOf"]:
            k = top["properties"]["kind"]["const"]
            body = _inline(defs[top["$ref"].split("/")[-1]], defs)
            branches = body.pop("oneOf", None) or [None]
            for br in branches:
                lvl = br["properties"]["level"]["const"] if br else None
                one = {**body, **({"oneOf": [_inline(br, defs)]} if br else {})}
                sub = {**{x: y for x, y in top.items() if x != "$ref"}, "allOf": [one]}
                _VALIDATORS[k, lvl] = Draft202012Validator(sub)
    return _VALIDATORS.get((kind, level)) or _VALIDATORS[None, None]


def _inline(x, defs):
    """The schema with every `$ref` replaced by its definition (the record schema is not
    recursive): resolving references is most of jsonschema's time."""
    if isinstance(x, dict):
        if "$ref" in x:
            target = _inline(defs[x["$ref"].split("/")[-1]], defs)
            rest = {k: _inline(v, defs) for k, v in x.items() if k != "$ref"}
            return {"allOf": [target], **rest} if rest else target
        return {k: _inline(v, defs) for k, v in x.items()}
    if isinstance(x, list):
        return [_inline(v, defs) for v in x]
    return x


def is_valid(obj) -> bool:
    if isinstance(obj, dict):
        kind = obj.get("kind")
        level = obj.get("level") if kind == "transition" else None
        if isinstance(kind, str) and (level is None or isinstance(level, str)):
            return _validator(kind, level).is_valid(obj)
    return _validator().is_valid(obj)


def schema_complaint(obj) -> str | None:
    """None when `obj` is a valid record line, else the most specific schema error."""
    if is_valid(obj):
        return None
    v = _validator()
    from jsonschema.exceptions import relevance

    err = _specific(max(v.iter_errors(obj), key=relevance))
    where = "/".join(str(p) for p in err.absolute_path)
    msg = err.message if len(err.message) < 240 else err.message[:240] + "..."
    return msg + (f" (at {where})" if where else "")


def _specific(err):
    """Descends oneOf/anyOf failures into the branch the line meant (the one whose `kind` /
    `level` constant matched), so the message names the field at fault rather than saying the
    whole line matches none of the branches."""
    from jsonschema.exceptions import relevance

    while err.validator in ("oneOf", "anyOf") and err.context:
        branches: dict = {}
        for e in err.context:
            branches.setdefault(e.relative_schema_path[0], []).append(e)
        meant = [b for b in branches.values() if not any(e.validator == "const" for e in b)]
        err = max(min(meant or branches.values(), key=len), key=relevance)
    return err


@dataclass
class ReadStats:
    lines: int = 0
    invalid: int = 0
    unclosed: int = 0  # transitions of episodes with no closing `episode` line


def read_lines(path: Path, validate: bool = True, skip_invalid: bool = False,
               stats: ReadStats | None = None):
    """Yields (line_no, record) of one recording file."""
    stats = stats or ReadStats()
    try:
        fh = open(path, encoding="utf-8")
    except OSError as e:
        raise UserError(f"{path}: cannot read the recording: {e.strerror}") from None
    with fh:
        for no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            stats.lines += 1
            try:
                obj = json.loads(line)
                why = schema_complaint(obj) if validate else None
            except json.JSONDecodeError as e:
                why = f"not JSON: {e.msg} (column {e.colno})"
            if why is not None:
                if not skip_invalid:
                    raise UserError(f"{path}:{no}: invalid record line: {why} (schema "
                                    f"{RECORD_SCHEMA.name}; pass --skip-invalid to skip such lines)")
                stats.invalid += 1
                continue
            yield no, obj


def iter_episodes(paths, validate: bool = True, skip_invalid: bool = False, outcomes=None,
                  stats: ReadStats | None = None, max_episodes: int | None = None):
    """Episodes of `paths` as their closing lines arrive (one episode in memory at a time, plus
    any interleaved ones); `outcomes` keeps only those outcomes; `max_episodes` stops after that
    many closed episodes, whatever their outcome (a smaller budget from the same recording)."""
    stats = stats if stats is not None else ReadStats()
    closed = 0
    for path in paths:
        path = Path(path)
        open_eps: dict[str, list[dict]] = {}
        for _, rec in read_lines(path, validate, skip_invalid, stats):
            eid = episode_id(rec["episode"])
            if rec["kind"] == "transition":
                open_eps.setdefault(eid, []).append(rec)
                continue
            ep = Episode(file=str(path), id=eid, game=eid.rsplit("#", 1)[0], summary=rec,
                         transitions=open_eps.pop(eid, []))
            closed += 1
            if max_episodes is not None and closed > max_episodes:
                return
            if outcomes is None or ep.outcome in outcomes:
                yield ep
        stats.unclosed += sum(len(v) for v in open_eps.values())
        if open_eps:
            log.warning("%s: %d episode(s) without a closing `episode` line skipped (an "
                        "interrupted run?)", path, len(open_eps))
    if stats.invalid:
        log.warning("skipped %d invalid line(s) of %d", stats.invalid, stats.lines)


def load_episodes(paths, validate: bool = True, skip_invalid: bool = False,
                  outcomes=None) -> tuple[list[Episode], ReadStats]:
    stats = ReadStats()
    return list(iter_episodes(paths, validate, skip_invalid, outcomes, stats)), stats


def parse_outcomes(text: str | None):
    if not text or text == "all":
        return None
    out = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [o for o in out if o not in OUTCOMES]
    if bad:
        raise UserError(f"--outcomes: unknown outcome {bad[0]!r} (use {', '.join(OUTCOMES)} or all)")
    return out
