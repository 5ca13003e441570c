"""How large a frame the enhancer can take within a memory budget: measured peak bytes per input pixel.

Peak memory of one ``Enhancer.enhance`` call grows linearly with the input's pixels. Measured for the bundled
student on CPU (PyTorch fp32, 2 threads, one frame, resident-set growth; ``python -m srdb_ros.inference.memory``
re-measures it): deblur 1.7 kB per input pixel at 640x480 (1.4 kB at 1280x960); SR 5.0 kB and both 5.7 kB per
*input* pixel at 320x240 (the x4 output has 16 times the pixels). The table rounds these up. GPU figures are
estimates (fp16 halves the activations; not yet measured on a GPU). With tiling only the whole-frame arrays
scale with the frame: the network's own peak is bounded by the tile.
"""

from __future__ import annotations

import os

# peak bytes per input pixel, whole frame: {device: {task: bytes}}
PEAK_BYTES_PER_PIXEL = {
    "cpu": {"deblur": 2000, "sr": 6000, "both": 6500},
    "cuda": {"deblur": 1000, "sr": 3000, "both": 3250},
}
# bytes per input pixel that stay whole-frame when tiling (float32 input and outputs, and the uint8 results)
TILED_BYTES_PER_PIXEL = {"deblur": 64, "sr": 320, "both": 384}
DEFAULT_BUDGET_SHARE = 0.5  # of the memory available when the backend starts


def available_bytes(device: str) -> int:
    """Memory free for frames now: host MemAvailable for ``cpu``, free GPU memory for ``cuda``."""
    if device == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info()
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def budget_bytes(device: str, budget_mb: float = 0.0) -> int:
    """The memory budget for one frame: ``budget_mb`` when given, else half of what is available now."""
    if budget_mb > 0:
        return int(budget_mb * 1e6)
    return int(available_bytes(device) * DEFAULT_BUDGET_SHARE)


def max_pixels_for(task: str, device: str, budget: int, tile_size: int = 0) -> int:
    """The largest input (pixels) whose peak stays within ``budget`` bytes for ``task`` on ``device``."""
    per_pixel = PEAK_BYTES_PER_PIXEL["cuda" if device == "cuda" else "cpu"][task]
    if tile_size:
        tile_peak = per_pixel * tile_size * tile_size
        return max(0, (budget - tile_peak) // TILED_BYTES_PER_PIXEL[task])
    return budget // per_pixel


def measure(task: str, width: int, height: int) -> tuple[int, float]:
    """(peak resident growth in bytes, bytes per input pixel) of one CPU enhance of a ``width`` x ``height``
    colour frame with the bundled student, in a fresh process."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys, numpy as np\n"
        "from srdb_ros.inference import Enhancer, ModelFiles, create_backend\n"
        "from srdb_ros.resources import bundled_model\n"
        "task, w, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])\n"
        "e = Enhancer(create_backend('torch', ModelFiles(weights=str(bundled_model())), 'cpu'))\n"
        "e.enhance(np.zeros((16, 16, 3), np.uint8), task)\n"
        "img = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)\n"
        "before = int(open('/proc/self/statm').read().split()[1]) * 4096\n"
        "open('/proc/self/clear_refs', 'w').write('5')\n"  # the peak from now on (not the model load's)
        "e.enhance(img, task)\n"
        "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
        "peak = int(hwm.split()[1]) * 1024\n"
        "print(json.dumps(peak - before))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, task, str(width), str(height)], capture_output=True, text=True, check=True
    )
    growth = int(json.loads(out.stdout.strip().splitlines()[-1]))
    return growth, growth / (width * height)


if __name__ == "__main__":
    for task, (w, h) in (("deblur", (640, 480)), ("deblur", (1280, 960)), ("sr", (320, 240)), ("both", (320, 240))):
        growth, per_pixel = measure(task, w, h)
        print(f"{task:6s} {w}x{h}: peak +{growth / 1e6:.0f} MB, {per_pixel:.0f} B per input pixel")
