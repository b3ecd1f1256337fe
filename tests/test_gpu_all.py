"""benchmarks/gpu_all.sh and benchmarks/pack_images.py, tested on the CPU (issue 20).

The script's GPU stages need a device; here: its plan (--dry-run), its
argument errors, the data parts round trip (pack, unpack, check), and the
whole pipeline in --smoke mode on a tiny synthetic Imagenette (numpy
backend, two steps; the GPU tests and the benchmark skip with their reasons;
lrn-cifar's --quick reproduction runs on numpy).
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_all.sh"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                                reason="needs bash and coreutils' timeout")


def load_pack():
    spec = importlib.util.spec_from_file_location("pack_images", ROOT / "benchmarks" / "pack_images.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def tiny_imagenette(tmp_path):
    """3 classes, 6 train and 3 val JPEGs each, 48x64 random pixels."""
    from PIL import Image

    root, rng = tmp_path / "imagenette", np.random.default_rng(0)
    for split, n in (("train", 6), ("val", 3)):
        for c in ("n01440764", "n02102040", "n02979186"):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(d / f"img{i}.JPEG")
    return root


def sh(*args, **kw):
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, **kw)


def test_dry_run_prints_every_stage_and_runs_nothing(tmp_path, tiny_imagenette):
    r = sh("--dry-run", "--data", str(tiny_imagenette), "--out", str(tmp_path / "out"), "--epochs", "7",
           "--", "--precision", "fp16")
    assert r.returncode == 0, r.stderr
    stages = [line.split(" (limit")[0] for line in r.stdout.splitlines() if line.startswith("== ")]
    assert stages == ["== gpu tests", "== reproduce", "== benchmark", "== prepare", "== train", "== evaluate"]
    assert "minialex.reproduce lrn-cifar --quick --backend cupy" in r.stdout
    assert "--backend cupy --config paper" in r.stdout and "--epochs 7" in r.stdout
    assert r.stdout.rstrip().endswith("--precision fp16") is False and "--precision fp16" in r.stdout
    assert "--ten-crop" in r.stdout and "benchmarks/gpu.py --suite" in r.stdout
    assert not (tmp_path / "out").exists()


def test_budget_caps_every_stage_and_keeps_the_evaluations_time(tiny_imagenette):
    """A device call is cut at 600 s: --budget (default 540) shrinks each stage's limit to what is left."""
    def limits(*extra):
        r = sh("--dry-run", "--data", str(tiny_imagenette), *extra)
        assert r.returncode == 0, r.stderr
        return {line[3:].split(" (limit")[0]: int(line.split("(limit ")[1].split("s)")[0])
                for line in r.stdout.splitlines() if line.startswith("== ")}
    full = limits()
    assert full == {"gpu tests": 150, "reproduce": 120, "benchmark": 150, "prepare": 120, "train": 270,
                    "evaluate": 60}                    # under the default budget, the stages' own limits
    capped = limits("--budget", "200")                 # 200 s less the evaluation's 60 + 30 s reserve
    assert capped == {**{k: 110 for k in full if k != "evaluate"}, "evaluate": 60}
    r = sh("--dry-run", "--data", str(tiny_imagenette), "--budget", "9m")
    assert r.returncode == 2 and "--budget 9m: expected whole seconds" in r.stderr


def test_a_spent_budget_skips_the_stages_and_counts_them_failed(tmp_path, tiny_imagenette):
    env = {**os.environ, "GPU_ALL_WORK": str(tmp_path / "work"), "PYTHON": sys.executable}
    env.pop("OUT", None)
    r = sh("--smoke", "--budget", "5", "--data", str(tiny_imagenette), "--out", str(tmp_path / "out"),
           env=env, timeout=300)
    skipped = [line for line in r.stdout.splitlines() if "skipped, the --budget of 5s is spent" in line]
    assert len(skipped) == 6 and r.returncode == 6, r.stdout + r.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["bench.md"]   # the machine's lines only


@pytest.mark.parametrize("argv, needle", [([], "--data DIR is required"),
                                          (["--data", "/no/such/dir"], "--data /no/such/dir: no such folder"),
                                          (["--bogus"], "unknown option --bogus")])
def test_bad_arguments_are_one_line_and_exit_2(argv, needle):
    r = sh(*argv)
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr


def test_parts_round_trip_and_a_missing_part_is_named(tmp_path, tiny_imagenette):
    pack = load_pack()
    n_parts = pack.pack(tiny_imagenette, tmp_path / "parts", part_mib=0.03)
    assert n_parts > 1
    for t in (tmp_path / "parts").glob("part-*.tar"):
        assert t.stat().st_size <= 0.03 * 2**20
        with tarfile.open(t) as tar:
            assert all(m.name.split("/")[0] in ("train", "val") for m in tar.getmembers())
    assert pack.unpack(tmp_path / "parts", tmp_path / "back") == 27
    for f in tiny_imagenette.rglob("*.JPEG"):
        assert (tmp_path / "back" / f.relative_to(tiny_imagenette)).read_bytes() == f.read_bytes()
    (tmp_path / "parts" / "part-001.tar").unlink()
    with pytest.raises(ValueError, match="1 part\\(s\\) missing in .*: part-001.tar"):
        pack.unpack(tmp_path / "parts", tmp_path / "again")


@pytest.mark.slow
def test_smoke_runs_every_stage_on_the_cpu(tmp_path, tiny_imagenette):
    load_pack().pack(tiny_imagenette, tmp_path / "parts", part_mib=0.05)
    out = tmp_path / "out"
    env = {**os.environ, "GPU_ALL_WORK": str(tmp_path / "work"), "PYTHON": sys.executable,
           "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    env.pop("OUT", None)
    r = sh("--smoke", "--data", str(tmp_path / "parts"), "--out", str(out), env=env, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["bench.md", "curves.png", "data.log", "eval.txt",
                                                     "metrics.csv", "tests.log", "train.log"]
    assert "ten-crop" in (out / "eval.txt").read_text()
    assert "nothing measured" in (out / "bench.md").read_text()          # no CuPy here
    tests_log = (out / "tests.log").read_text()
    assert "skipped" in tests_log
    assert "# lrn-cifar:" in tests_log and "Scale: miniature" in tests_log    # reproduce's result.md
