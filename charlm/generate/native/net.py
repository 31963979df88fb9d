"""The C step's data: a model's weights quantized and laid out as step.c reads them, and a
per-stream engine over them with the same API as charlm.generate.engine.Engine.

The structs here mirror step.c's `Mat` and `Net` field for field. Every tensor a struct points
at is held by the Python object that made it: ctypes keeps addresses, not references.
"""

from __future__ import annotations

import ctypes

import torch

from charlm.config import GATES
from charlm.generate.layout import copy_state, engine_layers, load_state
from charlm.generate.native.build import library, max_threads
from charlm.model.network import CharRNN, Hidden

CELLS = {"lstm": 0, "gru": 1, "rnn": 2}
K_ALIGN = 64                     # step.c reads 64 weights of a row at a time
READ_CHUNK = 256                 # prompt positions a read call handles: bounds its scratch memory


class Mat(ctypes.Structure):
    _fields_ = [("w", ctypes.c_void_p), ("scale", ctypes.c_void_p), ("rowsum", ctypes.c_void_p),
                ("bias", ctypes.c_void_p), ("rows", ctypes.c_int32), ("cols", ctypes.c_int32),
                ("kpad", ctypes.c_int32)]


class Net(ctypes.Structure):
    _fields_ = [("cell", ctypes.c_int32), ("layers", ctypes.c_int32), ("hidden", ctypes.c_int32),
                ("vocab", ctypes.c_int32), ("batch", ctypes.c_int32), ("gates", ctypes.c_int32),
                ("threads", ctypes.c_int32),
                ("table", ctypes.c_void_p), ("inp", ctypes.POINTER(Mat)), ("rec", ctypes.POINTER(Mat)),
                ("h", ctypes.POINTER(ctypes.c_void_p)), ("c", ctypes.POINTER(ctypes.c_void_p)),
                ("head_w", ctypes.c_void_p), ("head_b", ctypes.c_void_p), ("logits", ctypes.c_void_p),
                ("gi", ctypes.c_void_p), ("gh", ctypes.c_void_p), ("act", ctypes.c_void_p),
                ("act_scale", ctypes.c_void_p)]


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def quantize_rows(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """int8 weights (rows, cols) with one symmetric scale per row, and those scales: w ~ q * scale."""
    scale = w.abs().amax(dim=1).clamp_min(1e-12) / 127.0
    return torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8), scale


