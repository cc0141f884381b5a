"""System and GPU telemetry while the training command runs.

CPU and memory come from psutil. GPUs come from NVML (the `pynvml` module of
nvidia-ml-py) when it imports and initialises; anything else means "no GPU
telemetry", recorded once as mlci.gpu=none. The NVML module is a parameter,
so tests hand in a small fake with the same functions.

Metric names (logged with step = sample index):
  system/cpu_utilization_percent, system/memory_used_megabytes,
  system/memory_percent, system/process_rss_megabytes (the training process tree),
  system/gpu_<i>_utilization_percent, system/gpu_<i>_memory_used_megabytes,
  system/gpu_<i>_memory_percent
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MB = 1024 * 1024


@dataclass(frozen=True)
class GpuDevice:
    index: int
    name: str
    memory_total_mb: float


@dataclass(frozen=True)
class GpuReading:
    index: int
    utilization_percent: float
    memory_used_mb: float
    memory_total_mb: float

    @property
    def memory_percent(self) -> float:
        return 100.0 * self.memory_used_mb / self.memory_total_mb if self.memory_total_mb else 0.0


@dataclass(frozen=True)
class Sample:
    elapsed_seconds: float
    timestamp_ms: int
    cpu_percent: float
    memory_used_mb: float
    memory_percent: float
    process_rss_mb: float
    gpus: tuple[GpuReading, ...] = ()


def sample_metrics(sample: Sample) -> dict[str, float]:
    metrics = {
        "system/cpu_utilization_percent": sample.cpu_percent,
        "system/memory_used_megabytes": sample.memory_used_mb,
        "system/memory_percent": sample.memory_percent,
        "system/process_rss_megabytes": sample.process_rss_mb,
    }
    for gpu in sample.gpus:
        prefix = f"system/gpu_{gpu.index}"
        metrics[f"{prefix}_utilization_percent"] = gpu.utilization_percent
        metrics[f"{prefix}_memory_used_megabytes"] = gpu.memory_used_mb
        metrics[f"{prefix}_memory_percent"] = gpu.memory_percent
    return metrics


def _peak(values: Sequence[float]) -> float | None:
    return round(max(values), 2) if values else None


def _mean(values: Sequence[float]) -> float | None:
    return round(math.fsum(values) / len(values), 2) if values else None


def summarize(samples: Sequence[Sample], devices: Sequence[GpuDevice], *, interval: float,
              gpu_unavailable_reason: str | None) -> dict[str, Any]:
    """The telemetry block of train.json (the MR report shows it)."""
    gpu_utils = [g.utilization_percent for s in samples for g in s.gpus]
    gpu_mem = [g.memory_used_mb for s in samples for g in s.gpus]
    gpu_mem_pct = [g.memory_percent for s in samples for g in s.gpus]
    if devices:
        gpu: dict[str, Any] = {
            "available": True,
            "count": len(devices),
            "names": [d.name for d in devices],
            "memory_total_mb": [round(d.memory_total_mb, 1) for d in devices],
            "peak_utilization_percent": _peak(gpu_utils),
            "mean_utilization_percent": _mean(gpu_utils),
            "peak_memory_used_mb": _peak(gpu_mem),
            "peak_memory_percent": _peak(gpu_mem_pct),
        }
    else:
        gpu = {"available": False, "reason": gpu_unavailable_reason or "no GPU found"}
    return {
        "samples": len(samples),
        "interval_seconds": interval,
        "cpu": {
            "peak_percent": _peak([s.cpu_percent for s in samples]),
            "mean_percent": _mean([s.cpu_percent for s in samples]),
        },
        "memory": {
            "peak_used_mb": _peak([s.memory_used_mb for s in samples]),
            "peak_percent": _peak([s.memory_percent for s in samples]),
            "peak_process_rss_mb": _peak([s.process_rss_mb for s in samples]),
        },
        "gpu": gpu,
    }


def gpu_tag(devices: Sequence[GpuDevice]) -> str:
    """mlci.gpu: 'none', or e.g. '2x NVIDIA A100-SXM4-40GB'."""
    if not devices:
        return "none"
    names = sorted({d.name for d in devices})
    return f"{len(devices)}x {' + '.join(names)}"


@dataclass
class IdleGpuDetector:
    """Fires once when every GPU stays below `threshold_percent` for `window_seconds`.

    Any busy sample resets the clock, so data loading or evaluation phases that
    are shorter than the window never trigger it.
    """

    threshold_percent: float
    window_seconds: float
    idle_since: float | None = None
    fired: bool = False

    def observe(self, elapsed_seconds: float, utilizations: Sequence[float]) -> bool:
        if not utilizations:
            return False
        if max(utilizations) >= self.threshold_percent:
            self.idle_since = None
            self.fired = False
            return False
        if self.idle_since is None:
            self.idle_since = elapsed_seconds
        if not self.fired and elapsed_seconds - self.idle_since >= self.window_seconds:
            self.fired = True
            return True
        return False


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@dataclass
class NvmlProbe:
    """An initialised NVML session and the devices it found."""

    nvml: Any
    handles: list[Any] = field(default_factory=list)
    devices: list[GpuDevice] = field(default_factory=list)

    def read(self) -> tuple[GpuReading, ...]:
        readings = []
        for device, handle in zip(self.devices, self.handles, strict=True):
            memory = self.nvml.nvmlDeviceGetMemoryInfo(handle)
            rates = self.nvml.nvmlDeviceGetUtilizationRates(handle)
            readings.append(GpuReading(
                index=device.index,
                utilization_percent=float(rates.gpu),
                memory_used_mb=memory.used / MB,
                memory_total_mb=memory.total / MB,
            ))
        return tuple(readings)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # shutting down a half-dead driver must not fail the job
            self.nvml.nvmlShutdown()


def open_nvml(nvml: Any = None) -> tuple[NvmlProbe | None, str | None]:
    """(probe, None) when NVML works and sees GPUs, else (None, reason)."""
    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError:
            return None, "NVML not installed (pip install nvidia-ml-py)"
    try:
        nvml.nvmlInit()
    except Exception as exc:
        return None, f"NVML did not initialise ({exc or type(exc).__name__})"
    try:
        count = int(nvml.nvmlDeviceGetCount())
        probe = NvmlProbe(nvml=nvml)
        for index in range(count):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            probe.handles.append(handle)
            probe.devices.append(GpuDevice(index, _text(nvml.nvmlDeviceGetName(handle)), memory.total / MB))
    except Exception as exc:
        NvmlProbe(nvml=nvml).close()
        return None, f"NVML query failed ({exc or type(exc).__name__})"
    if not probe.devices:
        probe.close()
        return None, "NVML found no GPUs"
    return probe, None


class SystemSampler:
    """psutil for CPU/RAM (system-wide, plus the training process tree's RSS), NVML for GPUs."""

    def __init__(self, gpu: NvmlProbe | None, clock_start: float):
        import psutil

        self._psutil = psutil
        self._gpu = gpu
        self._start = clock_start
        self._root: Any = None
        self.gpu_error: str | None = None
        psutil.cpu_percent(interval=None)  # primes the counter; the first real call measures from here

    def watch(self, pid: int, started: float | None = None) -> None:
        """Follow the training process tree; elapsed time counts from `started`."""
        if started is not None:
            self._start = started
        try:
            self._root = self._psutil.Process(pid)
        except self._psutil.Error:
            self._root = None

    def _tree_rss(self) -> float:
        if self._root is None:
            return 0.0
        total = 0
        try:
            for proc in [self._root, *self._root.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except self._psutil.Error:
                    continue
        except self._psutil.Error:
            return 0.0
        return total / MB

    def sample(self, now: float, timestamp_ms: int) -> Sample:
        memory = self._psutil.virtual_memory()
        gpus: tuple[GpuReading, ...] = ()
        if self._gpu is not None and self.gpu_error is None:
            try:
                gpus = self._gpu.read()
            except Exception as exc:  # a GPU that drops off the bus stops GPU telemetry, not training
                self.gpu_error = f"GPU telemetry stopped: {exc or type(exc).__name__}"
        return Sample(
            elapsed_seconds=now - self._start,
            timestamp_ms=timestamp_ms,
            cpu_percent=float(self._psutil.cpu_percent(interval=None)),
            memory_used_mb=(memory.total - memory.available) / MB,
            memory_percent=float(memory.percent),
            process_rss_mb=self._tree_rss(),
            gpus=gpus,
        )
