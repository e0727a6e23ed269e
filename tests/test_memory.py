"""keep_freed_memory: freed large blocks stay in the process for reuse (glibc on Linux)."""

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")

MALLINFO = textwrap.dedent("""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost")]

    mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    mallinfo2.restype = MallInfo2
""")

MAIN_THREAD = MALLINFO + textwrap.dedent("""
    import sys
    import numpy as np
    from licensecore.server.memory import keep_freed_memory

    if sys.argv[1] == "keep":
        assert keep_freed_memory()
    array = np.ones(200 << 20, np.uint8)  # 200 MiB: glibc would mmap it
    del array
    print(mallinfo2().fordblks)  # free bytes the heap keeps
""")

# A worker thread (as the server's and the parts pool's) allocates and frees 100 blocks of 2 MiB.
WORKER_THREAD = MALLINFO + textwrap.dedent("""
    import sys, threading
    from licensecore.server.memory import keep_freed_memory

    if sys.argv[1] == "keep":
        assert keep_freed_memory()
    import numpy as np

    def work():
        blocks = [np.ones(2 << 20, np.uint8) for _ in range(100)]
        del blocks

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    import pyarrow as pa
    print(mallinfo2().fordblks, pa.default_memory_pool().backend_name)
""")


def _probe(program: str, mode: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", program, mode], capture_output=True, text=True,
                         check=True)
    return out.stdout.split()


def test_a_freed_large_array_stays_in_the_heap():
    assert int(_probe(MAIN_THREAD, "keep")[0]) >= 200 << 20
    assert int(_probe(MAIN_THREAD, "default")[0]) < 200 << 20  # the control: unmapped


def test_a_worker_threads_freed_memory_stays_and_arrow_shares_the_heap():
    kept, backend = _probe(WORKER_THREAD, "keep")
    assert int(kept) >= 190 << 20
    assert backend == "system"  # Arrow's buffers come from the same kept heap
    kept, backend = _probe(WORKER_THREAD, "default")  # the control: unmapped, and mimalloc
    assert int(kept) < 100 << 20 and backend != "system"


def test_the_command_line_tunes_before_numpy_starts_threads():
    program = textwrap.dedent("""
        import sys
        import licensecore.server.memory as memory
        calls = []
        original = memory.keep_freed_memory
        memory.keep_freed_memory = lambda: calls.append("numpy" in sys.modules) or original()
        from licensecore.__main__ import main
        sys.argv = ["licensecore", "--help"]
        try:
            main()
        except SystemExit:
            pass
        print(calls[0])
    """)
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"  # the first call: NumPy not yet imported
