"""Model factories: the physics-informed network for any N and gridsize (physics.md section 5).

Nothing here is built at import. :func:`build_models` makes a new :class:`ModelBundle` from a
:class:`~ptycho_engine.config.ModelConfig`, a probe and the data-derived scales every time it
is called, so N, gridsize and the probe can change any number of times in one process.

Graph of the training model (tensors are ``(B, N, N, C)`` unless noted)::

    diffraction (sqrt counts) --/s--> X --encoder--> bottleneck --decoder--> a (sigmoid head)
                                                                        \\--> phi (pi tanh head)
    (one decoder shared by both heads by default; ``shared_decoder=False``: one per head)
    O = pad(a * exp(i phi))  --overlap constraint (C > 1, uses offsets (B, C, 2))--> O'
    predicted amplitude = s * |fftshift(fft2(P * O'))| / N
                        = s * sqrt(sum_k |fftshift(fft2(P_k * O'))|**2) / N   (K probe modes)

The inference model shares every layer and returns the amplitude and phase of ``O'``.
Complex values never cross a Keras layer boundary: layers exchange real and imaginary parts.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from ptycho_engine.config import ModelConfig
from ptycho_engine.errors import ModelError
from ptycho_engine.physics.farfield import (
    checkerboard,
    farfield_amplitude,
    farfield_amplitude_modes,
)
from ptycho_engine.physics.patches import canvas_size as _canvas_size
from ptycho_engine.physics.patches import centred_box as _support_box
from ptycho_engine.physics.patches import overlap_constraint
from ptycho_engine.physics.probe import (
    coherent_equivalent,
    disk_mask,
    matched_amplitude,
    normalize_probe,
    pad_modes,
    probe_modes,
    sort_modes,
    support_mask,
)

_PACKAGE = "ptycho_engine"
BOTTLENECK = 8
#: An encoder-decoder for :func:`build_models`: normalised patterns to amplitude and phase.
Network = Callable[[Any], tuple[Any, Any]]


@keras.saving.register_keras_serializable(package=_PACKAGE)
class IntensityScale(keras.layers.Layer):
    """Divides (or, with ``inverse=True``, multiplies) by the intensity scale ``s``.

    ``s = sqrt(photons_per_pattern) / (N/2)`` (physics.md section 3) is held as ``log s`` so it
    stays positive when trainable.
    """

    def __init__(self, scale: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = float(scale)

    def build(self, input_shape: Any) -> None:
        self.log_scale = self.add_weight(
            name="log_scale",
            shape=(),
            initializer=keras.initializers.Constant(math.log(self.scale)),
            trainable=True,
        )

    def call(self, x: Any, inverse: bool = False) -> Any:
        s = keras.ops.exp(self.log_scale)
        return x * s if inverse else x / s

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LogCompress(keras.layers.Layer):
    """``log(1 + gain * x)``: compresses the dynamic range of diffraction amplitudes."""

    def __init__(self, gain: float = 10.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gain = float(gain)

    def call(self, x: Any) -> Any:
        return keras.ops.log1p(self.gain * keras.ops.relu(x))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gain": self.gain}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Backprojection(keras.layers.Layer):
    """Real-space estimate of each object patch from its diffraction amplitudes.

    ``O_est = IFFT(X * exp(i arg F(P))) * conj(P) / (|P|**2 + eps)`` on the support, where
    ``F(P)`` is the centred far field of the probe: exact for a flat object, and a first
    guess that the network refines otherwise. Returns ``(B, N, N, 2C)``: real parts, then
    imaginary parts. The layer holds its own non-trainable copy of the probe the model was
    built with (a feature of the input, so it stays fixed while a trainable probe is refined).
    """

    def __init__(self, N: int, pad_object: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.N = int(N)
        self.pad_object = bool(pad_object)

    def build(self, input_shape: Any) -> None:
        shape = (self.N, self.N)
        self.probe_real = self.add_weight(
            name="probe_real", shape=shape, initializer="zeros", trainable=False
        )
        self.probe_imag = self.add_weight(
            name="probe_imag", shape=shape, initializer="zeros", trainable=False
        )

    def call(self, x: Any) -> Any:
        cb = checkerboard(self.N)
        probe = tf.complex(self.probe_real, self.probe_imag)
        far = tf.signal.fft2d(probe * tf.cast(cb, tf.complex64))
        phase = far / tf.cast(tf.maximum(tf.abs(far), 1e-12), tf.complex64)
        spectrum = tf.complex(tf.transpose(x, [0, 3, 1, 2]), 0.0) * phase
        # A = |fft2(psi)| / N, and ifft2d carries 1/N**2: psi = N * ifft2d(A * phase)
        exit_wave = tf.signal.ifft2d(spectrum) * tf.cast(cb * self.N, tf.complex64)
        power = tf.abs(probe) ** 2
        eps = 0.05 * tf.reduce_max(power)
        weight = support_mask(self.N, self.pad_object)
        estimate = exit_wave * tf.cast(weight / (power + eps), tf.complex64) * tf.math.conj(probe)
        estimate = tf.transpose(estimate, [0, 2, 3, 1])
        return tf.concat([tf.math.real(estimate), tf.math.imag(estimate)], axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "N": self.N, "pad_object": self.pad_object}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ScaledTanh(keras.layers.Layer):
    """``pi * tanh(x)``: the phase head's activation."""

    def call(self, x: Any) -> Any:
        return math.pi * keras.ops.tanh(x)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ComplexPatch(keras.layers.Layer):
    """Amplitude and phase ``(B, n, n, C)`` to real and imaginary parts, zero-padded to N."""

    def __init__(self, N: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.N = int(N)

    def call(self, inputs: Any) -> Any:
        amp, phase = inputs
        re = amp * keras.ops.cos(phase)
        im = amp * keras.ops.sin(phase)
        n_in = amp.shape[1]
        pad = (self.N - n_in) // 2
        if pad:
            widths = [(0, 0), (pad, pad), (pad, pad), (0, 0)]
            re = keras.ops.pad(re, widths)
            im = keras.ops.pad(im, widths)
        return re, im

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "N": self.N}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class OverlapConstraint(keras.layers.Layer):
    """Group-consistent patches ``O'`` from the patches ``O`` of each group (C > 1).

    Inputs are ``(B, N, N, C)``; with ``channels_first`` the outputs are ``(B, C, N, N)``, the
    layout of the FFT, which spares the far-field layer two transposes per step.
    """

    def __init__(
        self,
        N: int,
        canvas: int,
        pad_object: bool = True,
        channels_first: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.N = int(N)
        self.canvas = int(canvas)
        self.pad_object = bool(pad_object)
        self.channels_first = bool(channels_first)

    def call(self, inputs: Any) -> Any:
        re, im, offsets = inputs
        support = support_mask(self.N, self.pad_object)
        lo, hi = _support_box(support)
        # the patches are zero outside the support box: cut it before building the complex
        # channel-first tensor (4x less data to move); the constraint then places the box
        # on a canvas smaller by the same margin and extracts full N x N patches
        obj = tf.transpose(tf.complex(re[:, lo:hi, lo:hi], im[:, lo:hi, lo:hi]), [0, 3, 1, 2])
        size = self.canvas - (self.N - (hi - lo))
        out = overlap_constraint(obj, offsets, support[lo:hi, lo:hi], size, out_size=self.N)
        if not self.channels_first:
            out = tf.transpose(out, [0, 2, 3, 1])
        return tf.math.real(out), tf.math.imag(out)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "N": self.N,
            "canvas": self.canvas,
            "pad_object": self.pad_object,
            "channels_first": self.channels_first,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FarField(keras.layers.Layer):
    """Exit wave ``P * O`` and far-field amplitude ``|fftshift(fft2(.))| / N``.

    The probe (normalised) is held as two weights, real and imaginary part, trainable only
    when ``probe_trainable``; the factory assigns its value after building. The ``fftshift``
    is folded into the probe as a checkerboard sign, so no pattern is rolled.

    With ``n_modes = K > 1`` the probe is a stack of ``K`` mutually incoherent modes, weights
    ``(K, N, N)``, and the amplitude is ``sqrt(sum_k |fftshift(fft2(P_k * O))|**2) / N`` (a
    partially coherent beam). One mode keeps ``(N, N)`` weights and the single-FFT path, so it
    costs exactly what a coherent probe costs.
    """

    def __init__(
        self,
        N: int,
        probe_mask: bool = False,
        probe_trainable: bool = False,
        channels_first: bool = False,
        n_modes: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.N = int(N)
        self.probe_mask = bool(probe_mask)
        self.probe_trainable = bool(probe_trainable)
        self.channels_first = bool(channels_first)
        self.n_modes = int(n_modes)
        if self.n_modes < 1:
            raise ModelError(f"FarField: n_modes must be >= 1, got {n_modes!r}")

    def build(self, input_shape: Any) -> None:
        shape: tuple[int, ...] = (self.N, self.N)
        if self.n_modes > 1:
            shape = (self.n_modes, self.N, self.N)
        self.probe_real = self.add_weight(
            name="probe_real", shape=shape, initializer="zeros", trainable=self.probe_trainable
        )
        self.probe_imag = self.add_weight(
            name="probe_imag", shape=shape, initializer="zeros", trainable=self.probe_trainable
        )

    def effective_probe(self) -> tf.Tensor:
        """Probe times the centring checkerboard (and the disk mask with ``probe_mask``)."""
        factor = checkerboard(self.N)
        if self.probe_mask:
            factor = factor * disk_mask(self.N)
        return tf.complex(self.probe_real * factor, self.probe_imag * factor)

    def call(self, inputs: Any) -> Any:
        re, im = inputs
        obj = tf.complex(re, im)
        if not self.channels_first:
            obj = tf.transpose(obj, [0, 3, 1, 2])
        if self.n_modes == 1:
            amp = farfield_amplitude(obj * self.effective_probe(), centred_input=True)
        else:
            amp = farfield_amplitude_modes(obj, self.effective_probe(), centred_input=True)
        return tf.transpose(amp, [0, 2, 3, 1])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "N": self.N,
            "probe_mask": self.probe_mask,
            "probe_trainable": self.probe_trainable,
            "channels_first": self.channels_first,
            "n_modes": self.n_modes,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Magnitude(keras.layers.Layer):
    """Real and imaginary parts to amplitude and phase."""

    def call(self, inputs: Any) -> Any:
        re, im = inputs
        return keras.ops.sqrt(re * re + im * im), keras.ops.arctan2(im, re)


@dataclass(frozen=True, eq=False)
class ModelBundle:
    """The models of one configuration, sharing their layers and weights.

    Attributes
    ----------
    training : keras.Model
        ``[diffraction (B, N, N, C) sqrt counts, offsets (B, C, 2)] -> predicted amplitude
        (B, N, N, C)`` in sqrt counts. Compiled with :attr:`loss` and Adam.
    inference : keras.Model
        ``[diffraction, offsets] -> [amplitude, phase]`` of the object patches ``(B, N, N, C)``.
    config : ModelConfig
    probe : ndarray, (N, N) complex64
        The normalised probe the model was built with (its strongest mode when it has
        several).
    probe_modes : ndarray, (K, N, N) complex64
        Every normalised probe mode, strongest first (``K = 1`` for a coherent probe;
        ``probe_modes[0]`` is ``probe``).
    intensity_scale : float
        ``s`` at build time.
    canvas : int
        Side of the overlap canvas (N when gridsize is 1).
    amp_init : float
        Initial object amplitude (the intensity-matched level, clipped to the head's range).
    network : callable or None
        The encoder-decoder given to :func:`build_models` (None: the engine's own).
    """

    training: keras.Model
    inference: keras.Model
    config: ModelConfig
    probe: np.ndarray
    probe_modes: np.ndarray
    intensity_scale: float
    canvas: int
    amp_init: float
    max_offset_px: float
    seed: int
    predict_fn: Any
    network: Network | None = None

    def predict(
        self, diffraction: np.ndarray, offsets: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Object amplitude and phase ``(B, N, N, C)`` float32 for one batch.

        Uses one compiled function per bundle; keep batch shapes fixed to avoid retracing.
        """
        amp, phase = self.predict_fn(
            tf.convert_to_tensor(diffraction, tf.float32), tf.convert_to_tensor(offsets, tf.float32)
        )
        return amp.numpy(), phase.numpy()

    def save_weights(self, path: str | Path) -> Path:
        """Write every weight and the optimiser state (Keras ``.weights.h5``)."""
        target = Path(path)
        optimizer = self.training.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.training.trainable_variables)
        self.training.save_weights(str(target))
        return target

    def load_weights(self, path: str | Path) -> None:
        """Read weights written by :meth:`save_weights` of a bundle of the same config.

        The file also holds the optimiser state, so a run can resume where it stopped.
        """
        optimizer = self.training.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.training.trainable_variables)
        try:
            self.training.load_weights(str(path))
        except (ValueError, OSError) as exc:
            raise ModelError(f"{path}: cannot load weights into this model: {exc}") from exc


def _conv(filters: int, name: str, seed: int, activation: str | None = "relu") -> Any:
    return keras.layers.Conv2D(
        filters,
        3,
        padding="same",
        activation=activation,
        kernel_initializer=keras.initializers.HeNormal(seed=seed),
        name=name,
    )


def _skip_level(n: int, out_side: int, side: int, levels: int) -> int | None:
    """Encoder level whose central crop of ``side`` samples spans the decoder's field of view.

    The decoder output (``out_side`` object pixels, the support) is sampled at ``side``
    pixels at this stage; encoder level k samples the whole ``n``-pixel input at ``n / 2**k``.
    Level k matches when ``out_side / side == 2**k``, i.e. the same pixel size.
    """
    for k in range(levels):
        if out_side == side * 2**k and n // 2**k >= side:
            return k
    return None


def _inverse_activation(value: float, activation: str) -> float:
    if activation == "sigmoid":
        v = min(max(value, 0.02), 0.98)
        return math.log(v / (1 - v))
    v = max(value, 1e-3)
    return math.log(math.expm1(v))


def _head_range(value: float, activation: str) -> float:
    return min(max(value, 0.02), 0.98) if activation == "sigmoid" else max(value, 1e-3)


def _engine_network(
    config: ModelConfig, normalised: Any, modes_n: np.ndarray, amp_level: float, seed: int
) -> tuple[Any, Any]:
    """The engine's encoder-decoder: normalised patterns ``(B, N, N, C)`` to amplitude and
    phase ``(B, n, n, C)`` after their activations (``n = N/2`` with ``pad_object``)."""
    n, channels = config.N, config.channels
    base = 16 * config.n_filters_scale
    levels = (n // BOTTLENECK).bit_length() - 1
    out_side = n // 2 if config.pad_object else n
    ups = (out_side // BOTTLENECK).bit_length() - 1
    seeds = iter(range(seed * 1000, seed * 1000 + 1000))
    x = normalised
    if config.input_compression == "log":
        x = LogCompress(name="log_compress")(x)
    if config.input_backprojection:
        # one complex probe with the power of all modes: the estimate's brightness then
        # matches the measured counts
        single = coherent_equivalent(modes_n)
        backprojection = Backprojection(n, config.pad_object, name="backprojection")
        backprojection.build(None)
        backprojection.probe_real.assign(np.real(single).astype(np.float32))
        backprojection.probe_imag.assign(np.imag(single).astype(np.float32))
        x = keras.layers.Concatenate(name="encoder_input")([x, backprojection(normalised)])
    encoder_features = []
    for level in range(levels):
        filters = base * 2**level
        x = _conv(filters, f"enc{level}_conv_a", next(seeds))(x)
        x = _conv(filters, f"enc{level}_conv_b", next(seeds))(x)
        encoder_features.append(x)
        x = keras.layers.MaxPooling2D(2, name=f"enc{level}_pool")(x)
    bottleneck_filters = base * 2**levels
    x = _conv(bottleneck_filters, "bottleneck_conv_a", next(seeds))(x)
    features = _conv(bottleneck_filters, "bottleneck_conv_b", next(seeds))(x)

    def decoder(prefix: str) -> Any:
        y = features
        for level in range(ups):
            # the encoder's filters at this resolution, divided by the decoder divisor
            filters = max(base, bottleneck_filters // 2 ** (level + 1) // config.decoder_divisor)
            y = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"{prefix}_up{level}")(y)
            side = BOTTLENECK * 2 ** (level + 1)
            k = _skip_level(n, out_side, side, levels)
            if k is not None:
                crop = (n // 2**k - side) // 2
                cropped = keras.layers.Cropping2D(crop, name=f"{prefix}{level}_skip_crop")(
                    encoder_features[k]
                )
                y = keras.layers.Concatenate(name=f"{prefix}{level}_skip")([y, cropped])
            y = _conv(filters, f"{prefix}{level}_conv_a", next(seeds))(y)
            y = _conv(filters, f"{prefix}{level}_conv_b", next(seeds))(y)
        return y

    amp_head = keras.layers.Conv2D(
        channels,
        3,
        padding="same",
        kernel_initializer=keras.initializers.RandomNormal(stddev=1e-3, seed=next(seeds)),
        bias_initializer=keras.initializers.Constant(
            _inverse_activation(amp_level, config.amp_activation)
            if config.amp_init_from_probe
            else 0.0
        ),
        name="amp_head",
    )
    amp_features = decoder("dec" if config.shared_decoder else "amp_dec")
    phase_features = amp_features if config.shared_decoder else decoder("phase_dec")
    amp = keras.layers.Activation(config.amp_activation, name="amp_activation")(
        amp_head(amp_features)
    )
    phase_head = keras.layers.Conv2D(
        channels,
        3,
        padding="same",
        kernel_initializer=keras.initializers.RandomNormal(stddev=1e-3, seed=next(seeds)),
        bias_initializer="zeros",
        name="phase_head",
    )
    phase = ScaledTanh(name="phase_activation")(phase_head(phase_features))
    return amp, phase


def build_models(
    config: ModelConfig,
    probe: np.ndarray,
    intensity_scale: float,
    max_offset_px: float = 0.0,
    learning_rate: float = 1e-3,
    seed: int = 0,
    network: Network | None = None,
) -> ModelBundle:
    """Build the training and inference models for one configuration.

    Parameters
    ----------
    config : ModelConfig
    probe : ndarray, (N, N) or (K, N, N) complex
        Probe before normalisation (it is normalised here, physics.md section 2). A stack of
        ``K > 1`` incoherent modes makes a model whose predicted intensity is the sum over
        the modes (ordered strongest first here).
    intensity_scale : float
        ``s = sqrt(photons_per_pattern) / (N/2)`` of the data.
    max_offset_px : float
        Largest ``|r_c|`` component of the groups; sizes the overlap canvas (gridsize > 1).
    learning_rate : float
        Initial learning rate of the Adam optimiser the training model is compiled with.
    seed : int
        Seed of the weight initialisers.
    network : callable, optional
        Another encoder-decoder in place of the engine's (to compare network designs under
        the same physics, loss and training loop, as ``benchmarks/time_to_quality.py`` does):
        called once with the normalised patterns ``(B, N, N, C)``, it returns the object's
        amplitude and phase ``(B, n, n, C)`` after their activations (``n <= N``, zero-padded
        to N). The bundle keeps it, so that a rebuild (new probe, larger canvas) uses it too.

    Returns
    -------
    ModelBundle
    """
    n, channels = config.N, config.channels
    probe_arr = np.asarray(probe)
    if probe_arr.ndim not in (2, 3) or probe_arr.shape[-2:] != (n, n):
        raise ModelError(
            f"probe is {'x'.join(str(v) for v in probe_arr.shape)} but N is {n}: resample the "
            f"probe or choose N={probe_arr.shape[-1]} (a probe is (N, N) or (K, N, N) modes)"
        )
    if not (math.isfinite(intensity_scale) and intensity_scale > 0):
        raise ModelError(f"intensity_scale must be a finite number > 0, got {intensity_scale!r}")
    modes_n = normalised_modes(probe_arr, config.probe_scale)
    n_modes = int(modes_n.shape[0])
    probe_n = modes_n[0]
    amp_level = matched_amplitude(modes_n, config.pad_object, config.probe_mask)

    diffraction = keras.Input((n, n, channels), name="diffraction")
    offsets = keras.Input((channels, 2), name="offsets")
    scale_layer = IntensityScale(intensity_scale, name="intensity_scale")
    scale_layer.trainable = config.intensity_scale_trainable
    normalised = scale_layer(diffraction)
    # with the overlap constraint, patches reach the far field channel-first (FFT layout)
    farfield = FarField(
        n, config.probe_mask, config.probe_trainable, channels > 1, n_modes, name="farfield"
    )
    if network is None:
        amp, phase = _engine_network(config, normalised, modes_n, amp_level, seed)
    else:
        amp, phase = network(normalised)
    re, im = ComplexPatch(n, name="object_patch")([amp, phase])
    canvas = n
    if channels > 1:
        canvas = _canvas_size(n, max_offset_px)
        re, im = OverlapConstraint(n, canvas, config.pad_object, True, name="overlap")(
            [re, im, offsets]
        )
    predicted = scale_layer(farfield([re, im]), inverse=True)
    object_amp, object_phase = Magnitude(name="object")([re, im])
    if channels > 1:
        to_last = keras.layers.Permute((2, 3, 1), name="object_channels_last")
        object_amp, object_phase = to_last(object_amp), to_last(object_phase)

    training = keras.Model(
        [diffraction, offsets], predicted, name=f"pinn_train_N{n}_g{config.gridsize}"
    )
    inference = keras.Model(
        [diffraction, offsets],
        [object_amp, object_phase],
        name=f"pinn_infer_N{n}_g{config.gridsize}",
    )
    held = probe_n if n_modes == 1 else modes_n
    farfield.probe_real.assign(np.real(held).astype(np.float32))
    farfield.probe_imag.assign(np.imag(held).astype(np.float32))
    training.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate))

    def _predict(x: tf.Tensor, o: tf.Tensor) -> Any:
        return inference([x, o], training=False)

    return ModelBundle(
        training=training,
        inference=inference,
        config=config,
        probe=probe_n,
        probe_modes=modes_n,
        intensity_scale=float(intensity_scale),
        canvas=canvas,
        amp_init=_head_range(amp_level, config.amp_activation),
        max_offset_px=float(max_offset_px),
        seed=seed,
        predict_fn=tf.function(_predict, autograph=False),
        network=network,
    )


def rebuild_from(
    bundle: ModelBundle,
    probe: np.ndarray,
    intensity_scale: float,
    max_offset_px: float | None = None,
    learning_rate: float = 1e-3,
    config: ModelConfig | None = None,
) -> ModelBundle:
    """New models with another probe or intensity scale, starting from ``bundle``'s weights.

    The network weights are copied (a warm start: fine-tuning with the physics loss); the
    probe and the intensity scale are the new ones (the new probe may have another number of
    modes). ``config`` may change settings that leave the network's weights as they are (the
    probe scale); default ``bundle.config``. ``bundle`` itself is left unchanged.
    """
    new = build_models(
        bundle.config if config is None else config,
        probe,
        intensity_scale,
        max_offset_px=bundle.max_offset_px if max_offset_px is None else max_offset_px,
        learning_rate=learning_rate,
        seed=bundle.seed,
        network=bundle.network,
    )
    old_layers = {layer.name: layer for layer in bundle.training.layers}
    for layer in new.training.layers:
        if layer.name not in _PHYSICS_LAYERS and layer.weights:
            layer.set_weights(old_layers[layer.name].get_weights())
    return new


_PHYSICS_LAYERS = ("farfield", "backprojection", "intensity_scale")


def normalised_modes(probe: np.ndarray, probe_scale: float) -> np.ndarray:
    """The probe as the models hold it: normalised (physics.md section 2) and its modes
    ordered strongest first, ``(K, N, N)`` complex64."""
    return sort_modes(normalize_probe(probe_modes(probe), probe_scale))


def assign_physics(
    bundle: ModelBundle, probe: np.ndarray, intensity_scale: float, config: ModelConfig
) -> ModelBundle:
    """``bundle``'s models with another probe and intensity scale written into their physics
    layers in place: no rebuild, so the optimiser and the compiled steps stay as they are.

    One model then serves many datasets in turn (pretraining draws every batch from another
    scan of a pool). ``probe`` may have fewer modes than the model was built with: the
    missing modes are zero, which adds no intensity. ``config`` holds the probe scale of
    these data (the network must be ``bundle``'s). Returns the bundle that describes the
    new physics; the models are shared, so ``bundle`` itself no longer does.

    Raises
    ------
    ModelError
        A probe of another size or with more modes than the model holds, an intensity scale
        that is not a finite number > 0, or a model whose probe or scale is trainable (one
        optimiser would then train one value for every dataset).
    """
    if config.probe_trainable or config.intensity_scale_trainable:
        raise ModelError("assign_physics: the probe and the intensity scale must not be trainable")
    if not (math.isfinite(intensity_scale) and intensity_scale > 0):
        raise ModelError(f"intensity_scale must be a finite number > 0, got {intensity_scale!r}")
    layers = {layer.name: layer for layer in bundle.training.layers}
    farfield = layers["farfield"]
    modes_n = normalised_modes(probe, config.probe_scale)
    held = int(farfield.n_modes)
    n = bundle.config.N
    if modes_n.shape[1:] != (n, n) or modes_n.shape[0] > held:
        raise ModelError(
            f"assign_physics: a probe of {modes_n.shape[0]} mode(s) of "
            f"{modes_n.shape[1]}x{modes_n.shape[2]} does not fit a model of {held} mode(s) "
            f"of {n}x{n}"
        )
    padded = pad_modes(modes_n, held)
    value = padded[0] if held == 1 else padded
    farfield.probe_real.assign(np.real(value).astype(np.float32))
    farfield.probe_imag.assign(np.imag(value).astype(np.float32))
    if "backprojection" in layers:
        single = coherent_equivalent(modes_n)
        layers["backprojection"].probe_real.assign(np.real(single).astype(np.float32))
        layers["backprojection"].probe_imag.assign(np.imag(single).astype(np.float32))
    layers["intensity_scale"].log_scale.assign(math.log(intensity_scale))
    return dataclasses.replace(
        bundle,
        config=config,
        probe=modes_n[0],
        probe_modes=modes_n,
        intensity_scale=float(intensity_scale),
    )


def ensure_canvas(bundle: ModelBundle, max_offset_px: float) -> ModelBundle:
    """The bundle itself when its overlap canvas holds groups of ``max_offset_px``; otherwise
    a rebuilt bundle with a larger canvas and the same weights (the canvas has no weights)."""
    if bundle.config.channels == 1 or _canvas_size(bundle.config.N, max_offset_px) <= bundle.canvas:
        return bundle
    rebuilt = build_models(
        bundle.config,
        bundle.probe_modes,
        bundle.intensity_scale,
        max_offset_px=max_offset_px,
        seed=bundle.seed,
        network=bundle.network,
    )
    rebuilt.training.set_weights(bundle.training.get_weights())
    return rebuilt


def intensity_scale_for(photons_per_pattern: float, N: int) -> float:
    """``s = sqrt(photons_per_pattern) / (N/2)`` (physics.md section 3)."""
    if not (math.isfinite(photons_per_pattern) and photons_per_pattern > 0):
        raise ModelError(f"photons_per_pattern must be > 0, got {photons_per_pattern!r}")
    return math.sqrt(photons_per_pattern) / (N / 2)
