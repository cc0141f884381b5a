"""A stand-in for nvidia-ml-py's `pynvml` with the functions mlci uses.

Put this directory first on PYTHONPATH (or into sys.modules["pynvml"]) and
mlci's telemetry talks to it instead of a driver. Behaviour comes from the
environment so a test can script a whole run:
  FAKE_NVML_GPUS        number of GPUs (default 1)
  FAKE_NVML_UTIL        comma-separated utilisation values, cycled per read (default "50")
  FAKE_NVML_MEMORY_MB   memory used in MB (default 2048); total is 16384 MB
  FAKE_NVML_FAIL=init   nvmlInit raises NVMLError, as on a machine without the driver
"""

import os
from types import SimpleNamespace

TOTAL_BYTES = 16384 * 1024 * 1024
_reads = {"count": 0}


class NVMLError(Exception):
    pass


def nvmlInit():
    if os.environ.get("FAKE_NVML_FAIL") == "init":
        raise NVMLError("Driver Not Loaded")


def nvmlShutdown():
    pass


def nvmlDeviceGetCount():
    return int(os.environ.get("FAKE_NVML_GPUS", "1"))


def nvmlDeviceGetHandleByIndex(index):
    return SimpleNamespace(index=index)


def nvmlDeviceGetName(handle):
    return "Fake Tesla T4"


def nvmlDeviceGetMemoryInfo(handle):
    used = float(os.environ.get("FAKE_NVML_MEMORY_MB", "2048")) * 1024 * 1024
    return SimpleNamespace(total=TOTAL_BYTES, used=used, free=TOTAL_BYTES - used)


def nvmlDeviceGetUtilizationRates(handle):
    values = [float(v) for v in os.environ.get("FAKE_NVML_UTIL", "50").split(",")]
    value = values[_reads["count"] // nvmlDeviceGetCount() % len(values)]
    _reads["count"] += 1
    return SimpleNamespace(gpu=value, memory=value / 2)
