"""Pure X.509 on pyca/cryptography: no I/O, no database, no globals."""
