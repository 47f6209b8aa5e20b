"""dfx: an open DFX-style multi-FPGA appliance for GPT-2 text generation.

Subpackages (one import namespace, several top-level folders):
  dfx.arch      hardware targets and the ISA (arch/)
  dfx.hw        target data files, RTL and generated headers (hw/)
  dfx.sim       exact and fast functional simulators (sim/)
  dfx.compiler  GPT-2 -> per-FPGA programs and HBM images (compiler/)
  dfx.host      device interface and generation driver (host/)
  dfx.perf      performance model (perf/)

The Python API (dfx/api.py): dfx.compile(...) -> Bundle, dfx.Session(bundle, backend=...)
with .generate(...) (Hugging Face's argument names), dfx.Bundle, dfx.tokenizer(bundle).
They are imported on first use: `import dfx` loads no numpy.
"""

__version__ = "0.1.0"

_LAZY = {
    "compile": ("dfx.api", "compile"),
    "tokenizer": ("dfx.api", "tokenizer"),
    "Session": ("dfx.host.runtime", "Session"),
    "Bundle": ("dfx.compiler.bundle", "Bundle"),
    "DfxError": ("dfx.errors", "DfxError"),
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dfx' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
