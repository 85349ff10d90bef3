"""DIPN's inference graph re-expressed in TensorFlow, weights copied from the PyTorch model.

Why a second expression: TFLite has no GRU op, and converting the PyTorch graph (litert-torch)
unrolls every GRU over all 256 steps: about 29,000 ops, mostly graph, not weights, and about 5
minutes of conversion (docs/convert.md). Written in TensorFlow, all recurrences of the model
(2 directions x each sequence: 6 for the full DIPN) run in one ``tf.while_loop``, which the TFLite
converter keeps as a single ``WHILE`` op: about 150 ops, converted in seconds.

The graph follows ``dipn.models.dipn`` line by line (see its module docstring for the masking):
  * embeddings: one ``gather`` per feature column, concatenated (section 4.1);
  * the FC "reshape" + ReLU, multiplied by the padding mask;
  * Bi-GRU (eq. 1) in PyTorch's gate order and weight layout (rows r, z, n;
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h = (1 - z) * n + z * h``), over the
    padding as PyTorch runs it: the input projections of every recurrence are computed outside
    the loop, the loop does only ``h @ W_hh + b_hh`` and the gates, and writes each step's state
    with ``dynamic_update_slice`` into a preallocated (T, K, B, d) tensor (a ``TensorArray`` lowers
    to a slice + concatenation per step and is several times slower);
  * intra-view attention (eq. 2-3), last states, inter-view attention (eq. 4), masked as in torch;
  * the task heads, then sigmoids: outputs ``p_realtime`` and ``p_longterm``.

The parity gate (``convert.parity``) and the golden vectors are what keep this honest for every
variant that ships. ``XlaDynamicUpdateSlice`` has no plain TF CPU kernel: run the TF graph itself
under ``tf.function(jit_compile=True)`` (``DipnTF.jit_scores``); the TFLite converter lowers it to
``DYNAMIC_UPDATE_SLICE``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from tensorflow.compiler.tf2xla.python import xla
from torch import nn

from dipn.errors import DipnValidationError
from dipn.features import MERGED, OUTPUTS, STATICS, VIEWS
from dipn.features.cut import context_columns_read
from dipn.features.spec import input_shape, mask_columns, merged_layout
from dipn.models.base import NEG
from dipn.models.dipn import DIPN


@dataclass(frozen=True)
class Recurrence:
    """One direction of one sequence's GRU: index ``k`` in the stacked loop state."""

    sequence: str
    backward: bool


def _numpy_state(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}


