"""certgate: the certificate subsystem of a network appliance."""

__version__ = "0.1.0"
