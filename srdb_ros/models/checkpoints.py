"""Weight files: our safetensors format (config in metadata) and imports of the reference checkpoints."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ..core.files import atomic_output
from .mimo_unet import DECODER_FEAT_EXTRACT, ENCODER_FEAT_EXTRACT
from .span import SPAN, refresh_fused
from .srdb_net import CONFIGS, ModelConfig, SRDeblurNet, build_model

LOG = logging.getLogger(__name__)

CONFIG_KEY = "srdb_config"
FORMAT_KEY = "format"
FORMAT = "srdb_ros/1"


class WeightFileError(RuntimeError):
    """A weight file is missing, corrupt or does not match the model."""


def save_model(
    model: SRDeblurNet, path: str | Path, extra_metadata: dict[str, str] | None = None, half: bool = False
) -> Path:
    """Save weights as safetensors with the model config in the metadata (written atomically); ``half`` stores
    floating-point tensors as fp16 (half the file; loading casts them back to the model's fp32)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {FORMAT_KEY: FORMAT, CONFIG_KEY: json.dumps(model.config.to_dict())}
    metadata.update(extra_metadata or {})
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if half:
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
    return _atomic_save_file(tensors, path, metadata)


def _atomic_save_file(tensors: dict, path: str | Path, metadata: dict[str, str]) -> Path:
    """safetensors to a unique temporary file in the target folder (never a planted name), then rename."""
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return Path(path)


def read_metadata(path: str | Path) -> dict[str, str]:
    path = _existing(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightFileError(f"{path}: not a readable safetensors file ({exc}); re-export or re-download it") from exc


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> SRDeblurNet:
    """Rebuild the model recorded in a safetensors file's metadata and load its weights strictly."""
    path = _existing(path)
    metadata = read_metadata(path)
    if CONFIG_KEY not in metadata:
        raise WeightFileError(f"{path}: no '{CONFIG_KEY}' in its metadata; it was not written by srdb_ros")
    try:  # validated (types, bounds) before any tensor is allocated
        config = ModelConfig.from_dict(json.loads(metadata[CONFIG_KEY]))
    except (ValueError, TypeError) as exc:
        raise WeightFileError(f"{path}: invalid model description in its metadata ({exc})") from exc
    model = build_model(config)
    try:
        state = load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError) as exc:
        raise WeightFileError(f"{path}: corrupt safetensors file ({exc}); re-export or re-download it") from exc
    _load_strict(model, state, path)
    return model


def load_model_or_config(spec: str | Path | None = None, random_init: bool = False) -> SRDeblurNet:
    """A ``.safetensors`` file, the bundled trained student (``spec`` None), or with ``random_init`` an untrained
    ``teacher``/``student`` architecture (a warning says so: its outputs are noise)."""
    from ..resources import bundled_model

    if random_init:
        name = str(spec or "student")
        if name not in CONFIGS:
            raise ValueError(f"--random-init takes an architecture name ({', '.join(CONFIGS)}), not {name!r}")
        LOG.warning("using a randomly initialised %s: its outputs are noise (give a .safetensors for real ones)", name)
        return build_model(name)
    if str(spec) in CONFIGS:
        raise ValueError(
            f"{spec!r} names an untrained architecture; give a trained .safetensors (or omit --model for the "
            f"bundled student), or add --random-init to use random weights on purpose"
        )
    return load_model(spec if spec is not None else bundled_model())


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if path.exists() and not path.is_file():
        raise WeightFileError(f"{path}: not a regular file (a folder or device); pass a .safetensors file")
    if not path.is_file():
        raise WeightFileError(f"{path}: weight file not found; pass an existing file or train/export one first")
    return path


def _load_strict(module: nn.Module, state: dict[str, torch.Tensor], source: str | Path) -> None:
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or mismatched:
        raise WeightFileError(
            f"{source}: weights do not match the model: "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}), "
            f"{len(mismatched)} of other shape (e.g. {mismatched[:3]})"
        )
    module.load_state_dict(state, strict=True)


def _torch_load(path: str | Path) -> dict:
    path = _existing(path)
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or pickled-code files
        raise WeightFileError(f"{path}: cannot be read as a plain tensor checkpoint ({exc})") from exc


def mimo_unet_reference_to_ours(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename official MIMO-UNet keys (one flat module) to ``encoder.*`` / ``decoder.*`` keys."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        head, _, rest = key.partition(".")
        if head == "feat_extract":
            index, _, tail = rest.partition(".")
            i = int(index)
            if i in ENCODER_FEAT_EXTRACT:
                out[f"encoder.feat_extract.{ENCODER_FEAT_EXTRACT[i]}.{tail}"] = value
            else:
                out[f"decoder.feat_extract.{DECODER_FEAT_EXTRACT[i]}.{tail}"] = value
        elif head in ("Encoder", "AFFs", "FAM1", "FAM2", "SCM1", "SCM2"):
            out[f"encoder.{key}"] = value
        elif head in ("Decoder", "Convs", "ConvsOut"):
            out[f"decoder.{key}"] = value
        else:
            out[f"unknown.{key}"] = value
    return out


def load_mimo_unet_reference(model: SRDeblurNet, path: str | Path) -> None:
    """Load an official MIMO-UNet checkpoint (``{'model': state_dict}``) into the encoder and deblur decoder."""
    ckpt = _torch_load(path)
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else ckpt
    if not isinstance(state, dict):
        raise WeightFileError(f"{path}: expected a dict with key 'model', got {type(state).__name__}")
    mapped = mimo_unet_reference_to_ours(state)
    target = nn.ModuleDict({"encoder": model.encoder, "decoder": model.decoder})
    _load_strict(target, mapped, path)


def load_span_reference(model: SRDeblurNet, path: str | Path, key: str | None = None) -> None:
    """Load an official SPAN checkpoint (BasicSR ``params_ema`` or ``params``) into the SR branch."""
    ckpt = _torch_load(path)
    if not isinstance(ckpt, dict):
        raise WeightFileError(f"{path}: expected a BasicSR dict with 'params' or 'params_ema'")
    keys = [key] if key else ["params_ema", "params"]
    state = next((ckpt[k] for k in keys if k in ckpt), None)
    if state is None:
        if any(k in ckpt for k in ("params", "params_ema")):
            raise WeightFileError(f"{path}: has no key {key!r}")
        state = ckpt
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if model.config.deploy:
        raise WeightFileError("load reference SPAN weights into a training-form model, then convert to deploy form")
    _load_strict(model.span, state, path)
    refresh_fused(model.span)


def save_span(span: SPAN, path: str | Path) -> Path:
    """A standalone SPAN as safetensors (its size in the metadata), written atomically like :func:`save_model`."""
    meta = {"srdb_span": json.dumps({"feature_channels": span.conv_cat.out_channels, "upscale": span.upscale})}
    return _atomic_save_file({k: v.detach().contiguous().cpu() for k, v in span.state_dict().items()}, path, meta)


def load_span(path: str | Path) -> SPAN:
    """Load a SPAN written by :func:`save_span` (strict keys)."""
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {}).get("srdb_span", "{}"))
    if not meta:
        raise ValueError(f"{path}: not a standalone SPAN file (no 'srdb_span' metadata)")
    span = SPAN(feature_channels=meta["feature_channels"], upscale=meta["upscale"])
    span.load_state_dict(load_file(str(path)), strict=True)
    return span
