"""``python -m training``: every bad option, file or run ends in one line naming it, never a
traceback (the command line's promise, ``training/cli/__init__.py``). The cases that once printed a
traceback run the real command line in a process of its own."""

from __future__ import annotations

import errno
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_compare import _publish, _random_confusions

import training.cli.tags as tags_cli
from training.cli import main

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "configs" / "demo" / "smlinknet_resnet18_dice_v1_128x256.yaml"


def _cli(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "training", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two imported runs ``a`` and ``b`` (no model, no dataset) in a run store of their own."""
    root = tmp_path_factory.mktemp("cli_errors") / "artifacts"
    rng = np.random.default_rng(3)
    return root, [_publish(root, name, _random_confusions(rng, 6, 8)) for name in ("a", "b")]


@pytest.fixture
def store_copy(two_runs, tmp_path):
    root, runs = two_runs
    return shutil.copytree(root, tmp_path / "artifacts"), runs


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "0", "-0.1", "1.5", "1e400", "wide"])
def test_a_boundary_ratio_outside_its_range_is_refused_with_the_range(value, capsys):
    for argv, option in ((["anatomy", "some_run"], "--ratio"),
                         (["evaluate-masks", "--gt-root", "gt", "--pred-dir", "p"], "--boundary-ratio")):
        with pytest.raises(SystemExit) as stopped:
            main([*argv, f"{option}={value}"])
        error = capsys.readouterr().err
        assert stopped.value.code == 2 and f"argument {option}: " in error and "above 0 and at most 1" in error, error


def test_anatomy_ratio_inf_in_a_process(two_runs):
    root, (a, _) = two_runs
    done = _cli("anatomy", a, "--ratio", "inf", "--replace", "--artifacts", str(root))
    assert done.returncode == 2 and "--ratio" in done.stderr and "at most 1" in done.stderr


def test_a_set_value_that_is_not_plain_yaml_is_named_without_a_traceback(tmp_path):
    done = _cli("train", str(CONFIG), "--set", "train.epochs=3", "--set", "train.epochs=!!python/object:os.system",
                "--artifacts", str(tmp_path), timeout=300)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: --set train.epochs=!!python/object:os.system: ")
    assert not list(tmp_path.iterdir())  # nothing started


def test_compare_refuses_too_few_resamples_before_reading_the_runs(two_runs, capsys):
    root, (a, b) = two_runs
    for resamples in ("1", "99", "100001"):
        with pytest.raises(SystemExit):
            main(["compare", a, "no_such_run", "--artifacts", str(root), "--resamples", resamples])
        error = capsys.readouterr().err
        assert "--resamples" in error and "100 to 100000" in error and "95% interval" in error, error
    assert main(["compare", a, b, "--artifacts", str(root), "--resamples", "100"]) == 0


def test_json_and_out_files_that_cannot_be_written_are_named_before_the_work(two_runs, tmp_path, capsys):
    root, (a, b) = two_runs
    blocker = tmp_path / "result.json"
    blocker.write_text("{}")
    folder = tmp_path / "folder"
    folder.mkdir()
    for target, expected in ((blocker / "compare.json", f"{blocker} is a file, not a folder"),
                             (folder, f"{folder} is a folder")):
        assert main(["compare", a, "no_such_run", "--artifacts", str(root), "--json", str(target)]) == 2
        error = capsys.readouterr().err  # said before the runs are read: not "no run named"
        assert error == f"error: --json {target}: {expected}: choose another name or remove it\n"
        assert main(["tags", "export", "--artifacts", str(root), "--out", str(target)]) == 2
        assert capsys.readouterr().err == f"error: --out {target}: {expected}: choose another name or remove it\n"
    done = _cli("compare", a, b, "--artifacts", str(root), "--json", str(blocker / "compare.json"))
    assert done.returncode == 2 and str(blocker) in done.stderr and "choose another name" in done.stderr
    # an existing file is replaced, as the option's help says
    assert main(["compare", a, b, "--artifacts", str(root), "--resamples", "100", "--json", str(blocker)]) == 0
    assert '"resamples": 100' in blocker.read_text()


@pytest.mark.parametrize("error, expected", [
    (PermissionError(errno.EACCES, "Permission denied", "/out/.x.json.1a2b.tmp", None, "/out/x.json"),
     "error: /out/x.json: Permission denied\n"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "/data/a.png"),
     "error: /data/a.png: No such file or directory\n"),
    (OSError(errno.ENOSPC, "No space left on device"), "error: No space left on device\n"),
    (yaml.constructor.ConstructorError(problem="could not determine a constructor\n for the tag"),
     "error: not valid YAML (could not determine a constructor for the tag)\n"),
])
def test_any_os_or_yaml_error_is_one_line_naming_its_file(monkeypatch, capsys, error, expected):
    def failing(args):
        raise error

    monkeypatch.setattr(tags_cli, "cmd_tags_export", failing)
    assert main(["tags", "export"]) == 2
    assert capsys.readouterr().err == expected


def test_damaged_run_files_are_named_with_their_run(store_copy):
    root, (a, b) = store_copy
    (root / "runs" / b / "metrics.json").write_bytes(bytes(range(128, 256)) * 4)
    (root / "runs" / a / "config.yaml").write_bytes(b"\xff\xfe not text")
    for args, expected in ((["compare", a, b], f"run {b}: metrics.json "),
                           (["deploy", b], f"run {b} cannot be deployed: metrics.json "),
                           (["export-predictions", b, "--out", str(root.parent / "out")],
                            f"run {b} cannot be exported: metrics.json "),
                           (["anatomy", a], f"run {a}: config.yaml ")):
        done = _cli(*args, "--artifacts", str(root))
        assert done.returncode == 2 and done.stderr.startswith(f"error: {expected}"), (args, done.stderr)
        assert done.stderr.count("\n") == 1 and "codec" not in done.stderr and str(root) not in done.stderr
