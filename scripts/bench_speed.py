#!/usr/bin/env python
"""Training speed: gancli's trainer against the plain eager loop a user would write, side by side, and how
cost grows with batch size and resolution.

Each measurement runs in a fresh process (its own peak memory, compile cache and allocator), on the
embedded `shapes` data held in memory. The hand-written loop uses the very networks gancli builds for the
run (same initialisation), the same optimizers and the same losses; it reads its batches from a
DataLoader over the same tensors, moves them to the device and, as the reference scripts do, logs
`loss.item()` every step. gancli's speed is what its trainer logs (img/s over log windows, the first
window dropped as warm-up); the hand loop's is timed the same way. FLOPs of one step are counted with
torch.utils.flop_counter (forward and backward of convolutions and matmuls).

    python scripts/bench_speed.py                                      # dcgan + stylegan2 at 32 px, batch 64 / 512
    python scripts/bench_speed.py --settings default compile           # compile: trainer.compile=true
    python scripts/bench_speed.py --scaling --models dcgan stylegan2   # img/s and memory vs batch and resolution
    python scripts/bench_speed.py --ddp 2 --models dcgan --batch 64     # torchrun with 2 processes against 1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchlib
import torch

SETTINGS = {  # gancli's side; the hand loop is always eager fp32
    "default": [],
    "compile": ["trainer.compile=true"],
    "fast": ["trainer.compile=true", "trainer.amp=true", "trainer.channels_last=true"],
}
PEAK_TFLOPS = {"H100": (989, 67), "H200": (989, 67), "A100": (312, 19.5)}  # dense bf16, fp32 (vendor sheets)


def overrides(model: str, batch: int, resolution: int, steps: int, log_every: int) -> list[str]:
    return [
        f"model={model}",
        "dataset=shapes",
        f"dataset.resolution={resolution}",
        "dataset.n=4096",
        f"trainer.batch_size={batch}",
        f"trainer.steps={steps}",
        f"trainer.log_every={log_every}",
        "trainer.sample_every=0",
        "trainer.ckpt_every=0",
        "trainer.keep=0",
        "trainer.num_workers=0",
    ]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------------------ hand loops
def hand_dcgan(algorithm, loader, steps: int, warmup: int, device):
    """The DCGAN loop of the PyTorch examples: BCE with logits, D on real and detached fake, then G."""
    G, D = algorithm.G, algorithm.D
    opt_g, opt_d = (torch.optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999)) for m in (G, D))
    bce = torch.nn.BCEWithLogitsLoss()
    z_dim = algorithm.z_dim

    def step(real):
        real = real.to(device, non_blocking=True).float().div(127.5).sub(1)
        z = torch.randn(len(real), z_dim, device=device)
        fake = G(z)
        d_real, d_fake = D(real)[0], D(fake.detach())[0]
        loss_d = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        d_fake = D(fake)[0]
        loss_g = bce(d_fake, torch.ones_like(d_fake))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return loss_d.item(), loss_g.item()

    return timed_loop(step, loader, steps, warmup, device)


def hand_stylegan2(algorithm, loader, steps: int, warmup: int, device):
    """StyleGAN2's loop as its paper describes it: non-saturating loss, style mixing, lazy R1 every 16 D
    steps and path length every 4 G steps, with the lazy intervals' Adam rescaling."""
    from gancli.nets.stylegan2 import draw_mixed_ws

    G, D, m = algorithm.G, algorithm.D, algorithm.cfg.model
    r1_every, pl_every, gamma, pl_weight = int(m.r1_every), int(m.pl_every), float(m.r1_gamma), float(m.pl_weight)
    opt_d = torch.optim.Adam(
        D.parameters(), lr=0.002 * r1_every / (r1_every + 1), betas=(0.0, 0.99 ** (r1_every / (r1_every + 1))), eps=1e-8
    )
    opt_g = torch.optim.Adam(
        G.parameters(), lr=0.002 * pl_every / (pl_every + 1), betas=(0.0, 0.99 ** (pl_every / (pl_every + 1))), eps=1e-8
    )
    softplus = torch.nn.functional.softplus
    pl_mean, counter = torch.zeros((), device=device), [0]

    def ws(n):
        return draw_mixed_ws(G.mapping, n, algorithm.z_dim, float(m.style_mixing), device, None, track=True)

    def step(real):
        nonlocal pl_mean
        i = counter[0]
        counter[0] += 1
        real = real.to(device, non_blocking=True).float().div(127.5).sub(1)
        n = len(real)
        with torch.no_grad():
            fake = G.synthesis(ws(n))
        loss_d = softplus(D(fake)).mean() + softplus(-D(real)).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        if i % r1_every == 0:
            x = real.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
            opt_d.zero_grad(set_to_none=True)
            (grad.square().sum([1, 2, 3]).mean() * (gamma / 2) * r1_every).backward()
            opt_d.step()
        D.requires_grad_(False)
        loss_g = softplus(-D(G.synthesis(ws(n)))).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        if i % pl_every == 0:
            w = ws(max(1, n // 2))
            img = G.synthesis(w)
            y = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
            (grad,) = torch.autograd.grad((img * y).sum(), w, create_graph=True)
            lengths = grad.square().sum(2).mean(1).sqrt()
            pl_mean = pl_mean.lerp(lengths.mean().detach(), 0.01)
            opt_g.zero_grad(set_to_none=True)
            ((lengths - pl_mean).square().mean() * pl_weight * pl_every).backward()
            opt_g.step()
        D.requires_grad_(True)
        return loss_d.item(), loss_g.item()

    return timed_loop(step, loader, steps, warmup, device)


HAND = {"dcgan": hand_dcgan, "stylegan2": hand_stylegan2}


def loader_for(algorithm, batch: int):
    """What a user writes: a shuffling DataLoader over the uint8 images in host memory."""
    from gancli.data import build_dataset

    source = build_dataset(algorithm.cfg.dataset)
    stream = source.stream(batch, torch.device("cpu"), 0)
    images = stream.tensors["x"]
    return torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(images),
        batch_size=batch,
        shuffle=True,
        drop_last=True,
        pin_memory=torch.cuda.is_available(),
    )


def timed_loop(step, loader, steps: int, warmup: int, device):
    done, t0 = 0, None
    while done < steps:
        for (real,) in loader:
            if done == warmup:
                sync(device)
                t0 = time.perf_counter()
            step(real)
            done += 1
            if done == steps:
                break
    sync(device)
    seconds = time.perf_counter() - t0
    return (steps - warmup) / seconds, step


def count_flops(step, loader) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    (real,) = next(iter(loader))
    with FlopCounterMode(display=False) as counter:
        step(real)
    return float(counter.get_total_flops())


# ------------------------------------------------------------------------------------------ one measurement
def measure(args) -> dict:
    """One (impl, model, batch, resolution, setting) in this process."""
    torch.manual_seed(0)
    batch, res = args.batch[0], args.resolution[0]
    steps = args.warmup + args.steps
    with tempfile.TemporaryDirectory() as tmp:
        ov = overrides(args.models[0], batch, res, steps, args.warmup) + SETTINGS[args.settings[0]] + args.overrides
        if args.impl == "gancli":
            trainer, _ = benchlib.train(ov, Path(tmp))
            device = trainer.device
            windows = [json.loads(ln) for ln in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
            speeds = [w["img_per_s"] for w in windows if w["step"] > args.warmup]
            img_s = len(speeds) / sum(1 / s for s in speeds)  # the same images in each window
            flops = None
        else:
            algorithm = benchlib.build_only(ov, Path(tmp))
            algorithm.train_mode(True)
            device = algorithm.device
            loader = loader_for(algorithm, batch)
            steps_s, step = HAND[args.models[0]](algorithm, loader, steps, args.warmup, device)
            img_s = steps_s * batch
            flops = count_flops(step, loader)
    peak = (
        torch.cuda.max_memory_allocated(device)
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    return {
        "img_s": img_s,
        "ms_step": 1000 * batch / img_s,
        "peak_mb": peak / 2**20,
        "flops": flops,
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads)",
    }


def child(impl: str, model: str, batch: int, res: int, setting: str, args) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--one",
        impl,
        "--models",
        model,
        "--batch",
        str(batch),
        "--resolution",
        str(res),
        "--settings",
        setting,
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        *args.overrides,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode or not lines:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": tail[0][:160]}
    return json.loads(lines[-1])


def torchrun_speed(model: str, batch: int, res: int, procs: int, args) -> float:
    """img/s of `gan train` under torchrun (the global batch shared by `procs` processes), from its log."""
    with tempfile.TemporaryDirectory() as tmp:
        ov = overrides(model, batch, res, args.warmup + args.steps, args.warmup) + [
            f"hydra.run.dir={tmp}/run",
            "trainer.progress=false",
            "logger=none",
            *args.overrides,
        ]
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={procs}",
            "-m",
            "gancli",
            "train",
            *ov,
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        if out.returncode:
            raise SystemExit(out.stderr[-2000:])
        windows = [json.loads(ln) for ln in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
    speeds = [w["img_per_s"] for w in windows if w["step"] > args.warmup]
    return len(speeds) / sum(1 / s for s in speeds)


def peak_tflops(device: str, setting: str) -> str:
    for name, (bf16, fp32) in PEAK_TFLOPS.items():
        if name in device:
            return f"{bf16 if setting == 'fast' else fp32:g}"
    return ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["dcgan", "stylegan2"])
    ap.add_argument("--batch", nargs="+", default=["64", "512"])
    ap.add_argument("--resolution", nargs="+", default=["32"])
    ap.add_argument(
        "--settings",
        nargs="+",
        default=None,
        help=f"gancli's settings: {', '.join(SETTINGS)} "
        "(default: default and compile on the CPU, default and fast on a GPU)",
    )
    ap.add_argument("--steps", type=int, default=30, help="timed steps (after the warm-up)")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--scaling", action="store_true", help="gancli alone over every --batch × --resolution")
    ap.add_argument(
        "--ddp",
        type=int,
        default=0,
        help="gancli under torchrun with this many processes (CPU: gloo, "
        "one thread each) against one process with one thread",
    )
    ap.add_argument("--one", choices=["gancli", "hand"], dest="impl", help=argparse.SUPPRESS)
    ap.add_argument("--out", help="also write the markdown table here")
    ap.add_argument("overrides", nargs="*", help="extra config overrides for gancli's runs (and the networks)")
    args = benchlib.parse_args(ap, {"models": "model", "batch": int, "resolution": int})
    if args.settings is None:
        args.settings = ["default", "fast"] if torch.cuda.is_available() else ["default", "compile"]
    if args.impl:
        print(json.dumps(measure(args)), flush=True)
        return
    if args.ddp:
        table = benchlib.Table("model", "batch", "processes", "img/s", "speed-up")
        for model in args.models:
            for batch in args.batch:
                one = torchrun_speed(model, batch, args.resolution[0], 1, args)
                table.add(model, batch, 1, f"{one:.0f}", "1.00")
                many = torchrun_speed(model, batch, args.resolution[0], args.ddp, args)
                table.add(model, batch, args.ddp, f"{many:.0f}", f"{many / one:.2f}")
        table.write(args.out)
        return
    if args.scaling:
        table = benchlib.Table("model", "resolution", "batch", "img/s", "ms/step", "peak MB", "device")
        for model in args.models:
            for res in args.resolution:
                for batch in args.batch:
                    r = child("gancli", model, batch, res, args.settings[0], args)
                    table.add(model, res, batch, *_cells(r, "img_s", "ms_step", "peak_mb"), r.get("device", ""))
        table.write(args.out)
        return
    table = benchlib.Table(
        "model", "batch", "loop", "img/s", "ms/step", "peak MB", "× hand loop", "TFLOP/s", "device peak", "device"
    )
    for model in args.models:
        for batch in args.batch:
            res = args.resolution[0]
            hand = child("hand", model, batch, res, "default", args)
            flops = hand.get("flops")
            table.add(
                model,
                batch,
                "hand-written",
                *_cells(hand, "img_s", "ms_step", "peak_mb"),
                "1.00",
                _tflops(flops, hand),
                "",
                hand.get("device", ""),
            )
            for setting in args.settings:
                r = child("gancli", model, batch, res, setting, args)
                ratio = f"{r['img_s'] / hand['img_s']:.2f}" if "img_s" in r and "img_s" in hand else ""
                table.add(
                    model,
                    batch,
                    f"gancli {setting}",
                    *_cells(r, "img_s", "ms_step", "peak_mb"),
                    ratio,
                    _tflops(flops, r),
                    peak_tflops(r.get("device", ""), setting),
                    r.get("device", ""),
                )
    table.write(args.out)


def _cells(r: dict, *keys) -> list[str]:
    if "error" in r:
        return [f"failed: {r['error']}"] + [""] * (len(keys) - 1)
    return [f"{r['img_s']:.0f}", f"{r['ms_step']:.1f}", f"{r['peak_mb']:.0f}"][: len(keys)]


def _tflops(flops, r: dict) -> str:
    if not flops or "ms_step" not in r:
        return ""
    return f"{flops / (r['ms_step'] / 1000) / 1e12:.3f}"


if __name__ == "__main__":
    benchlib.run(main)
