"""The driver's command line: what it owns, what passes through to `stepwire run`."""

import pytest

from stepwire_cluster.args import split
from stepwire_cluster.driver import batch_size, batches
from stepwire_cluster.worker import episode_id, episodes_of


def test_run_arguments_pass_through_unchanged():
    a = split(["--ray", "h:1", "--env", "textworld", "--tasks", "a,b", "--record=x.jsonl", "--resume", "-j", "2",
               "--json", "--min-success", "0.5", "--max-steps", "9"])
    assert a.ray == "h:1" and a.record == "x.jsonl" and a.resume and a.jobs == 2 and a.json
    assert a.run_args == ["--env", "textworld", "--tasks", "a,b", "--max-steps", "9"]
    assert a.report_only == ["--min-success", "0.5"]


@pytest.mark.parametrize("flag", ["--no-record", "--print-plan", "--only-episodes=f", "--report-from"])
def test_flags_the_driver_sets_are_refused(flag, capsys):
    with pytest.raises(SystemExit) as e:
        split(["--ray", "h:1", "--env", "lockbox", flag])
    assert e.value.code == 2
    assert flag.split("=")[0] in capsys.readouterr().err


def test_ray_address_is_required(capsys):
    with pytest.raises(SystemExit):
        split(["--env", "lockbox"])
    assert "--ray" in capsys.readouterr().err


def test_batches_cover_the_plan_once():
    ids = [f"e/t/train/{i}#0" for i in range(11)]
    got = batches(ids, batch_size(len(ids), 2))
    assert [i for b in got for i in b] == ids
    assert batch_size(1000, 2) == 16 and batch_size(3, 2) == 1


def test_episodes_of_a_recording_drop_a_torn_tail():
    key = {"env": "e", "task": "t", "split": "train", "variation": 3, "repeat": 1}
    text = (
        '{"kind":"transition","episode":%s}\n{"kind":"episode","episode":%s}\n{"kind":"transition","episode":%s}\n'
        % ((str(key).replace("'", '"'),) * 3)
    )
    eps = episodes_of(text)
    assert [i for i, _ in eps] == [episode_id(key)] == ["e/t/train/3#1"]
    assert eps[0][1].count("\n") == 2
