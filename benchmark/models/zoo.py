"""Any model from a zoo as a :class:`TransferNet`: its own modules grouped into blocks.

A :class:`Partition` names each block by the parameters it owns (module or parameter paths of
the zoo model); whatever it leaves out is the head, which is never transferred. The model keeps
running its own ``forward`` (its blocks need not run one after the other), so:

- a block's *modules* (whose train/eval mode it sets when frozen) are the modules all of whose
  parameters and buffers it owns; a parameterless module (activation, pooling, dropout, stochastic
  depth) goes with the block whose parameters come before it in the model's registration order,
  and after the last block's, with the head;
- a block's *output* is the output of whichever of its modules finished last, seen by hooks.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain

import torch
from torch import nn

from benchmark.errors import UserError
from benchmark.models.net import BlockVisitor, TransferNet, under

NET = "net"  # the zoo model's attribute: its state-dict keys are ours under "net."
HEAD = -1    # the block index of the head's modules


@dataclass(frozen=True)
class Partition:
    """Blocks by name, each the parameter/module paths it owns; ``head``: the classifier's."""

    blocks: dict[str, tuple[str, ...]]
    head: tuple[str, ...]


def tensor_names(model: nn.Module) -> list[str]:
    """Every parameter and buffer name of ``model``, in registration order."""
    return [name for name, _ in chain(model.named_parameters(), model.named_buffers())]


def covering_paths(parameters: Sequence[str], names: Sequence[str]) -> tuple[str, ...]:
    """The fewest module or parameter paths whose parameters (of all the model's ``parameters``)
    are exactly ``names`` (where a module holds only some of them, its parts), in registration
    order; buffers follow their module."""
    wanted = set(names)
    owned_by: dict[str, bool] = {}
    for name in parameters:
        for path in _ancestors(name):
            owned_by[path] = owned_by.get(path, True) and name in wanted
    paths: list[str] = []
    for name in names:
        path = next(p for p in _ancestors(name) if owned_by[p])
        if path not in paths:
            paths.append(path)
    return tuple(paths)


def _ancestors(name: str) -> Iterator[str]:
    """``a.b.c`` -> ``a``, ``a.b``, ``a.b.c`` (outermost first)."""
    parts = name.split(".")
    return (".".join(parts[:i]) for i in range(1, len(parts) + 1))


def check_partition(model: nn.Module, partition: Partition, how_to_fix: str) -> None:
    """Every parameter of ``model`` in exactly one block or the head; else one error."""
    owners: dict[str, list[str]] = {}
    named = [*partition.blocks.items(), ("the head", partition.head)]
    for name, _ in model.named_parameters():
        owners[name] = [block for block, paths in named if under(name, paths)]
    repeated = next(((n, o) for n, o in owners.items() if len(o) > 1), None)
    if repeated:
        raise UserError(f"the parameter {repeated[0]} is in more than one block ({', '.join(repeated[1])}); "
                        f"give each module once: {how_to_fix}")
    skipped = next((n for n, o in owners.items() if not o), None)
    if skipped:
        raise UserError(f"the parameter {skipped} is in no block and not in the head; {how_to_fix}")
    empty = next((b for b, paths in partition.blocks.items() if not any(owners_of(owners, paths))), None)
    if empty:
        raise UserError(f"block '{empty}' holds no parameters; {how_to_fix}")


def owners_of(owners: Mapping[str, list[str]], paths: tuple[str, ...]) -> list[str]:
    return [name for name in owners if under(name, paths)]


def explicit_partition(model: nn.Module, entries: Sequence[str], head: tuple[str, ...],
                       how_to_fix: str) -> Partition:
    """Blocks the user lists: each entry a module or parameter path, several joined by ``+``."""
    known = {name for name, _ in model.named_modules()} | set(tensor_names(model))
    blocks: dict[str, tuple[str, ...]] = {}
    for entry in entries:
        paths = tuple(p.strip() for p in str(entry).split("+"))
        unknown = [p for p in paths if p not in known]
        if unknown:
            top = ", ".join(name for name, _ in model.named_children())
            raise UserError(f"model.blocks names {unknown[0]!r}, which the model does not have; {how_to_fix} "
                            f"(its top-level modules: {top})")
        blocks[str(entry)] = paths
    partition = Partition(blocks, head)
    check_partition(model, partition, how_to_fix)
    return partition


def block_name(paths: tuple[str, ...], first: bool) -> str:
    """A block's name from its paths: the one path, ``stem`` for a first block of several
    modules, else the paths joined by ``+``."""
    if len(paths) == 1:
        return paths[0]
    return "stem" if first else "+".join(paths)


