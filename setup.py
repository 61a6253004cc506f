"""Build fastformer's C kernels and Cython wrappers into one extension, fastformer._core.

The package is built for a baseline x86-64 (or aarch64) CPU; SIMD kernels are compiled with per-function
target attributes and chosen at import, so the build never tunes for the CPU it runs on.
Environment:
  FASTFORMER_DEBUG=1                      -O0 -g, no optimisation
  FASTFORMER_SANITIZE=address,undefined   build with these sanitizers (run with LD_PRELOAD of libasan)
"""

import glob
import os

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

cflags = ["-std=gnu11", "-O3", "-fno-math-errno", "-fvisibility=hidden", "-Wall", "-Wno-unused-function"]
ldflags = ["-lpthread", "-lm"]
if os.environ.get("FASTFORMER_DEBUG"):
    cflags += ["-O0", "-g"]
if os.environ.get("FASTFORMER_SANITIZE"):
    san = "-fsanitize=" + os.environ["FASTFORMER_SANITIZE"]
    cflags += [san, "-fno-omit-frame-pointer", "-g", "-O1"]
    ldflags += [san]

extensions = [
    Extension(
        "fastformer._core",
        sources=["fastformer/_core.pyx"] + sorted(glob.glob("csrc/*.c")),
        depends=sorted(glob.glob("csrc/*.h") + glob.glob("csrc/*.inc")),  # rebuild on change; shipped in sdists
        include_dirs=["csrc", np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=cflags,
        extra_link_args=ldflags,
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "embedsignature": True,
        },
    )
)
