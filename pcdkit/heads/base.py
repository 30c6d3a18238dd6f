"""What every IGO head set shares: one (E_tau, D_tau) pair per intermediate fraction tau."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def tau_key(tau: float) -> str:
    """ModuleDict key of a fraction (dots are not allowed in module names)."""
    return f"tau_{tau:g}".replace(".", "_")


class IGOHeadSet(nn.Module):
    """E_tau / D_tau modules keyed by tau; subclasses build them for their backbone."""

    def __init__(self, taus: Sequence[float], encoders: dict[float, nn.Module],
                 decoders: dict[float, nn.Module]) -> None:
        super().__init__()
        self.taus = sorted(float(t) for t in taus)
        encoders = {float(t): m for t, m in encoders.items()}
        decoders = {float(t): m for t, m in decoders.items()}
        self.encoders = nn.ModuleDict({tau_key(t): encoders[t] for t in self.taus})
        self.decoders = nn.ModuleDict({tau_key(t): decoders[t] for t in self.taus})

    def pair(self, tau: float) -> tuple[nn.Module, nn.Module]:
        """(E_tau, D_tau)."""
        return self.encoders[tau_key(tau)], self.decoders[tau_key(tau)]

    def overhead(self, backbone: nn.Module) -> dict[str, int]:
        """Parameter counts: backbone P, heads, and P * (|T| + 1) for separate networks."""
        p = sum(x.numel() for x in backbone.parameters())
        h = sum(x.numel() for x in self.parameters())
        return {"backbone": p, "heads": h, "igo_total": p + h,
                "separate_networks": p * (len(self.taus) + 1)}