class DipnTF(tf.Module):
    """A DIPN (any variant of ``VARIANTS``) as a TensorFlow module with named int32 inputs."""

    def __init__(self, model: nn.Module, batch_size: int | None = None) -> None:
        super().__init__(name="dipn")
        if not isinstance(model, DIPN):
            raise DipnValidationError(
                f"the TF re-expression covers DIPN and its variants, not {type(model).__name__}; "
                "convert it with --tflite-route litert-torch"
            )
        cfg, fc = model.config, model.feature_config
        self.config, self.feature_config = cfg, fc
        self.input_names = tuple(model.input_names)
        self.sequence_length = fc.sequence_length
        self.hidden = cfg.hidden_size
        self.batch_size = batch_size
        w = _numpy_state(model)

        def const(name: str, value: np.ndarray) -> tf.Variable:
            return tf.Variable(value, trainable=False, name=name.replace(".", "_"))

        groups = {g for g in self.input_names if g != MERGED} | (set(VIEWS) if cfg.early_fusion else set())
        # One table per column the model embeds, as its GroupEmbedding (the paper's DIPN gives a
        # view's age column none): (column, table).
        self.tables = {
            g: [(c, const(f"{g}.{i}", w[f"embeddings.{g}.tables.{i}.weight"]))
                for i, c in enumerate(model.embeddings[g].columns)]
            for g in sorted(groups)
        }  # fmt: skip
        # Columns whose non-zero id marks a real step (as DIPN._mask_columns), and merged slices.
        # The context columns DIPN reads (ContextEmbedding): others are multiplied to padding.
        modelled = VIEWS if cfg.early_fusion else cfg.views
        self.context_keep = (tf.constant(context_columns_read(fc, modelled, cfg.action_ages), tf.int32)
                             if "context" in groups else None)  # fmt: skip
        self.mask_columns = {s: mask_columns(fc, s) for s in cfg.sequences}
        self.merged_slices = merged_layout(fc) if cfg.early_fusion else ()

        self.reshape = {s: (const(f"reshape.{s}.w", w[f"reshape.{s}.0.weight"].T),
                            const(f"reshape.{s}.b", w[f"reshape.{s}.0.bias"])) for s in cfg.sequences}  # fmt: skip
        self.recurrences = tuple(Recurrence(s, b) for s in cfg.sequences for b in (False, True))
        suffix = {False: "", True: "_reverse"}
        w_ih, b_ih, w_hh, b_hh = [], [], [], []
        for r in self.recurrences:
            p = f"grus.{r.sequence}."
            w_ih.append(w[f"{p}weight_ih_l0{suffix[r.backward]}"].T)  # (in, 3d), rows r, z, n
            b_ih.append(w[f"{p}bias_ih_l0{suffix[r.backward]}"])
            w_hh.append(w[f"{p}weight_hh_l0{suffix[r.backward]}"].T)  # (d, 3d)
            b_hh.append(w[f"{p}bias_hh_l0{suffix[r.backward]}"])
        self.w_ih = [const(f"gru.{k}.w_ih", m) for k, m in enumerate(w_ih)]
        self.b_ih = [const(f"gru.{k}.b_ih", b) for k, b in enumerate(b_ih)]
        if self.recurrences:
            self.w_hh = const("gru.w_hh", np.stack(w_hh))  # (K, d, 3d)
            self.b_hh = const("gru.b_hh", np.stack(b_hh)[:, None, :])  # (K, 1, 3d)
        self.w_a = (
            {s: const(f"intra.{s}.w_a", w[f"intra_attention.{s}.w_a.weight"].T) for s in cfg.sequences}
            if cfg.intra_view_attention
            else {}
        )
        self.scale = 1.0 / math.sqrt(2 * self.hidden)
        self.heads = {}
        for task in cfg.tasks:
            layers, i = [], 0
            while f"heads.branches.{task}.{i}.weight" in w:
                layers.append((const(f"head.{task}.{i}.w", w[f"heads.branches.{task}.{i}.weight"].T),
                               const(f"head.{task}.{i}.b", w[f"heads.branches.{task}.{i}.bias"])))  # fmt: skip
                i += 2 + (1 if cfg.dropout else 0)  # Linear, ReLU (, Dropout)
            self.heads[task] = layers
        # The wide path (DIPNConfig.wide_context): a linear term of the context embedding per task.
        self.wide = {t: (const(f"wide.{t}.w", w[f"wide.{t}.weight"].T), const(f"wide.{t}.b", w[f"wide.{t}.bias"]))
                     for t in cfg.tasks if f"wide.{t}.weight" in w}  # fmt: skip
        # The ordinal wide path (DIPNConfig.wide_ordinal): the context's bucket ids as numbers, scaled.
        self.ordinal = {t: (const(f"ordinal.{t}.w", w[f"ordinal.{t}.weight"].T), const(f"ordinal.{t}.b", w[f"ordinal.{t}.bias"]))
                        for t in cfg.tasks if f"ordinal.{t}.weight" in w}  # fmt: skip
        self.ordinal_scale = const("ordinal_scale", w["ordinal_scale"]) if self.ordinal else None

    # ---- signature ---------------------------------------------------------------------------
    def input_specs(self) -> list[tf.TensorSpec]:
        return [tf.TensorSpec(input_shape(self.feature_config, n, self.batch_size), tf.int32, name=n)
                for n in self.input_names]  # fmt: skip

    def serving_function(self) -> tf.types.experimental.ConcreteFunction:
        """The ``serving_default`` signature: named int32 inputs -> {p_realtime, p_longterm}."""

        def serve(*inputs: tf.Tensor) -> dict[str, tf.Tensor]:
            return self.scores(dict(zip(self.input_names, inputs, strict=True)))

        return tf.function(serve, input_signature=self.input_specs()).get_concrete_function()

    def jit_scores(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Scores (N, 2) computed by TensorFlow itself (XLA-compiled; see the module docstring)."""
        fn = tf.function(self.scores, jit_compile=True)
        out = fn({n: tf.constant(np.asarray(inputs[n], np.int32)) for n in self.input_names})
        return np.stack([out[k].numpy() for k in OUTPUTS], axis=1)

    # ---- the graph ---------------------------------------------------------------------------
    def scores(self, inputs: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        cfg, d = self.config, self.hidden
        masks = {s: self._mask(s, inputs[s]) for s in cfg.sequences}
        x = {s: self._reshape(s, inputs[s], masks[s]) for s in cfg.sequences}
        h = self._bi_grus(x) if cfg.sequences else {}
        features, v = [], {}
        for s in cfg.sequences:
            mask = masks[s]
            if cfg.intra_view_attention:
                v[s], pooled = self._intra_attention(s, h[s], h[s][:, -1, :d], mask)
            else:
                v[s], pooled = h[s] * mask[..., None], _masked_mean(h[s], mask)
            features += [pooled, _last_states(h[s], mask, d)]
        for a, b in cfg.pairs:
            features.append(self._inter_view(v[a], masks[a], v[b], masks[b]))
        statics = {}
        for static in STATICS:
            if static in self.input_names:
                ids = inputs[static] * self.context_keep if static == "context" else inputs[static]
                statics[static] = self._embed(static, ids)
        joined = tf.concat(features + list(statics.values()), axis=-1)
        logits = {t: self._head(t, joined) for t in cfg.tasks}
        for t, (weight, bias) in self.wide.items():
            logits[t] = logits[t] + tf.squeeze(tf.matmul(statics["context"], weight) + bias, -1)
        if self.ordinal:
            numbers = tf.cast(inputs["context"], tf.float32) * self.ordinal_scale
            for t, (weight, bias) in self.ordinal.items():
                logits[t] = logits[t] + tf.squeeze(tf.matmul(numbers, weight) + bias, -1)
        some = logits[cfg.tasks[0]]
        return {f"p_{t}": tf.sigmoid(logits.get(t, tf.zeros_like(some))) for t in ("realtime", "longterm")}

    def _embed(self, group: str, ids: tf.Tensor) -> tf.Tensor:
        return tf.concat([tf.gather(table, ids[..., c]) for c, table in self.tables[group]], axis=-1)

    def _mask(self, sequence: str, ids: tf.Tensor) -> tf.Tensor:
        real = None
        for column in self.mask_columns[sequence]:
            nonzero = tf.not_equal(ids[..., column], 0)
            real = nonzero if real is None else tf.logical_or(real, nonzero)
        return tf.cast(real, tf.float32)

    def _reshape(self, sequence: str, ids: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        if sequence == MERGED:
            emb = tf.concat([self._embed(v, ids[..., a:b]) for v, a, b in self.merged_slices], axis=-1)
        else:
            emb = self._embed(sequence, ids)
        weight, bias = self.reshape[sequence]
        return tf.nn.relu(_dense(emb, weight) + bias) * mask[..., None]

    def _bi_grus(self, x: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """All recurrences in one loop: (B, T, in) per sequence -> (B, T, 2d) outputs per sequence.

        The loop body runs ``unroll`` steps per iteration: each iteration of a TFLite ``WHILE``
        copies its loop state (the (T, K, B, d) output buffer among it), so fewer, longer
        iterations are faster (on this host, 1 thread: 4.8 ms for the six recurrences one step per
        iteration, 2.5 ms eight steps per iteration). The recurrent weights are constants of the
        loop body; int8 conversion makes its matmul a hybrid (int8 weights) ``BATCH_MATMUL``.
        """
        d, steps, k = self.hidden, self.sequence_length, len(self.recurrences)
        unroll = next(u for u in (8, 4, 2, 1) if steps % u == 0)
        projected = []
        for i, r in enumerate(self.recurrences):
            seq = tf.reverse(x[r.sequence], axis=[1]) if r.backward else x[r.sequence]
            projected.append(_dense(seq, self.w_ih[i]) + self.b_ih[i])  # (B, T, 3d)
        gi = tf.transpose(tf.stack(projected), [2, 0, 1, 3])  # (T, K, B, 3d)
        batch = tf.shape(gi)[2]
        gi = tf.reshape(gi, tf.stack([steps // unroll, unroll, k, batch, 3 * d]))
        gi_rz, gi_n = tf.split(gi, [2 * d, d], axis=-1)  # split once here, not at every step
        # Zeros computed from an input (x * 0 cannot be folded: NaN * 0 is NaN), so that the
        # converter does not store a (T, K, B, d) constant of zeros (196 KB) in the file.
        outs0 = gi_n * 0.0  # (T / unroll, unroll, K, B, d)
        h0 = outs0[0, 0]  # (K, B, d)
        w_hh, b_hh = self.w_hh, self.b_hh

        def iteration(i: tf.Tensor, h: tf.Tensor, outs: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
            steps_rz = tf.unstack(tf.gather(gi_rz, i), num=unroll)  # unroll x (K, B, 2d)
            steps_n = tf.unstack(tf.gather(gi_n, i), num=unroll)
            states = []
            for u in range(unroll):
                gh = tf.matmul(h, w_hh) + b_hh  # (K, B, 3d): W_hr h + b_hr | W_hz h + b_hz | W_hn h + b_hn
                gh_rz, gh_n = tf.split(gh, [2 * d, d], axis=-1)
                r, z = tf.split(tf.sigmoid(steps_rz[u] + gh_rz), 2, axis=-1)
                n = tf.tanh(steps_n[u] + r * gh_n)
                h = n + z * (h - n)  # = (1 - z) * n + z * h
                states.append(h)
            update = tf.expand_dims(tf.stack(states), 0)  # (1, unroll, K, B, d)
            outs = xla.dynamic_update_slice(outs, update, tf.stack([i, 0, 0, 0, 0]))
            return i + 1, h, outs

        iterations = steps // unroll
        _, _, outs = tf.while_loop(
            lambda i, *_: i < iterations, iteration, (tf.constant(0), h0, outs0), maximum_iterations=iterations
        )
        outs = tf.reshape(outs, tf.stack([steps, k, batch, d]))
        outputs = {}
        for s_index, sequence in enumerate(dict.fromkeys(r.sequence for r in self.recurrences)):
            forward = tf.transpose(outs[:, 2 * s_index], [1, 0, 2])  # (B, T, d)
            backward = tf.reverse(tf.transpose(outs[:, 2 * s_index + 1], [1, 0, 2]), axis=[1])
            outputs[sequence] = tf.concat([forward, backward], axis=-1)
        return outputs

    def _intra_attention(self, s: str, h: tf.Tensor, last_forward: tf.Tensor, mask: tf.Tensor):
        query = tf.matmul(last_forward, self.w_a[s])[..., None]  # (B, 2d, 1): W_a h_n
        scores = tf.squeeze(tf.matmul(h, query), -1)  # eq. (2)
        weights = _masked_softmax(scores, mask)
        pooled = tf.squeeze(tf.matmul(weights[:, None, :], h), 1)
        if self.config.rescale_intra_view:
            weights = weights * tf.reduce_sum(mask, axis=1, keepdims=True)
        return h * weights[..., None], pooled  # eq. (3)

    def _inter_view(self, v_x: tf.Tensor, mask_x: tf.Tensor, v_y: tf.Tensor, mask_y: tf.Tensor) -> tf.Tensor:
        scores = tf.matmul(v_y, v_x, transpose_b=True) * self.scale  # eq. (4)
        attended_x = tf.matmul(_masked_softmax(scores, mask_x[:, None, :]), v_x)
        attended_y = tf.matmul(_masked_softmax(tf.transpose(scores, [0, 2, 1]), mask_y[:, None, :]), v_y)
        return _masked_mean(attended_x * attended_y, mask_x * mask_y)

    def _head(self, task: str, features: tf.Tensor) -> tf.Tensor:
        layers = self.heads[task]
        x = features
        for i, (weight, bias) in enumerate(layers):
            x = tf.matmul(x, weight) + bias
            if i < len(layers) - 1:
                x = tf.nn.relu(x)
        return tf.squeeze(x, -1)


def _dense(x: tf.Tensor, weight: tf.Tensor) -> tf.Tensor:
    """(..., in) @ (in, out), as one FULLY_CONNECTED op after conversion."""
    shape = tf.shape(x)
    flat = tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), weight)
    return tf.reshape(flat, tf.concat([shape[:-1], [weight.shape[-1]]], axis=0))


def _masked_softmax(scores: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    mask = tf.broadcast_to(mask, tf.shape(scores))
    weights = tf.nn.softmax(tf.where(mask > 0, scores, NEG), axis=-1)
    return weights * mask


def _masked_mean(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    total = tf.squeeze(tf.matmul(mask[:, None, :], values), 1)
    return total / tf.maximum(tf.reduce_sum(mask, axis=1, keepdims=True), 1.0)


def _last_states(outputs: tf.Tensor, mask: tf.Tensor, d: int) -> tf.Tensor:
    forward_last = outputs[:, -1, :d] * mask[:, -1:]
    previous = tf.concat([tf.zeros_like(mask[:, :1]), mask[:, :-1]], axis=1)
    first_real = mask * (1.0 - previous)
    backward_first = tf.squeeze(tf.matmul(first_real[:, None, :], outputs[..., d:]), 1)
    return tf.concat([forward_last, backward_first], axis=-1)
