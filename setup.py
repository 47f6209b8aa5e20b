"""Only the compiled kernel lives here; everything else is in pyproject.toml."""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "dfx.sim._exact",
            sources=["sim/_exact.c"],
            # IEEE binary32 semantics: no fused multiply-add, no fast-math reassociation.
            extra_compile_args=["-O3", "-ffp-contract=off", "-fno-fast-math", "-fno-unsafe-math-optimizations"],
        )
    ]
)
