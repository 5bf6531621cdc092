"""The native part of certgate: the TLS front end (``certgate.tls._front``), linked with the
system's OpenSSL, the same library Python's ssl module uses (checked when it is imported)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "certgate.tls._front",
            ["src/certgate/tls/_front.c"],
            libraries=["ssl", "crypto"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
        )
    ]
)
