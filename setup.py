"""The native part of certgate: the TLS front end (``certgate.tls._front``), linked with the
system's OpenSSL (libssl, libcrypto). It builds its own TLS contexts, so Python's ssl module may
use another OpenSSL. Compiler warnings are errors."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "certgate.tls._front",
            ["src/certgate/tls/_front.c"],
            libraries=["ssl", "crypto"],
            extra_compile_args=[
                "-O2",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-Wno-missing-field-initializers",
            ],
        )
    ]
)
