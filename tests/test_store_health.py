"""A damaged run store: every file of a run broken in turn; readers name the problem and go on.

Each case damages one file of one run of a two-run store, then checks that
``training.runs.health`` calls that run damaged with a reason naming the file, that the other run
stays whole, and that ``python -m training runs`` / ``table`` list both (exit 0) and ``deploy``
refuses the damaged one with the reason (exit 2), never a traceback.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.cli import main
from training.data.labels import get_class_set
from training.runs.deployment import deploy, deployed_run
from training.runs.health import inspect_run, inspect_store
from training.runs.layout import ArtifactError
from training.runs.reader import get_run
from training.runs.summary import run_summaries
from training.runs.writer import RunWriter

REPO = Path(__file__).resolve().parent.parent
K = 8


def _publish(root: Path, name: str) -> Path:
    writer = RunWriter(name, root)
    writer.path("model.keras").write_bytes(b"a model")
    writer.write_text("config.yaml", f"name: {name}\ndata: {{height: 16, width: 32, classes: categories8}}\n")
    writer.write_csv("history.csv", [{"epoch": 1, "loss": 0.9, "val_miou": 0.4}])
    writer.write_json("metrics.json", {"model": "simple", "classes": "categories8", "split": "test", "miou": 0.5,
                                       "val_miou": 0.4, "iou": {"void": 0.5}, "class_names": ["void"]})
    writer.write_array("confusion.npy", np.eye(K, dtype=np.int64))
    writer.write_csv("per_image.csv", [{"id": 3, "miou": 0.5}, {"id": 4, "miou": 0.25}])
    writer.write_array("per_image_confusion.npy", np.stack([np.eye(K, dtype=np.int64)] * 2))
    writer.write_prediction(3, np.zeros((2, 2), np.uint8), get_class_set().palette())
    return writer.commit()


@pytest.fixture
def store(tmp_path) -> Path:
    _publish(tmp_path, "whole")
    _publish(tmp_path, "victim")
    return tmp_path


def _cut_inside_last_row(path: Path) -> None:
    text = path.read_text()
    path.write_text(text[: text.rstrip("\n").rfind(",") + 1])  # the last row loses its last cell


def _latin1(path: Path) -> None:
    path.write_bytes(path.read_bytes().replace(b"}", b', "note": "caf\xe9"}', 1).replace(b"name:", b"# caf\xe9\nname:"))


def _npz_in(path: Path) -> None:
    with open(path, "wb") as stream:
        np.savez(stream, confusion=np.eye(K, dtype=np.int64))


def _edit_metrics(run: Path, **changes) -> None:
    import json

    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, **changes}))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


DAMAGE = {
    "metrics.json truncated": (lambda run: _truncate(run / "metrics.json"), "metrics.json is not valid JSON"),
    "metrics.json holds []": (lambda run: (run / "metrics.json").write_text("[]"),
                              "metrics.json holds a list, not an object"),
    "metrics.json without classes": (lambda run: (run / "metrics.json").write_text('{"miou": 0.5, "split": "test", '
                                                                                   '"iou": {}}'),
                                     "metrics.json lacks classes"),
    "metrics.json missing": (lambda run: (run / "metrics.json").unlink(), "missing metrics.json"),
    "config.yaml garbage": (lambda run: (run / "config.yaml").write_text("data: [unclosed"),
                            "config.yaml is not valid YAML"),
    "config.yaml missing": (lambda run: (run / "config.yaml").unlink(), "missing config.yaml"),
    "confusion.npy garbage": (lambda run: (run / "confusion.npy").write_bytes(b"\x00garbage" * 10),
                              "confusion.npy is not a numpy array file"),
    "confusion.npy not square": (lambda run: np.save(run / "confusion.npy", np.zeros((3, 4), np.int64)),
                                 "confusion.npy holds int64 (3, 4), not a square matrix"),
    "confusion.npy of objects": (lambda run: np.save(run / "confusion.npy", np.array([{"a": 1}], dtype=object)),
                                 "confusion.npy is not a numpy array file"),
    "per_image_confusion.npy truncated": (lambda run: _truncate(run / "per_image_confusion.npy"),
                                          "per_image_confusion.npy is not a numpy array file"),
    "per_image_confusion.npy of another length": (
        lambda run: np.save(run / "per_image_confusion.npy", np.zeros((5, K, K), np.int64)),
        "per_image_confusion.npy has 5 images, per_image.csv 2"),
    "per_image.csv binary": (lambda run: (run / "per_image.csv").write_bytes(b"\xff\xfe\x00\x81" * 50),
                             "per_image.csv is not UTF-8 text"),
    "per_image.csv without ids": (lambda run: (run / "per_image.csv").write_text("miou\n0.5\n0.25\n"),
                                  "per_image.csv has no id column"),
    "history.csv missing": (lambda run: (run / "history.csv").unlink(), "missing history.csv"),
    # The HIGH repro of the hostile test and its variants: each used to crash every reader.
    "history.csv cut inside its last row": (lambda run: _cut_inside_last_row(run / "history.csv"),
                                            "history.csv: line 2 is cut short"),
    "per_image.csv cut inside its last row": (lambda run: _cut_inside_last_row(run / "per_image.csv"),
                                              "per_image.csv: line 3 is cut short"),
    "metrics.json not UTF-8": (lambda run: _latin1(run / "metrics.json"), "metrics.json is not UTF-8 text"),
    "config.yaml not UTF-8": (lambda run: _latin1(run / "config.yaml"), "config.yaml is not UTF-8 text"),
    "confusion.npy is an npz": (lambda run: _npz_in(run / "confusion.npy"),
                                "confusion.npy holds a numpy archive (.npz), not an array"),
    "metrics.json miou is a word": (lambda run: _edit_metrics(run, miou="high"),
                                    "metrics.json: miou is 'high', not a number"),
    "metrics.json classes is a list": (lambda run: _edit_metrics(run, classes=[1]),
                                       "metrics.json: classes is [1], not one of categories8, cityscapes19"),
    "config.yaml height 0": (lambda run: (run / "config.yaml").write_text("data: {height: 0, width: 32}\n"),
                             "data.height and data.width are 0x32, not within 1..8192"),
    "config.yaml height 100000": (lambda run: (run / "config.yaml").write_text(
        "data: {height: 100000, width: 100000}\n"), "data.height and data.width are 100000x100000"),
    "config.yaml classes a list": (lambda run: (run / "config.yaml").write_text(
        "data: {height: 16, width: 32, classes: [1]}\n"), "config.yaml: data.classes is [1], not one of"),
    "model.keras missing": (lambda run: (run / "model.keras").unlink(), "missing model.keras"),
    "predictions/ missing": (lambda run: [p.unlink() for p in (run / "predictions").iterdir()]
                             and (run / "predictions").rmdir(), "missing predictions/"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_each_damaged_file_is_named_and_spares_the_other_run(store, case, capsys):
    damage, reason = DAMAGE[case]
    damage(store / "runs" / "victim")
    health = {h.run.name: h for h in inspect_store(store)}
    assert health["whole"].ok
    assert not health["victim"].ok and reason in health["victim"].reason, health["victim"].reason
    assert str(store) not in health["victim"].reason  # named relative to the run, never by absolute path
    rows = {row["run"]: row for row in run_summaries(store)}
    assert rows["whole"]["miou"] == 0.5 and reason in rows["victim"]["error"]
    assert main(["runs", "--artifacts", str(store)]) == 0
    assert main(["table", "--artifacts", str(store)]) == 0
    listing = capsys.readouterr().out
    assert "whole" in listing and f"unreadable: {health['victim'].reason}" in listing
    assert main(["deploy", "victim", "--artifacts", str(store)]) == 2
    assert f"run victim cannot be deployed: {health['victim'].reason}" in capsys.readouterr().err
    assert main(["deploy", "--best", "--artifacts", str(store)]) == 0  # the whole one
    assert deployed_run(store).name == "whole"


def test_a_garbage_prediction_png_is_named_relative_to_the_run(store):
    (store / "runs" / "victim" / "predictions" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ArtifactError, match=r"^run victim: predictions/3.png is not a readable PNG"):
        get_run("victim", store).prediction(3)
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(store / "runs" / "victim" / "predictions" / "4.png")
    with pytest.raises(ArtifactError, match="predictions/4.png is RGB, not a class-index PNG"):
        get_run("victim", store).prediction(4)
    with pytest.raises(ArtifactError, match="^run victim: missing predictions/5.png$"):
        get_run("victim", store).prediction(5)


@pytest.mark.parametrize("content", ['{"run": 5}', "[]", "{broken", '{"name": "whole"}', '{"run": "../whole"}',
                                     '{"run": "ghost"}'])
def test_a_damaged_deployed_json_says_how_to_fix_it(store, content, capsys):
    (store / "deployed.json").write_text(content)
    with pytest.raises(ArtifactError, match="deployed.json is damaged; redeploy|is not a run name|no run named"):
        deployed_run(store)
    rows = run_summaries(store)  # the runs are still listed, none marked deployed
    assert [row["run"] for row in rows] == ["whole", "victim"] and not any(row["deployed"] for row in rows)
    assert main(["runs", "--artifacts", str(store)]) == 0
    assert "whole" in capsys.readouterr().out
    deploy("whole", store)  # the fix the message names
    assert deployed_run(store).name == "whole"


def test_the_runs_command_survives_a_damaged_store_in_a_new_process(store):
    (store / "runs" / "victim" / "metrics.json").write_text('{"miou": ')
    (store / "deployed.json").write_text('{"run": 5}')
    result = subprocess.run([sys.executable, "-m", "training", "runs", "--artifacts", str(store)], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "whole" in result.stdout and "! victim" in result.stdout
    assert "metrics.json is not valid JSON" in result.stdout
    assert "Traceback" not in result.stderr


def test_a_whole_run_is_whole(store):
    assert inspect_run(get_run("whole", store)).problems == ()
