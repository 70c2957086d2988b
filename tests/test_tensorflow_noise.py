"""TensorFlow's ERROR lines that are no error stay out of the command line's output (issue 25,
defect 12): "E0000 ... util.cc] oneDNN supports DT_INT32 only on platforms with AVX-512. Falling back
to the default Eigen-based implementation if present.", logged while the segmentation-models
Linknet trains and predicts on an x86 CPU with oneDNN on; real errors and progress bars pass."""

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOISE = re.compile(r"^[EIW]\d{4} |oneDNN|cpu_feature_guard", re.MULTILINE)
ONEDNN_LINE = ("E0000 00:00:1796363745.605673   18878 util.cc:131] oneDNN supports DT_INT32 only on platforms "
               "with AVX-512. Falling back to the default Eigen-based implementation if present.\n")

FILTERED = """
import os, subprocess, sys
from training import runtime_env
line = sys.argv[1].encode()
runtime_env.drop_tensorflow_noise()
os.write(2, line + b"E0000 00:00:1 allocator.cc:10] a real error\\n")
os.write(2, b"\\revaluate:  50%|#####")  # a progress bar: no newline
os.write(2, b"\\nE000")  # the start of a log line, its end later
os.write(2, b"0 00:00:1 util.cc:131] oneDNN supports DT_HALF only on platforms with AVX-512. Falling\\n")
child = "import os, sys; os.write(2, sys.argv[1].encode() + b'from a child' + bytes([10]))"
subprocess.run([sys.executable, "-c", child, sys.argv[1]], check=True)
print("warning from Python", file=sys.stderr)
sys.exit(3)
"""


def test_the_onednn_line_is_dropped_and_everything_else_passes():
    done = subprocess.run([sys.executable, "-c", FILTERED, ONEDNN_LINE], cwd=REPO, capture_output=True,
                          timeout=120)
    err = done.stderr.decode()
    assert done.returncode == 3
    assert "oneDNN" not in err
    assert "E0000 00:00:1 allocator.cc:10] a real error\n" in err
    assert "\revaluate:  50%|#####" in err and "from a child\n" in err and "warning from Python\n" in err


def test_training_and_evaluating_a_linknet_print_no_tensorflow_error_line(tiny_root, tmp_path):
    artifacts = tmp_path / "artifacts"
    overrides = ["data.height=32", "data.width=64", "train.epochs=1", "train.patience=0", "data.workers=2",
                 f"data.root={tiny_root}", "name=linknet"]
    train = [sys.executable, "-m", "training", "train", "configs/demo/smlinknet_resnet18_dice_v1_128x256.yaml",
             *[part for value in overrides for part in ("--set", value)], "--artifacts", str(artifacts)]
    evaluate = [sys.executable, "-m", "training", "evaluate", "linknet", "--artifacts", str(artifacts)]
    for command in (train, evaluate):
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        assert not NOISE.findall(done.stderr), done.stderr[-2000:]
        assert "evaluate:" in done.stderr  # the progress bar still shows


def test_what_a_crash_writes_last_still_shows():
    crash = ("import os; from training import runtime_env; runtime_env.drop_tensorflow_noise(); "
             "os.write(2, b'F0000 00:00:1 check.cc:1] a fatal error' + bytes([10])); os.abort()")
    done = subprocess.run([sys.executable, "-c", crash], cwd=REPO, capture_output=True, timeout=120)
    assert done.returncode != 0 and b"a fatal error\n" in done.stderr
