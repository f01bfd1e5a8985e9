"""The shared trainer: phases freeze the right networks, overfitting works, resume is exact,
checkpoint writes are atomic, bad input is reported clearly."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
import torch

from conftest import tiny_glcic_overrides
from inpaintgan.checkpoints import CheckpointError, load_model, load_training_state
from inpaintgan.config import ConfigError, load_config
from inpaintgan.registry import UnknownNameError
from inpaintgan.training import state as state_mod
from inpaintgan.training.trainer import Trainer, lr_factor, train


def _cfg(data, out, *extra, steps=(3, 2, 3)):
    return load_config(None, tiny_glcic_overrides(data, out, steps) + list(extra))


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before, after):
    return any(not torch.equal(before[k], after[k]) for k in before)


def test_phases_change_exactly_their_networks(image_folder, tmp_path):
    out = tmp_path / "run"
    t = Trainer(_cfg(image_folder, out, "train.max_steps=0"), progress=False)
    g0, d0 = _snapshot(t.method.generator), _snapshot(t.method.discriminator)
    snaps = []
    for upto in (3, 5, 8):  # end of completion, discriminator, joint phases
        cfg = _cfg(image_folder, out, f"train.max_steps={upto}")
        tr = Trainer(cfg, progress=False)
        tr.run(resume="auto")
        snaps.append((_snapshot(tr.method.generator), _snapshot(tr.method.discriminator)))
    (g1, d1), (g2, d2), (g3, d3) = snaps
    # completion: G changes, D bit-identical (parameters and BatchNorm statistics)
    assert _changed(g0, g1) and not _changed(d0, d1)
    # discriminator phase: G bit-identical, D changes
    assert not _changed(g1, g2) and _changed(d1, d2)
    # joint: both change
    assert _changed(g2, g3) and _changed(d2, d3)


def test_loss_falls_when_overfitting_one_batch(image_folder, tmp_path):
    cfg = _cfg(image_folder, tmp_path / "o", "data.limit=4", "data.flip=false", "train.batch_size=4", steps=(120, 0, 0))
    cfg.masks.kind = "center"  # the same hole every step: a fixed batch to overfit
    result = train(cfg, progress=False)
    with open(tmp_path / "o" / "metrics.csv") as f:
        losses = [float(r["train/loss_mse"]) for r in csv.DictReader(f) if r.get("train/loss_mse")]
    assert result.step == 120
    assert sum(losses[-10:]) / 10 < 0.3 * sum(losses[:5]) / 5


def test_resume_is_equivalent_to_straight_run(image_folder, tmp_path):
    sched = "train.lr_schedule=cosine"  # the learning rate schedule must continue too
    straight = Trainer(_cfg(image_folder, tmp_path / "a", sched), progress=False)
    straight.run()
    first = Trainer(_cfg(image_folder, tmp_path / "b", sched, "train.max_steps=4"), progress=False)
    first.run()
    second = Trainer(_cfg(image_folder, tmp_path / "b", sched), progress=False)
    second.run(resume="auto")
    assert second.step == straight.step == 8
    a, b = straight.method.state_dict(), second.method.state_dict()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6, rtol=0), k
    for name in straight.optimizers:
        sa = straight.optimizers[name].state_dict()["state"]
        sb = second.optimizers[name].state_dict()["state"]
        for i in sa:
            assert torch.allclose(sa[i]["exp_avg"], sb[i]["exp_avg"], atol=1e-6, rtol=0)


def test_lr_schedules():
    assert lr_factor("constant", 5, 10, 0.1) == 1.0
    assert lr_factor("cosine", 0, 11, 0.1) == pytest.approx(1.0)
    assert lr_factor("cosine", 5, 11, 0.1) == pytest.approx(0.55)
    assert lr_factor("cosine", 10, 11, 0.1) == pytest.approx(0.1)
    assert lr_factor("linear", 5, 11, 0.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="known: constant, cosine, linear"):
        lr_factor("step", 1, 10, 0.1)


def test_interrupted_checkpoint_write_keeps_previous(image_folder, tmp_path, monkeypatch):
    out = tmp_path / "run"
    tr = Trainer(_cfg(image_folder, out, "train.max_steps=2"), progress=False)
    tr.run()
    good = state_mod.list_checkpoints(out)[-1]

    def broken_save(obj, path, *a, **k):
        with open(path, "wb") as f:
            f.write(b"\x80\x02half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    tr.step = 3
    with pytest.raises(OSError):
        tr.save()
    monkeypatch.undo()
    files = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert files == [good.name]  # no temp file left, previous intact
    assert load_training_state(good)["progress"]["step"] == 2
    # a damaged newest file is skipped by --resume auto
    (out / "checkpoints" / "step_00000009.pt").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="skipping unusable checkpoint"):
        assert state_mod.find_resume(out, "auto") == good


def test_checkpoint_refuses_pickled_objects(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    p = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, p)
    with pytest.raises(CheckpointError, match="pickled objects"):
        load_training_state(p)


def test_bad_config_and_data_errors(tmp_path, image_folder):
    with pytest.raises(ConfigError, match="valid keys here: .*batch_size"):
        load_config(None, ["train.batchsize=3"])
    with pytest.raises(UnknownNameError, match="known methods: .*glcic"):
        load_config(None, ["method=nope"])
    with pytest.raises(ConfigError, match="expected an integer"):
        load_config(None, ["train.batch_size=abc"])
    with pytest.raises(FileNotFoundError, match="data folder not found"):
        Trainer(_cfg(tmp_path / "missing", tmp_path / "r"), progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        Trainer(_cfg(tmp_path / "empty", tmp_path / "r"), progress=False)


def test_unreadable_images_are_skipped_and_counted(image_folder, tmp_path):
    (image_folder / "class0" / "broken.png").write_bytes(b"not a png at all")
    with pytest.warns(UserWarning, match="skipping unreadable image"):
        result = train(_cfg(image_folder, tmp_path / "r", "data.val_fraction=0.0", "train.batch_size=25", steps=(2, 0, 0)), progress=False)
    assert result.skipped_images >= 1


def _run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "inpaintgan", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_cli_train_export_and_inpaint(image_folder, tmp_path):
    out = tmp_path / "cli_run"
    sets = []
    for o in tiny_glcic_overrides(image_folder, out, (2, 1, 2)):
        sets += ["--set", o]
    r = _run_cli("train", *sets, "--set", "train.sample_every=5", "--no-progress", "--export", str(tmp_path / "m.safetensors"))
    assert r.returncode == 0, r.stderr
    assert "validation hole_l1" in r.stdout
    assert (out / "samples" / "step_00000005.png").is_file()
    assert (out / "config.yaml").is_file()
    method, meta = load_model(tmp_path / "m.safetensors")
    assert meta["method"] == "glcic" and meta["training"]["steps"] == 5
    img = torch.rand(2, 3, 16, 16)
    mask = torch.zeros(2, 1, 16, 16)
    mask[:, :, 4:9, 5:11] = 1
    res = method.inpaint(img, mask)
    assert torch.equal(res[mask.expand_as(res) == 0], img[mask.expand_as(img) == 0])
    r = _run_cli("train", "--set", "train.nope=1")
    assert r.returncode == 2 and "unknown config key 'train.nope'" in r.stderr and "Traceback" not in r.stderr
    # export never writes over the checkpoint it reads; --working-size sets the fill scale
    ckpt = sorted((out / "checkpoints").glob("*.pt"))[-1]
    before = ckpt.read_bytes()
    r = _run_cli("export", str(ckpt), "-o", str(ckpt))
    assert r.returncode != 0 and "is the checkpoint being exported" in r.stderr and "Traceback" not in r.stderr
    assert ckpt.read_bytes() == before
    r = _run_cli("export", str(out), "-o", str(tmp_path / "w.safetensors"), "--working-size", "64")
    assert r.returncode == 0, r.stderr
    _, meta = load_model(tmp_path / "w.safetensors")
    assert meta["image_size"] == 64 and meta["training"]["image_size"] == 16


def test_torchrun_two_processes_stay_in_sync(image_folder, tmp_path):
    pytest.importorskip("torch.distributed")
    out = tmp_path / "ddp"
    sets = []
    for o in tiny_glcic_overrides(image_folder, out, (2, 1, 2)):
        sets += ["--set", o]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "inpaintgan", "train", *sets,
           "--set", "train.device=cpu", "--no-progress"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    payload = load_training_state(state_mod.list_checkpoints(out)[-1])
    assert payload["progress"]["step"] == 5
    # rank 0 decides on the run folder for everyone: the same refusal on both ranks, not a hang
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode != 0
    assert again.stderr.count("already holds checkpoints") >= 2, again.stderr[-3000:]
    resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]


def test_init_from_exported_weights(image_folder, tmp_path):
    first = Trainer(_cfg(image_folder, tmp_path / "a", steps=(2, 0, 0)), progress=False)
    first.run()
    from inpaintgan.checkpoints import save_model

    save_model(first.method, tmp_path / "m.safetensors")
    warm = Trainer(_cfg(image_folder, tmp_path / "b", "train.seed=5", f"train.init_from={tmp_path / 'm.safetensors'}"), progress=False)
    cold = Trainer(_cfg(image_folder, tmp_path / "c", "train.seed=5"), progress=False)
    a, b, c = first.method.generator.state_dict(), warm.method.generator.state_dict(), cold.method.generator.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    with pytest.raises(CheckpointError, match="holds a 'glcic' model, not 'pconv'"):
        from inpaintgan.checkpoints import load_weights_into
        from inpaintgan.methods.pconv import PConvConfig, PConvGAN

        load_weights_into(PConvGAN(PConvConfig(width=0.125, depth=3), image_size=32), tmp_path / "m.safetensors")


def test_rng_state_restores_from_device_tensors():
    """A checkpoint read with map_location="cuda" (a resumed GPU run) holds its RNG states as CUDA
    tensors, which torch.set_rng_state / Generator.set_state reject ("RNG state must be a
    torch.ByteTensor"). The trainer brings them back to the CPU first. CI has no GPU, so a stand-in
    whose only usable form is ``.cpu()`` plays the CUDA tensor."""
    from inpaintgan.training.trainer import TrainContext, _rng_state, _set_rng_state

    class OnDevice:  # behaves like a CUDA tensor: set_rng_state cannot take it as it is
        def __init__(self, t):
            self._t = t

        def cpu(self):
            return self._t

    ctx = TrainContext({}, torch.device("cpu"), seed=3)
    saved = _rng_state(ctx)
    expect_global, expect_ctx = torch.rand(4), torch.rand(4, generator=ctx.generator)
    torch.rand(10), torch.rand(10, generator=ctx.generator)  # move both streams on
    _set_rng_state(ctx, {k: OnDevice(v) for k, v in saved.items()})
    assert torch.equal(torch.rand(4), expect_global)
    assert torch.equal(torch.rand(4, generator=ctx.generator), expect_ctx)


def test_existing_run_folder_needs_resume_or_explicit_restart(image_folder, tmp_path):
    """Training into a folder that already holds checkpoints, without --resume, used to start again
    from step 0 silently (and a later --resume could mix the two runs): it is refused, naming the
    choices; --resume none restarts deliberately."""
    out = tmp_path / "run"
    Trainer(_cfg(image_folder, out, "train.max_steps=4"), progress=False).run()
    assert state_mod.list_checkpoints(out)
    with pytest.raises(CheckpointError, match=r"already holds checkpoints \(newest: step_0+4\.pt\).*--resume"):
        Trainer(_cfg(image_folder, out), progress=False).run()
    assert [p.name for p in state_mod.list_checkpoints(out)] == ["step_00000004.pt"]  # untouched
    again = Trainer(_cfg(image_folder, out, "train.max_steps=2"), progress=False)
    again.run(resume="none")  # deliberate restart: the old checkpoints are gone, the new one is there
    assert again.step == 2
    assert [p.name for p in state_mod.list_checkpoints(out)] == ["step_00000002.pt"]
    cont = Trainer(_cfg(image_folder, out), progress=False)
    cont.run(resume="auto")
    assert cont.step == 8


def test_resume_refuses_what_would_lose_checkpoints(image_folder, tmp_path):
    """--resume of an older checkpoint into a folder with later ones (saving would prune the new
    lower-numbered files), and --resume auto when no checkpoint can be read, are refused."""
    old = tmp_path / "old"
    Trainer(_cfg(image_folder, old, "train.max_steps=2", "train.ckpt_every=1", "train.keep_last=5"), progress=False).run()
    first = state_mod.list_checkpoints(old)[0]
    assert first.name == "step_00000001.pt"
    with pytest.raises(CheckpointError, match=r"at step 1 but run folder .* holds later checkpoints \(step_00000002\.pt\)"):
        Trainer(_cfg(image_folder, old), progress=False).run(resume=str(first))
    fresh = Trainer(_cfg(image_folder, tmp_path / "copy"), progress=False)  # the same checkpoint into a new folder
    fresh.run(resume=str(first))
    assert fresh.step == 8
    for p in state_mod.list_checkpoints(old):
        p.write_bytes(b"damaged")
    with pytest.warns(UserWarning, match="skipping unusable checkpoint"):
        with pytest.raises(CheckpointError, match=r"none of the 2 checkpoints in .* could be read"):
            Trainer(_cfg(image_folder, old), progress=False).run(resume="auto")


def test_rng_reseeded_on_other_ranks_and_other_generator_kinds():
    """Only rank 0's RNG states are saved: other ranks must not all take them (they would draw the same
    method randomness), and a state of another generator kind (CPU vs CUDA) cannot be set: both reseed
    from (seed, rank, step), deterministically."""
    from inpaintgan.training.trainer import TrainContext, _rng_state, _set_rng_state

    ctx0 = TrainContext({}, torch.device("cpu"), seed=0)
    saved = _rng_state(ctx0)
    draws = []
    for rank in (1, 2, 1):
        ctx = TrainContext({}, torch.device("cpu"), seed=rank)
        _set_rng_state(ctx, saved, rank=rank, seed=0, step=10)
        draws.append(torch.rand(3, generator=ctx.generator))
    assert torch.equal(draws[0], draws[2]) and not torch.equal(draws[0], draws[1])
    ctx = TrainContext({}, torch.device("cpu"), seed=0)
    _set_rng_state(ctx, {**saved, "ctx": torch.zeros(16, dtype=torch.uint8)}, rank=0, seed=0, step=10)
    a = torch.rand(3, generator=ctx.generator)
    ctx2 = TrainContext({}, torch.device("cpu"), seed=5)
    _set_rng_state(ctx2, {**saved, "ctx": torch.zeros(16, dtype=torch.uint8)}, rank=0, seed=0, step=10)
    assert torch.equal(a, torch.rand(3, generator=ctx2.generator))  # reseeded, not a crash


def test_unfreeze_restores_what_freeze_found():
    """A network the phase froze (or a parameter frozen on purpose) stays frozen after a method's
    freeze/unfreeze pair; nested pairs unwind in order."""
    from inpaintgan.training.trainer import TrainContext

    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    net[0].weight.requires_grad_(False)  # e.g. frozen by the phase
    before = [p.requires_grad for p in net.parameters()]
    ctx = TrainContext({}, torch.device("cpu"))
    ctx.freeze(net)
    assert not any(p.requires_grad for p in net.parameters())
    ctx.freeze(net)
    ctx.unfreeze(net)
    assert not any(p.requires_grad for p in net.parameters())  # the outer freeze still holds
    ctx.unfreeze(net)
    assert [p.requires_grad for p in net.parameters()] == before == [False, True, True, True]
