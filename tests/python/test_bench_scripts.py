"""bench/python/bench_cuda.py runs, so that it has not rotted when a GPU machine is lent: here to
the CPU (--device cpu, no pinned limit), with and without a stand-in for the reference package
(safetensors_hpp under the name `safetensors`, so that its ref.* variants run too)."""
import json
import os
import subprocess
import sys

from conftest import ROOT

SCRIPT = ROOT / "bench" / "python" / "bench_cuda.py"


def run_bench(tmp_path, extra_path=None, status=0):
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--gib", "0.004", "--tensors", "8", "--reps",
                        "2", "--dir", str(tmp_path), "--out", str(out)],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == status, r.stdout + r.stderr
    return json.loads((out / "results-python.json").read_text()), (out / "results-python.md").read_text()


def stand_in(folder, **modules):
    """A package named `safetensors` in folder, with the given modules' texts; folder, to put first on the path."""
    package = folder / "safetensors"
    package.mkdir(parents=True)
    for name, text in modules.items():
        (package / f"{name}.py").write_text(text)
    return folder


def test_bench_cuda_to_cpu(tmp_path):
    # Where the reference package is installed (the GPU machine), it is hidden: `import
    # safetensors` finds this package first and fails, as on a machine without it.
    hidden = stand_in(tmp_path / "hidden", __init__="raise ImportError('hidden by test_bench_cuda_to_cpu')\n")
    results, report = run_bench(tmp_path, hidden)
    assert sorted(results["seconds"]) == ["get_tensor", "load_file"]
    assert all(len(v) == 2 for v in results["seconds"].values())
    assert results["tensors"] == 8 and results["reference"] is None and results["ratios"] == {}
    assert "| load_file |" in report
    assert list(tmp_path.glob("bench_cuda_py_*")) == []  # its file is gone


def test_bench_cuda_with_a_reference(tmp_path):
    ours = stand_in(tmp_path / "stand_in", __init__="from safetensors_hpp import safe_open, __version__\n",
                    torch="from safetensors_hpp.torch import load_file\n")
    # The same code on both sides cannot be 5x faster than itself: the check fails, status 1.
    results, report = run_bench(tmp_path, ours, status=1)
    assert sorted(results["seconds"]) == ["get_tensor", "load_file", "ref.load_file", "ref.safe_open"]
    assert sorted(results["ratios"]) == ["get_tensor / ref.safe_open", "load_file / ref.load_file"]
    assert results["checks"] == {"load_file at least 5x ref.load_file": False}
    assert "- load_file at least 5x ref.load_file: NOT MET" in report
