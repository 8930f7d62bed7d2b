"""Length-aware LSTM over a padded feature sequence (audio, vision, precomputed text)."""

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence


class SequenceEncoder(nn.Module):
    """LSTM over (B, L, D) -> last real hidden state -> Linear -> (B, out_dim).

    The sequence is packed with its lengths, so padding (its length and its content)
    does not change the output. A clip of length 0 gets the representation of an
    empty sequence: a zero hidden state through the output layer.

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
        lengths_cpu = lengths.detach().to("cpu", torch.long)  # packing wants CPU lengths
        assert lengths_cpu.shape == (B,), f"lengths must be ({B},), got {tuple(lengths.shape)}"
        assert int(lengths_cpu.min()) >= 0 and int(lengths_cpu.max()) <= L, (
            f"lengths must lie in [0, {L}], got [{int(lengths_cpu.min())}, "
            f"{int(lengths_cpu.max())}]"
        )
        if self.centre:
            real = (torch.arange(L, device=x.device)[None, :]
                    < lengths_cpu.to(x.device)[:, None]).unsqueeze(-1)  # (B, L, 1)
            level = (x * real).sum(1) / lengths_cpu.clamp(min=1).to(x)[:, None]  # (B, D)
            x = x - level[:, None, :]
        packed = pack_padded_sequence(
            x, lengths_cpu.clamp(min=1), batch_first=True, enforce_sorted=False
        )
        _, (h_n, _) = self.lstm(packed)  # h_n (num_layers, B, hidden), in input order
        h = h_n[-1]  # (B, hidden)
        empty = (lengths_cpu == 0).to(h.device)
        h = h.masked_fill(empty[:, None], 0.0)
        if self.centre:
            h = torch.cat([h, level], dim=-1)  # (B, hidden + D)
        return self.proj(self.drop(h))  # (B, out_dim)
