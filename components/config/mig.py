"""What a `mig` value may be for a GPU type: the one set of rules, with one-line reasons.

A deployment names one slice profile (``mig: 1g.18gb``); a node pool names how every GPU of its
nodes is partitioned (``mig: all-1g.18gb``, the GPU operator's `nvidia.com/mig.config` value).
Both must be profiles of the GPU type in the GPU table (:mod:`servestack.config.gpu`).
"""

from __future__ import annotations

from servestack.config.gpu import (
    GPU_TABLE,
    MIG_ALL,
    MIG_COMPUTE_SLICES,
    GpuType,
    gpu_info,
    parse_profile,
    with_mig,
)


def mig_problem(gpu: GpuType, value: str, *, partitioning: bool) -> str | None:
    """Why ``value`` is not a `mig` of ``gpu`` (a pool's partitioning or a replica's slice)."""
    info = gpu_info(gpu)
    if not info.mig:
        names = ", ".join(t.value for t in with_mig())
        return f"{gpu.value} has no MIG; GPUs with MIG: {names}"
    has = ", ".join(info.slice_profiles)
    allowed = ", ".join(f"{MIG_ALL}{p}" for p in info.slice_profiles) if partitioning else has
    profile = value
    if partitioning:
        if not value.startswith(MIG_ALL):
            return (
                f"{value!r} is not a partitioning: a pool cuts every GPU into one profile, "
                f"{MIG_ALL}<profile>; allowed for {gpu.value}: {allowed}"
            )
        profile = value.removeprefix(MIG_ALL)
    elif value.startswith(MIG_ALL):
        return (
            f"{value!r} is a pool's partitioning; a replica asks for one slice profile, "
            f"e.g. {value.removeprefix(MIG_ALL)} (allowed for {gpu.value}: {allowed})"
        )
    shape = parse_profile(profile)
    if shape is None:
        return (
            f"{value!r} is not a MIG profile (<slices>g.<memory>gb, e.g. "
            f"{info.slice_profiles[0]}); allowed for {gpu.value}: {allowed}"
        )
    slices, memory = shape
    if slices > MIG_COMPUTE_SLICES or memory > info.memory_gib:
        return (
            f"{value!r} is larger than the GPU: an {gpu.value} has {MIG_COMPUTE_SLICES} compute "
            f"slices and {info.memory_gib} GB; allowed: {allowed}"
        )
    found = info.mig_profile(profile)
    if found is not None and found.media:
        return (
            f"{value!r} (media extensions, one per GPU) is not offered as a slice resource; "
            f"allowed for {gpu.value}: {allowed}"
        )
    if found is None:
        others = [t.value for t, i in GPU_TABLE.items() if i.mig_profile(profile) is not None]
        elsewhere = f" ({profile} is a profile of {', '.join(others)})" if others else ""
        return f"{value!r} is not a MIG profile of {gpu.value}{elsewhere}; allowed: {allowed}"
    return None
