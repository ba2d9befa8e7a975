"""podnet: how a Kubernetes pod gets its IP address, in Python, on real Linux networking.

Kept empty on purpose: the thin CNI executables import podnet.cni on every pod, so
nothing here may pull in more modules.
"""
