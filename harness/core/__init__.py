"""The harness's core: the typed config and its checks (config, contract), a run's folder and model (runs), atomic
files (io), the machine and its precision (machine, precision), a method's source hashes (provenance), schedules."""
