"""keep_freed_memory: a freed large array stays in the heap for reuse (glibc on Linux)."""

import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent("""
    import ctypes, sys
    import numpy as np
    from licensecore.server.memory import keep_freed_memory

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost")]

    mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    mallinfo2.restype = MallInfo2
    if sys.argv[1] == "keep":
        assert keep_freed_memory()
    array = np.ones(200 << 20, np.uint8)  # 200 MiB: glibc would mmap it
    del array
    print(mallinfo2().fordblks)  # free bytes the heap keeps
""")


def _free_bytes_after_a_200_mib_array(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True)
    return int(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_a_freed_large_array_stays_in_the_heap():
    assert _free_bytes_after_a_200_mib_array("keep") >= 200 << 20
    assert _free_bytes_after_a_200_mib_array("default") < 200 << 20  # the control: unmapped
