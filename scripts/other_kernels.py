"""Print environment settings that make PyTorch use CPU kernels other than this machine's best.

``make nbval`` runs the chapters under them, while ``make course`` (which writes the
committed outputs) uses the defaults. A printed digit that depends on the kernels
(AVX-512 against AVX2, oneDNN's ISA) would then differ between the two runs, so
it cannot hide in an output that nbval compares.
"""
from __future__ import annotations

import torch


def other_kernel_settings(capability: str) -> dict[str, str]:
    """A kernel set that differs from ``capability`` (``torch.backends.cpu.get_cpu_capability()``)."""
    capability = capability.upper()
    if capability.startswith("AVX512"):
        # One step down keeps the run about as fast as the default one.
        return {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    if capability.startswith("AVX2"):
        # ATen's scalar kernels alone change the training digits; oneDNN keeps its AVX2 convolutions.
        # Measured with benchmarks/train_step.py (AVX2 limits on an AVX-512 machine): ~1.3x slower than
        # AVX2 throughout, where oneDNN at SSE4.1 made the GAN step ~3x slower (chapters 1-6: 35 min).
        return {"ATEN_CPU_CAPABILITY": "default"}
    return {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"}


if __name__ == "__main__":
    settings = other_kernel_settings(torch.backends.cpu.get_cpu_capability())
    print(" ".join(f"{name}={value}" for name, value in settings.items()))
