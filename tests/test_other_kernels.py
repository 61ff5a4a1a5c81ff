"""scripts/other_kernels.py: make nbval always gets a kernel set other than the machine's best."""
import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "other_kernels.py"


def other_kernel_settings(capability):
    spec = importlib.util.spec_from_file_location("other_kernels", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.other_kernel_settings(capability)


@pytest.mark.parametrize("capability, expected", [
    ("AVX512", {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}),
    ("AVX512_BF16", {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}),
    ("AVX2", {"ATEN_CPU_CAPABILITY": "default"}),
    ("avx2", {"ATEN_CPU_CAPABILITY": "default"}),
    ("DEFAULT", {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"}),
])
def test_a_lower_kernel_set_for_each_machine(capability, expected):
    assert other_kernel_settings(capability) == expected


@pytest.mark.parametrize("capability", ["AVX512", "AVX2"])
def test_the_aten_kernels_always_differ_from_the_best(capability):
    assert other_kernel_settings(capability)["ATEN_CPU_CAPABILITY"].upper() != capability
