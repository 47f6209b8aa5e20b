"""dfx: an open DFX-style multi-FPGA appliance for GPT-2 text generation.

Subpackages (one import namespace, several top-level folders):
  dfx.arch      hardware targets and the ISA (arch/)
  dfx.hw        target data files, RTL and generated headers (hw/)
  dfx.sim       exact and fast functional simulators (sim/)
  dfx.compiler  GPT-2 -> per-FPGA programs and HBM images (compiler/)
  dfx.host      device interface and generation driver (host/)
  dfx.perf      performance model (perf/)
"""

__version__ = "0.1.0"
