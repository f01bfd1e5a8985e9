"""The semantic-inpainting experiment runner (issue #9): one search, variants from the same latent,
references, metrics, outputs, refusal of a shaped file with another generator, determinism."""

from __future__ import annotations

import copy
import csv
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import write_fashion_mnist
from inpaintgan import metrics as M
from inpaintgan.checkpoints import load_model, save_model
from inpaintgan.experiments.semantic_report import PROG, main, parse_args, run_report
from inpaintgan.methods.semantic import SemanticConfig, SemanticInpainting

S = 16  # the tiny DCGAN's size: images are resized 28 -> 16
N = 4
ITER, RESTARTS, SEARCH_SEED = 4, 2, 3
VARIANTS = ["telea", "glcic", "yeh", "collab", "shaped-s1"]


def write_fmnist_test(root, n: int = N) -> np.ndarray:
    """The t10k IDX files (gzip, big-endian headers) with smooth blob images, as in the real set."""
    return write_fashion_mnist(root, n)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Data, a tiny base model (calibrated), a shaped copy (other D and median, same G), a copy whose
    G differs."""
    root = tmp_path_factory.mktemp("semrep")
    images = write_fmnist_test(root / "fmnist")
    torch.manual_seed(0)
    cfg = SemanticConfig(ngf=16, ndf=16, iterations=50, restarts=1, refine_steps=7, progress=False)
    base = SemanticInpainting(cfg, S, channels=1).eval()
    x = F.interpolate(
        torch.from_numpy(images)[:, None].float() / 255, size=S, mode="bicubic", align_corners=False
    )
    base.calibrate(x.clamp(0, 1))
    shaped = copy.deepcopy(base)
    with torch.no_grad():
        for p in shaped.discriminator.parameters():
            p.add_(0.05 * torch.randn_like(p))
        shaped.d_real_median.fill_(float(base.d_real_median) + 0.5)
    bad = copy.deepcopy(base)
    with torch.no_grad():
        next(bad.generator.parameters()).view(-1)[0] += 1e-3
    paths = {
        "base": save_model(base, root / "base.safetensors"),
        "shaped": save_model(shaped, root / "shaped.safetensors"),
        "bad": save_model(bad, root / "other_g.safetensors"),
    }
    return root, paths


def _argv(root, paths, out, *extra):
    return ["--base", str(paths["base"]), "--data-root", str(root / "fmnist"), "-n", str(N), "--out", str(out),
            "--iterations", str(ITER), "--restarts", str(RESTARTS), "--search-seed", str(SEARCH_SEED),
            "--batch-size", "3", "--figure-rows", "3", "--no-progress", *extra]  # fmt: skip


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def full_run(setup, tmp_path_factory):
    """Both default protocols, refinement of 3 steps without stopping, a shaped variant, and a feed-forward
    reference (the embedded GLCIC, RGB 32 px) through the Inpainter; run from inside the data folder so
    relative paths can be checked."""
    root, paths = setup
    argv = _argv(root, paths, root / "out", "--refine-steps", "3", "--stop-rule", "none",
                 "--shaped", f"s1={paths['shaped']}", "--model", "glcic=glcic-cifar10")  # fmt: skip
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    try:
        rep = run_report(parse_args(argv), argv)
    finally:
        mp.undo()
    return rep


def test_outputs_tables_and_counts(full_run, setup):
    root, _ = setup
    out = root / "out"
    for name in ("per_image.csv", "results.csv", "results.md", "results.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    for proto in ("center", "freeform_buckets"):
        for name in (f"figure_{proto}.png", f"figure_{proto}_shaped-s1.png", f"comparison_{proto}.png"):
            assert (out / name).is_file()
    assert not list(out.glob(".*"))  # no temporary files left behind
    assert full_run.variants == VARIANTS

    per = _read(out / "per_image.csv")
    assert len(per) == 2 * len(VARIANTS) * N
    for proto in ("center", "freeform_buckets"):
        for v in VARIANTS:
            sel = [r for r in per if r["protocol"] == proto and r["variant"] == v]
            assert sorted(int(r["index"]) for r in sel) == list(range(N))
    res = _read(out / "results.csv")
    overall = [(r["protocol"], r["variant"]) for r in res if r["bucket"] == "all"]
    assert overall == [(p, v) for p in ("center", "freeform_buckets") for v in VARIANTS]
    assert all(int(r["count"]) == N for r in res if r["bucket"] == "all")
    # freeform_buckets: image i falls in bucket i mod 4, so 4 images give 4 bucket groups of one image
    buckets = {r["bucket"] for r in res if r["protocol"] == "freeform_buckets" and r["bucket"] != "all"}
    assert buckets == {"0-10%", "10-20%", "20-30%", "30-40%"}
    assert not [r for r in res if r["protocol"] == "center" and r["bucket"] != "all"]  # one bucket: no split

    # the semantic extras: steps and logits where there is a discriminator, empty for the references
    for r in per:
        if r["variant"] in ("collab", "shaped-s1"):
            assert r["steps"] == "3" and r["d_proposal"] and r["d_refined"]
        elif r["variant"] == "yeh":
            assert r["steps"] == "" and r["d_proposal"] and r["d_refined"] == ""
        else:
            assert r["steps"] == r["d_proposal"] == r["d_refined"] == ""
    # the same latent, another discriminator: other logits on the same proposal
    pick = lambda v, k: [r[k] for r in per if r["variant"] == v]  # noqa: E731
    assert pick("collab", "d_proposal") == pick("yeh", "d_proposal")
    assert pick("shaped-s1", "d_proposal") != pick("collab", "d_proposal")

    md = (out / "results.md").read_text()
    assert "**" in md and "## center" in md and "## freeform_buckets" in md
    reason = M.available_metrics()["fid"].reason
    results = json.loads((out / "results.json").read_text())
    if not M.available_metrics()["fid"].available:
        assert f"fid: unavailable ({reason})" in md and results["unavailable"]["fid"] == reason
    else:  # FID and paired KID per protocol and variant, in the json and on the table's "all" rows
        assert "fid: unavailable" not in md and "| KID×1000 ↓ |" in md
        for proto in ("center", "freeform_buckets"):
            scores = results["realism"][proto]
            assert set(scores) == set(VARIANTS)
            assert all(math.isfinite(scores[v]["fid"]) and math.isfinite(scores[v]["kid"]) for v in VARIANTS)
            # five different fills of the same holes: they cannot all score alike
            assert len({round(scores[v]["fid"], 6) for v in VARIANTS}) > 1
    # settings without the machine's absolute paths: relative to the working directory (the data folder)
    text = (out / "results.json").read_text()
    assert str(root) not in text
    assert results["settings"]["command"].startswith(PROG + " --base base.safetensors")
    assert results["models"]["base"]["path"] == "base.safetensors"
    assert results["models"]["shaped"][0]["path"] == "shaped.safetensors"
    assert results["settings"]["data"]["root"] == "fmnist"
    assert (
        results["settings"]["search"]["iterations"] == ITER
        and results["settings"]["refine"]["refine_steps"] == 3
    )
    assert results["settings"]["threads"] == 1 and results["machine"]["cpu"]
    for v in VARIANTS:
        assert results["timing"]["center"][v]["sec_per_image"] > 0


def test_known_pixels_unchanged_and_references(full_run):
    for proto, outs in full_run.outputs.items():
        x, m = full_run.images[proto], full_run.masks[proto]
        assert x.shape == (N, 1, S, S) and m.shape == (N, 1, S, S)
        known = (m < 0.5).expand_as(x)
        for v, y in outs.items():
            assert y.shape == x.shape
            assert torch.equal(y[known], x[known]), (proto, v)
            assert not torch.equal(y, x), (proto, v)  # the hole was filled
        assert not torch.equal(outs["collab"], outs["yeh"])  # 3 refinement steps changed the fill
        assert not torch.equal(outs["shaped-s1"], outs["collab"])  # another discriminator, another fill


def test_semantic_variants_match_the_methods_own_calls(full_run, setup):
    """yeh = inpaint(collaborative=False), collab = inpaint(collaborative=True), batch by batch."""
    _, paths = setup
    method, _ = load_model(paths["base"])
    kw = dict(
        iterations=ITER, restarts=RESTARTS, seed=SEARCH_SEED, progress=False, refine_steps=3, stop_rule="none"
    )
    for proto in ("center", "freeform_buckets"):
        x, m, outs = full_run.images[proto], full_run.masks[proto], full_run.outputs[proto]
        for sl in (slice(0, 3), slice(3, 4)):  # --batch-size 3: the runner's two batches
            yeh = method.inpaint(x[sl], m[sl], collaborative=False, **kw)
            collab = method.inpaint(x[sl], m[sl], collaborative=True, **kw)
            assert torch.equal(outs["yeh"][sl], yeh)
            assert torch.equal(outs["collab"][sl], collab)
        per = M.compute_all(outs["yeh"], x, m)  # the per-image numbers are these metrics
        rows = [r for r in full_run.rows if r["protocol"] == proto and r["variant"] == "yeh"]
        assert [r["psnr_hole"] for r in rows] == [float(v) for v in per["psnr_hole"]]


def test_zero_refine_steps_collab_equals_yeh_and_is_deterministic(setup):
    root, paths = setup
    outs = []
    for k in range(2):
        out = root / f"zero{k}"
        argv = _argv(
            root,
            paths,
            out,
            "--refine-steps",
            "0",
            "--protocol",
            "center",
            "--shaped",
            f"s1={paths['shaped']}",
        )
        assert main(argv) == 0
        outs.append(out)
    per = _read(outs[0] / "per_image.csv")
    for variant in ("collab", "shaped-s1"):
        a = [r for r in per if r["variant"] == variant]
        b = [r for r in per if r["variant"] == "yeh"]
        assert len(a) == len(b) == N
        for ra, rb in zip(a, b):
            assert ra["steps"] == "0"
            assert all(ra[k] == rb[k] for k in ("index", "l1_hole", "psnr_hole", "ssim_hole"))
    # same arguments, same numbers (the timings live in results.csv / results.json only)
    assert (outs[0] / "per_image.csv").read_bytes() == (outs[1] / "per_image.csv").read_bytes()


def test_bad_shaped_inputs_are_one_line_errors(setup, capsys):
    root, paths = setup
    out = root / "err"
    assert main(_argv(root, paths, out, "--shaped", f"g={paths['bad']}")) == 2
    err = capsys.readouterr().err
    assert "other_g.safetensors" in err and "generator" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert main(_argv(root, paths, out, "--shaped", str(paths["shaped"]))) == 2
    assert "LABEL=PATH" in capsys.readouterr().err
    assert main(_argv(root, paths, out, "--shaped", f"x={root / 'missing.safetensors'}")) == 2
    assert "missing.safetensors" in capsys.readouterr().err
    assert main(_argv(root, paths, out, "--data-root", str(root / "nowhere"))) == 2
    assert "dataset-fashion-mnist" in capsys.readouterr().err
    assert not (out / "results.csv").exists()


def test_help_explains_variants_and_outputs(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for word in (
        "--shaped LABEL=PATH",
        "shaped-LABEL",
        "per_image.csv",
        "comparison_<protocol>.png",
        "--refine-steps",
    ):
        assert word in text


def test_latent_cache_skips_the_search_and_gives_the_same_numbers(setup, monkeypatch):
    from inpaintgan.methods.semantic import SemanticInpainting

    root, paths = setup
    cache = root / "latents"
    first = root / "cache0"
    assert main(_argv(root, paths, first, "--protocol", "center", "--latents", str(cache))) == 0
    assert len(list(cache.glob("z_*.pt"))) == 2  # N = 4 images in batches of 3: two batches

    def no_search(*a, **k):
        raise AssertionError("the search ran although its latents were cached")

    monkeypatch.setattr(SemanticInpainting, "search_latent", no_search)
    second = root / "cache1"  # a new variant added: refinement only
    argv = _argv(root, paths, second, "--protocol", "center", "--latents", str(cache), "--shaped", f"s1={paths['shaped']}")
    assert main(argv) == 0
    a = {(r["variant"], r["index"]): r for r in _read(first / "per_image.csv")}
    b = {(r["variant"], r["index"]): r for r in _read(second / "per_image.csv")}
    for key, row in a.items():
        assert all(row[k] == b[key][k] for k in ("l1_hole", "psnr_hole", "ssim_hole")), key
    assert any(v == "shaped-s1" for v, _ in b)
    # other search settings: another key, so the (now forbidden) search is asked for
    with pytest.raises(AssertionError, match="the search ran"):
        run_report(parse_args(_argv(root, paths, root / "cache2", "--protocol", "center", "--latents", str(cache),
                                    "--iterations", str(ITER + 1))))  # fmt: skip


def test_shaping_plot_only_for_numeric_labels(tmp_path):
    from inpaintgan.experiments.semantic_report import shaping_epochs, shaping_plot

    assert shaping_epochs(["shaped-0.1", "shaped-2"]) == {"shaped-0.1": 0.1, "shaped-2": 2.0}
    assert shaping_epochs(["shaped-0.5", "shaped-s1"]) is None  # no axis for a named variant
    rows = [
        {"protocol": "center", "bucket": "all", "variant": v, "psnr_hole": p, "ssim_hole": q, "steps": st}
        for v, p, q, st in [("yeh", 16.2, 0.41, None), ("collab", 15.8, 0.39, 20.0), ("shaped-0.5", 16.1, 0.40, 30.0),
                            ("shaped-2", 16.15, 0.41, 29.0)]
    ]  # fmt: skip
    path = shaping_plot(rows, "center", shaping_epochs(["shaped-0.5", "shaped-2"]), tmp_path / "shaping_center.png")
    from PIL import Image

    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > 600 and im.height > 200
    assert not list(tmp_path.glob("*.tmp*"))  # written through a temp file, then renamed


def test_recorded_command_keeps_relative_paths_and_hides_machine_ones(tmp_path, monkeypatch):
    from inpaintgan.experiments.semantic_report import command_line, portable_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.safetensors").write_bytes(b"")
    assert portable_path(tmp_path / "m.safetensors") == "m.safetensors"  # inside the working directory
    assert portable_path("../shared/data/photos/val") == "../shared/data/photos/val"  # relative: as typed
    assert portable_path("/opt/somewhere/data") == "data"  # an absolute machine path: the bare name
    cmd = command_line(["--data", "../shared/data/photos/val", "--model", f"a={tmp_path / 'm.safetensors'}"])
    assert cmd.endswith("--data ../shared/data/photos/val --model a=m.safetensors")
