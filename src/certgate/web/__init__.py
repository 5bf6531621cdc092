"""The faces served over the appliance's TLS listeners."""
