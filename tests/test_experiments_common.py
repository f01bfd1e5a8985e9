"""The experiment runners' shared module (inpaintgan.experiments.common) and the machine facts
(inpaintgan.machine, re-exported by benchmarks/machine.py): each piece on tiny inputs."""

from __future__ import annotations

import ast
import csv
import importlib.util
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inpaintgan.experiments import common
from inpaintgan.experiments.common import (
    ReportError,
    atomic_write,
    batches,
    best_values,
    bold_cells,
    command_line,
    csv_text,
    default_label,
    fmt_value,
    json_num,
    load_folder_images,
    md_head,
    portable_arg,
    run_cli,
    split_model_spec,
    write_text,
)

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "src" / "inpaintgan" / "experiments"


def test_json_num_cleans_non_finite_floats_only():
    assert json_num(math.nan) is None
    assert json_num(math.inf) == "inf" and json_num(-math.inf) == "-inf"
    assert json_num(1.5) == 1.5 and json_num(3) == 3 and json_num("x") == "x" and json_num(None) is None
    assert json.dumps([json_num(v) for v in (math.nan, math.inf, 0.25)]) == '[null, "inf", 0.25]'


def test_csv_text_header_empty_cells_and_six_digits():
    rows = [{"a": 1, "b": 0.123456789, "c": None}, {"a": "x", "b": math.nan}]
    text = csv_text(rows, ["a", "b", "c"])
    assert text == "a,b,c\n1,0.123457,\nx,,\n"
    assert list(csv.DictReader(io.StringIO(text)))[0] == {"a": "1", "b": "0.123457", "c": ""}


def test_atomic_write_replaces_the_file_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "sub" / "results.json"
    assert write_text(path, "one\n") == path and path.read_text() == "one\n"  # folder created
    write_text(path, "two\n")
    assert path.read_text() == "two\n"

    def fail(tmp):
        Path(tmp).write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, fail)
    assert path.read_text() == "two\n"  # the old content kept
    assert sorted(p.name for p in path.parent.iterdir()) == ["results.json"]  # no temporary file left


def test_atomic_write_temp_file_keeps_the_suffix(tmp_path):
    seen = []
    atomic_write(tmp_path / "figure.png", lambda tmp: (seen.append(Path(tmp).suffix), Path(tmp).write_bytes(b"x")))
    assert seen == [".png"]  # image writers pick the format from it


def test_recorded_command_and_portable_args(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.safetensors").write_bytes(b"")
    assert portable_arg("--out=/opt/x/run1") == "--out=run1"
    assert portable_arg(f"a={tmp_path / 'm.safetensors'}") == "a=m.safetensors"
    assert portable_arg("--iterations") == "--iterations" and portable_arg("telea") == "telea"
    cmd = command_line(["--model", f"{tmp_path / 'm.safetensors'}", "--note", "two words"], "python -m x")
    assert cmd == "python -m x --model m.safetensors --note 'two words'"


def test_model_specs_labels_and_errors():
    assert default_label("runs/a/model.safetensors") == "model" and default_label("telea") == "telea"
    assert split_model_spec("df=runs/df.safetensors") == ("df", "runs/df.safetensors")
    assert split_model_spec("runs/df.pt") == ("df", "runs/df.pt")
    assert split_model_spec(" ns ") == ("ns", "ns")
    assert common.parse_spec("0.5=a/b.pt") == ("0.5", "a/b.pt", True)
    assert common.parse_spec("a/b.pt") == ("b", "a/b.pt", False)
    assert common.is_label("shaped_0.5+x-y") and not common.is_label("a/b") and not common.is_label("")
    with pytest.raises(ReportError, match="both parts non-empty"):
        split_model_spec("a=")
    with pytest.raises(ReportError, match="letters, digits"):
        split_model_spec("a b=telea")


def test_load_models_refuses_none_and_repeated_names():
    with pytest.raises(ReportError, match="no models"):
        common.load_models([])
    with pytest.raises(ReportError, match="repeated: telea"):
        common.load_models(["telea", "telea"])
    (m,) = common.load_models(["mean"])
    assert m.label == "mean" and m.method is None and not m.has_attention
    assert m.describe() == {"label": "mean", "model": "mean", "kind": "baseline"}


def test_load_folder_images_sorted_prepared_and_errors(tmp_path):
    (tmp_path / "b").mkdir()
    rng = np.random.default_rng(0)
    for name in ("b/z.png", "a.png", "c.png"):
        Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(tmp_path / name)
    x, files = load_folder_images(str(tmp_path), 2, 16)
    assert files == ["a.png", "b/z.png"] and x.shape == (2, 3, 16, 16) and 0 <= float(x.min()) <= float(x.max()) <= 1
    with pytest.raises(ReportError, match="not found"):
        load_folder_images(str(tmp_path / "missing"), 1, 16)
    with pytest.raises(ReportError, match="not a folder"):
        load_folder_images(str(tmp_path / "a.png"), 1, 16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="holds no images"):
        load_folder_images(str(tmp_path / "empty"), 1, 16)


def test_batches_cover_every_index_once():
    assert batches(5, 2) == [[0, 1], [2, 3], [4]]
    assert batches(0, 3) == [] and batches(3, 8) == [[0, 1, 2]]


def test_table_cells_best_in_bold_missing_as_dash():
    cols = [("l1", "L1", "{:.2f}", min), ("psnr", "PSNR", "{:.1f}", max), ("t", "s", "{:.1f}", None)]
    group = [{"l1": 0.5, "psnr": 20.0, "t": 1.0}, {"l1": 0.25, "psnr": math.nan, "t": 2.0}, {"l1": None, "psnr": 21.0, "t": 3.0}]
    best = best_values(group, cols)
    assert best == {"l1": "0.25", "psnr": "21.0"}  # "t" not ranked
    assert bold_cells(group[1], cols, best) == ["**0.25**", "–", "2.0"]
    assert bold_cells(group[2], cols, best) == ["–", "**21.0**", "3.0"]
    assert best_values(group[:1], cols) == {}  # one value: nothing to rank
    assert fmt_value(None, "{:.1f}") == "–" and fmt_value(math.nan, "{:.1f}") == "–" and fmt_value(2, "{:.1f}") == "2.0"
    assert md_head(["a", "b", "c", "d"]) == ["| a | b | c | d |", "|---|---|---:|---:|"]


def test_figure_helpers_write_a_grid_and_a_plot(tmp_path):
    img = torch.zeros(3, 8, 8)
    mask = torch.zeros(1, 8, 8)
    mask[:, 2:5, 2:5] = 1
    view = common.masked(img, mask)
    assert view.dtype == np.uint8 and view.shape == (8, 8, 3)
    assert common.u8(torch.ones(3, 4, 4)).max() == 255
    path = common.save_grid(tmp_path / "grid.png", [[view, common.u8(img)]], ["input", "original"])
    plt = common.pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    plot = common.save_plot(fig, tmp_path / "plot.png", dpi=50)
    for p in (path, plot):
        with Image.open(p) as im:
            assert im.format == "PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png", "plot.png"]