class ZooNet(TransferNet):
    """A zoo model run by its own ``forward``, with the blocks a :class:`Partition` gives."""

    def __init__(self, net: nn.Module, partition: Partition) -> None:
        super().__init__()
        self.net = net
        self._paths = {name: tuple(f"{NET}.{p}" for p in paths) for name, paths in partition.blocks.items()}
        self.head_paths = tuple(f"{NET}.{p}" for p in partition.head)
        self._modules_of = _block_modules(net, list(partition.blocks.values()))

    @property
    def block_names(self) -> list[str]:
        return list(self._paths)

    def block_paths(self, name: str) -> tuple[str, ...]:
        return self._paths[name]

    def block_modules(self, name: str) -> list[nn.Module]:
        return self._modules_of[self.block_names.index(name)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def visit_block_outputs(self, x: torch.Tensor, visit: BlockVisitor) -> None:
        if getattr(self.net, "output_fmt", "NCHW") == "NHWC":  # e.g. timm's Swin: maps as N, C, H, W
            visit = _channels_first(visit)
        outputs = _BlockOutputs(visit, self.num_transferable)
        handles = [hook for index, modules in [*enumerate(self._modules_of), (HEAD, self._head_modules)]
                   for module in modules for hook in outputs.watch(module, index)]
        try:
            self.net(x)
        finally:
            for handle in handles:
                handle.remove()
        outputs.flush(self.num_transferable)
        if outputs.visited != self.num_transferable:
            missing = self.block_names[outputs.visited]
            raise UserError(f"block '{missing}' of this model gives no tensor output in its forward; "
                            "list the blocks yourself with model.blocks=[...]")

    @property
    def _head_modules(self) -> list[nn.Module]:
        return self._modules_of[HEAD]


def _channels_first(visit: BlockVisitor) -> BlockVisitor:
    return lambda index, output: visit(index, output.permute(0, 3, 1, 2) if output.ndim == 4 else output)


class _BlockOutputs:
    """Hands each block's output to ``visit`` once, in block order, as soon as a later block
    (or the head) starts: the output of the block's module that finished last."""

    def __init__(self, visit: BlockVisitor, num_blocks: int) -> None:
        self.visit = visit
        self.pending: dict[int, torch.Tensor] = {}
        self.visited = 0
        self.num_blocks = num_blocks

    def watch(self, module: nn.Module, index: int) -> list:
        position = self.num_blocks if index == HEAD else index
        starting = module.register_forward_pre_hook(lambda *_: self.flush(position))
        if index == HEAD:
            return [starting]
        finished = module.register_forward_hook(lambda _m, _i, output: self._finished(index, output))
        return [starting, finished]

    def _finished(self, index: int, output: object) -> None:
        tensor = output[0] if isinstance(output, (tuple, list)) and output else output
        if index >= self.visited and isinstance(tensor, torch.Tensor):
            self.pending[index] = tensor

    def flush(self, before: int) -> None:
        while self.visited < before and self.visited in self.pending:
            self.visit(self.visited, self.pending.pop(self.visited))
            self.visited += 1


def _block_modules(net: nn.Module, blocks: list[tuple[str, ...]]) -> list[list[nn.Module]]:
    """Per block (and, last, the head), the outermost modules that belong wholly to it."""
    owner = _leaf_owners(net, blocks)
    named = list(net.named_modules())
    for name, module in reversed(named):  # children before their parents
        if name in owner:
            continue
        owners = {owner.get(_join(name, child)) for child, _ in module.named_children()}
        owners |= {_owner(_join(name, t), blocks) for t in _own_tensors(module)}
        owner[name] = owners.pop() if len(owners) == 1 else None  # None: spans several
    grouped: list[list[nn.Module]] = [[] for _ in range(len(blocks) + 1)]
    for name, module in named:
        parent = name.rpartition(".")[0] if name else None
        if owner[name] is not None and (parent is None or owner[parent] is None):
            grouped[owner[name]].append(module)
    return grouped


def _join(module: str, name: str) -> str:
    return f"{module}.{name}" if module else name


def _own_tensors(module: nn.Module) -> list[str]:
    return [n for n, _ in chain(module.named_parameters(recurse=False), module.named_buffers(recurse=False))]


def _owner(name: str, blocks: list[tuple[str, ...]]) -> int:
    """The block owning the tensor ``name``; the head (HEAD) when none does."""
    return next((i for i, paths in enumerate(blocks) if under(name, paths)), HEAD)


def _leaf_owners(net: nn.Module, blocks: list[tuple[str, ...]]) -> dict[str, int]:
    """Each leaf module's block: that of its tensors; a parameterless one inside a module with
    parameters takes that module's, and one at the top level that of the leaf before it (the
    first block's when none), or the head's after the last block's."""
    owners: dict[str, int] = {}
    current, last = 0, -1
    for name, module in net.named_modules():
        if next(module.children(), None) is not None:
            continue
        tensors = _own_tensors(module)
        parent = name.rpartition(".")[0]
        inherited = next((p for p, _ in net.get_submodule(parent).named_parameters()), None) if parent else None
        if tensors or inherited:
            current = _owner(_join(name, tensors[0]) if tensors else _join(parent, inherited), blocks)
            last = len(owners) if current != HEAD else last
        owners[name] = current
    return {name: owner if i <= last else HEAD for i, (name, owner) in enumerate(owners.items())}
