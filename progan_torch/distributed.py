"""Data-parallel training helpers for ``torchrun`` (one process per GPU, or gloo on CPU).

Why not the ``DistributedDataParallel`` wrapper itself: its gradient hooks fire on
``loss.backward()`` only, while this trainer takes gradients with
``torch.autograd.grad`` and needs a double backward (the gradient penalty) through D
plus two forwards of D per step -- combinations DDP documents as unsupported or
needing ``static_graph`` tricks. We do what DDP does, explicitly: every rank computes
the gradient of its local mean loss, then one flat all-reduce averages the gradients,
so all ranks apply the same update and stay bit-identical (the same math as DDP).

Data: the schedule's batch size is the GLOBAL minibatch. At stream position ``nimg``
rank ``r`` of ``W`` takes images ``nimg + r*b .. nimg + (r+1)*b - 1`` with ``b = B / W``,
and the matching rows of the globally drawn latents, so W processes see exactly the
images and latents one process with batch B would (only minibatch-stddev groups differ:
they never span ranks).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from gancore.errors import UserError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def local_slice(self, batch: int) -> slice:
        """Rows of a global batch this rank works on (contiguous, as the stream positions)."""
        if batch % self.world:
            raise UserError(
                f"global minibatch {batch} is not divisible by the {self.world} processes; "
                "choose batch sizes (--batch-sizes / --default-batch) that are multiples of the world size"
            )
        b = batch // self.world
        return slice(self.rank * b, (self.rank + 1) * b)


def init_from_env(device: str = "auto") -> DistInfo:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1), else no-op.

    Backend: nccl for CUDA devices, gloo for CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local)
    return DistInfo(rank=rank, world=world, local_rank=local)


def all_reduce_mean(tensors: list[torch.Tensor], info: DistInfo) -> list[torch.Tensor]:
    """Average a list of tensors over ranks in one flat collective (a single bucket)."""
    if not info.active or not tensors:
        return tensors
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= info.world
    out, i = [], 0
    for t in tensors:
        out.append(flat[i : i + t.numel()].view_as(t))
        i += t.numel()
    return out


def barrier(info: DistInfo) -> None:
    if info.active:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.active and dist.is_initialized():
        dist.destroy_process_group()