def test_run_cli_one_line_errors_and_exit_codes(capsys):
    def parse(argv):
        return argv

    def bad(args, argv):
        raise ReportError("no such thing")

    def ok(args, argv):
        assert argv == ["--x"]

    assert run_cli("demo", parse, bad, []) == 2
    assert capsys.readouterr().err == "demo: error: no such thing\n"
    assert run_cli("demo", parse, ok, ["--x"]) == 0


def test_machine_facts_from_the_package_and_the_benchmarks_reexport():
    from inpaintgan.machine import cpu_model, machine_info

    info = machine_info("cpu")
    assert {"date", "cpu", "cores", "torch_threads", "omp_threads", "torch", "opencv", "python", "device"} <= set(info)
    assert info["device"] == "cpu" and info["cpu"] == cpu_model()
    assert common.machine()["cpu"] == info["cpu"]
    spec = importlib.util.spec_from_file_location("bench_machine", ROOT / "benchmarks" / "machine.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.machine_info is machine_info  # the benchmarks' helper is the package's


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, []


def test_runners_share_through_common_only():
    """No runner imports another runner's private names, and nothing reaches outside the package."""
    for f in sorted(EXPERIMENTS.glob("*.py")):
        for module, names in _imports(f):
            assert module.split(".")[0] not in ("benchmarks", "scripts", "tests"), (f.name, module)
            if module.startswith("inpaintgan.experiments."):
                assert not [n for n in names if n.startswith("_")], (f.name, module, names)


def test_overall_scores_prints_the_eval_table_and_keeps_the_all_rows(capsys):
    from types import SimpleNamespace

    from inpaintgan.eval.protocols import get_protocol

    rows = [{"model": m, "bucket": "b", "hole_ratio": 0.25, "psnr_hole": p} for m, p in (("a", 20.0), ("a", 22.0), ("b", 18.0))]
    ev = SimpleNamespace(protocol=get_protocol("center", 0), metric_names=["psnr_hole"],
                         realism_scores=lambda rows, labels: None)  # fmt: skip
    overall = common.overall_scores(ev, rows, ["a", "b"])
    assert overall == {"a": {"psnr_hole": 21.0}, "b": {"psnr_hole": 18.0}}
    out = capsys.readouterr().out
    assert out.startswith("| model | bucket | n | psnr_hole ↑ |") and "| a | all | 2 | 21.00 |" in out
    assert common.overall_json({"a": {"fid": np.float32(1.5)}}) == '{\n "a": {\n  "fid": 1.5\n }\n}'