class QuantMat:
    """A matrix (rows, cols) in step.c's layout: int8 rows padded to K_ALIGN, scales, row sums."""

    def __init__(self, w: torch.Tensor, bias: torch.Tensor | None):
        rows, cols = w.shape
        q, self.scale = quantize_rows(w)
        kpad = -(-cols // K_ALIGN) * K_ALIGN
        self.w = torch.zeros(rows, kpad, dtype=torch.int8)
        self.w[:, :cols] = q
        self.rowsum = q.sum(dim=1, dtype=torch.int32)
        self.bias = None if bias is None else bias.float().contiguous()
        self.struct = Mat(_ptr(self.w), _ptr(self.scale), _ptr(self.rowsum), _ptr(self.bias), rows, cols, kpad)

    def product(self, x: torch.Tensor, threads: int | None = None) -> torch.Tensor:
        """W x for the rows of x (count, cols), through step.c's own product."""
        return self.product_into(x.float().contiguous(), torch.empty(x.size(0), self.struct.rows), threads)

    def product_into(self, x: torch.Tensor, out: torch.Tensor, threads: int | None = None,
                     scratch: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """product() into `out`, with scratch from product_scratch() to allocate nothing."""
        act, act_scale = scratch or self.product_scratch(x.size(0))
        library().charlm_product(ctypes.byref(self.struct), x.data_ptr(), x.size(0), act.data_ptr(),
                                 act_scale.data_ptr(), out.data_ptr(), threads or max_threads())
        return out

    def product_scratch(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        bytes_ = count * self.struct.kpad * library().charlm_act_bytes()
        return torch.empty(bytes_, dtype=torch.uint8), torch.empty(count)

    def dequantized(self) -> torch.Tensor:
        """The weights as step.c sees them, in fp32 (for the pure-PyTorch twin in the tests)."""
        return self.w[:, :self.struct.cols].float() * self.scale[:, None]


class NativeWeights:
    """A model's step weights for step.c: made once per model, shared by its streams."""

    def __init__(self, model: CharRNN):
        cfg = model.config
        self.lib = library()
        if self.lib is None:
            raise RuntimeError("the C step is not available")
        self.cell, self.L, self.H, self.V = cfg.cell, cfg.layers, cfg.hidden, cfg.vocab_size
        self.G = GATES[cfg.cell] * cfg.hidden
        layers, head = engine_layers(model)
        self.table = layers[0]["table"].contiguous()
        self.inp = [None] + [QuantMat(w["weight_ih"], w["b_in"]) for w in layers[1:]]
        self.rec = [QuantMat(w["weight_hh"], w["b_rec"]) for w in layers]
        self.head_w, self.head_b = head["weight"].contiguous(), head["bias"].contiguous()
        self.inp_structs = (Mat * self.L)(*[m.struct if m else Mat() for m in self.inp])
        self.rec_structs = (Mat * self.L)(*[m.struct for m in self.rec])
        self.kmax = max(m.struct.kpad for m in self.rec + self.inp[1:])
        self.act_bytes = self.lib.charlm_act_bytes()

    def describe(self) -> str:
        threads = max_threads()
        return f"C step ({self.lib.charlm_kernel_isa().decode()}, {threads} thread{'s' * (threads > 1)})"


class NativeEngine:
    """charlm.generate.engine.Engine's API (load, state, advance, feed) over step.c, for `batch` streams."""

    weights = "int8"

    def __init__(self, prepared: NativeWeights, batch: int = 1):
        p, N = prepared, batch
        self.p, self.N, self.lib = p, N, p.lib
        self.hs = [torch.zeros(N, p.H) for _ in range(p.L)]
        self.cs = [torch.zeros(N, p.H) for _ in range(p.L)] if p.cell == "lstm" else None
        self.logits = torch.empty(N, p.V)
        self.gi, self.gh = torch.empty(N, p.G), torch.empty(N, p.G)
        self.act = torch.empty(N * p.kmax * p.act_bytes, dtype=torch.uint8)
        self.act_scale = torch.empty(N)
        self._h_ptrs = (ctypes.c_void_p * p.L)(*[_ptr(h) for h in self.hs])
        self._c_ptrs = (ctypes.c_void_p * p.L)(*[_ptr(c) for c in self.cs]) if self.cs else None
        self.net = Net(CELLS[p.cell], p.L, p.H, p.V, N, p.G, max_threads(), _ptr(p.table), p.inp_structs, p.rec_structs,
                       self._h_ptrs, self._c_ptrs, _ptr(p.head_w), _ptr(p.head_b), _ptr(self.logits),
                       _ptr(self.gi), _ptr(self.gh), _ptr(self.act), _ptr(self.act_scale))
        self._net_ref = ctypes.byref(self.net)
        self._ids = (ctypes.c_int64 * N)()
        self._step = self.lib.charlm_step

    # -- state ------------------------------------------------------------------------------
    def load(self, hidden: Hidden | None) -> None:
        load_state(self.hs, self.cs, hidden)

    def state(self) -> Hidden:
        return copy_state(self.hs, self.cs)

    # -- stepping ---------------------------------------------------------------------------
    def advance(self, ids: torch.Tensor | list[int]) -> torch.Tensor:
        """Feed one character per stream (ids: (N,), a list or a tensor); the logits (N, V) for
        the next one, in a buffer the next step overwrites."""
        if isinstance(ids, list):
            self._ids[:] = ids                  # a ctypes array: no tensor made a character
        else:
            self._ids[:] = ids.tolist()
        self._step(self._net_ref, self._ids)
        return self.logits

    @torch.no_grad()
    def feed(self, ids: torch.Tensor, every: bool = False) -> torch.Tensor:
        """Read a prompt (ids: (N, P)) layer by layer in chunks of READ_CHUNK positions; the
        logits for the next character (N, V), or with `every` for each position (N, P, V)."""
        ids = ids.to(torch.int64).contiguous()
        N, P = ids.shape
        p, chunk = self.p, min(P, READ_CHUNK)
        outs = torch.empty(N, chunk, p.H)
        gi = torch.empty(N * chunk, p.G)
        act = torch.empty(N * chunk * p.kmax * p.act_bytes, dtype=torch.uint8)
        act_scale = torch.empty(N * chunk)
        every_logits = torch.empty(N, P, p.V) if every else None
        for start in range(0, P, chunk):
            part = ids[:, start:start + chunk].contiguous()
            n = part.size(1)
            out = outs[:, :n].contiguous() if n != chunk else outs
            self.lib.charlm_read(self._net_ref, part.data_ptr(), n, out.data_ptr(), gi.data_ptr(), act.data_ptr(),
                                 act_scale.data_ptr())
            if every:
                every_logits[:, start:start + n] = torch.nn.functional.linear(out, p.head_w, p.head_b)
        return every_logits if every else self.logits
