"""Length-aware LSTM over a padded feature sequence (audio, vision, precomputed text)."""

import torch
from torch import Tensor, nn


class SequenceEncoder(nn.Module):
    """LSTM over (B, L, D) -> last real hidden state -> Linear -> (B, out_dim).

    The LSTM runs over the padded batch and the state at each clip's last real step is read,
    so padding (its length and its content) does not change the output: an LSTM is causal,
    and the frames after a clip's end come after the state that is read. This is what packing
    computes, without its cost: on the CPU the backward pass of a packed LSTM fills a zero
    tensor of the whole sequence for every time step (quadratic in the length), 20 times
    slower than this at MOSI's 500 vision frames. The padding steps this does compute are
    bounded by the loader, which cuts each batch to its longest clip. A clip of length 0
    gets the representation of an empty sequence: a zero hidden state through the output
    layer.

    centre=True (utterance-level mean normalisation, as cepstral mean normalisation in speech):
    the LSTM reads each clip's frames minus their mean over its real frames, and the output
    layer reads that mean beside the last hidden state. A speaker's baseline (voice pitch,
    face shape) then does not drown the changes within the clip, and the level itself is
    still there for the output layer.
    """

    def __init__(
        self, *, in_dim: int, hidden: int, out_dim: int, num_layers: int = 1,
        dropout: float = 0.0, centre: bool = False,
    ) -> None:
        super().__init__()
        assert in_dim > 0 and hidden > 0 and out_dim > 0, "dimensions must be positive"
        assert num_layers >= 1, "num_layers must be >= 1"
        assert 0.0 <= dropout < 1.0, "dropout must be in [0, 1)"
        # nn.LSTM applies its dropout between layers only; a single layer would warn.
        self.lstm = nn.LSTM(
            in_dim, hidden, num_layers=num_layers, batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(dropout)
        self.centre = centre
        self.proj = nn.Linear(hidden + (in_dim if centre else 0), out_dim)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        B, L, _ = x.shape
        if lengths is None:  # aligned data: every clip fills the whole sequence
            lengths = torch.full((B,), L, dtype=torch.long)
        assert L >= 1, "sequences need at least one (padding) step"
        assert lengths.shape == (B,), f"lengths must be ({B},), got {tuple(lengths.shape)}"
        if not lengths.is_cuda:  # on a GPU the check would stall the queue every step
            assert int(lengths.min()) >= 0 and int(lengths.max()) <= L, (
                f"lengths must lie in [0, {L}], got [{int(lengths.min())}, "
                f"{int(lengths.max())}]"
            )
        lengths = lengths.to(x.device, torch.long)
        if self.centre:
            real = (torch.arange(L, device=x.device)[None, :]
                    < lengths[:, None]).unsqueeze(-1)  # (B, L, 1)
            level = (x * real).sum(1) / lengths.clamp(min=1).to(x)[:, None]  # (B, D)
            x = x - level[:, None, :]
        states, _ = self.lstm(x)  # (B, L, hidden): the last layer's state after every step
        last = (lengths - 1).clamp(min=0)  # (B,) each clip's last real step
        h = states[torch.arange(B, device=x.device), last]  # (B, hidden)
        h = h.masked_fill((lengths == 0)[:, None], 0.0)
        if self.centre:
            h = torch.cat([h, level], dim=-1)  # (B, hidden + D)
        return self.proj(self.drop(h))  # (B, out_dim)
