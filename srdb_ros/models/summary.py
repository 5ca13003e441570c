"""Parameter counts and FLOPs of a model configuration (``srdb info``)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..core.contract import PAPER_INPUT_SIZES, TASKS
from .checkpoints import load_model_or_config
from .srdb_net import CONFIGS, SRDeblurNet, build_model, count_parameters


def gflops(model: SRDeblurNet, task: str, size: tuple[int, int]) -> float:
    """FLOPs (2 per multiply-add) of one forward at ``size`` (H, W), in units of 1e9."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.eval()(torch.zeros(1, 3, *size), task)
    return counter.get_total_flops() / 1e9


def summarize(spec: str) -> dict:
    model = build_model(spec) if spec in CONFIGS else load_model_or_config(spec)  # architecture: no weights needed
    trained_form = not model.config.deploy
    summary = {
        "model": model.config.name,
        "config": model.config.to_dict(),
        "params": count_parameters(model) if trained_form else None,
        "params_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad) if trained_form else None,
        "params_by_part": {
            "mimo_unet": count_parameters(model.encoder) + count_parameters(model.decoder),
            "fitting_conv": count_parameters(model.fit),
            "span": count_parameters(model.span),
        },
    }
    deploy = model.to_deploy()
    summary["params_deploy"] = count_parameters(deploy)
    summary["sizes"] = {t: f"{w}x{h}" for t, (w, h) in PAPER_INPUT_SIZES.items()}
    summary["gflops"] = {t: round(gflops(deploy, t, PAPER_INPUT_SIZES[t][::-1]), 2) for t in TASKS}
    return summary


@dataclass
class InfoOptions:
    model: str = "student"  # teacher, student (architecture only) or a .safetensors
    json: bool = False


def info_command(opts: InfoOptions) -> int:
    """``srdb info``."""
    s = summarize(opts.model)
    if opts.json:
        print(json.dumps(s, indent=2))
        return 0
    print(
        f"model: {s['model']} (base {s['config']['base_channels']}, num_res {s['config']['num_res']}, "
        f"SPAN {s['config']['span_channels']})"
    )
    if s["params"] is not None:
        print(
            f"parameters (training form): {s['params'] / 1e6:.3f} M "
            f"({s['params_trainable'] / 1e6:.3f} M trainable; SPAN counts its fused eval_conv copies)"
        )
    parts = s["params_by_part"]
    print(
        f"  MIMO-UNet {parts['mimo_unet'] / 1e6:.3f} M, fitting conv {parts['fitting_conv']}, SPAN "
        f"{parts['span'] / 1e6:.3f} M"
    )
    print(f"parameters (deploy form): {s['params_deploy'] / 1e6:.3f} M")
    print("GFLOPs per frame (deploy form):")
    for task, value in s["gflops"].items():
        size = s["sizes"][task]
        extra = " (input; x4 output)" if task != "deblur" else ""
        print(f"  {task:7s} at {size}{extra}: {value:.1f}")
    return 0
