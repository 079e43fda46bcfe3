"""The Flax VGG19: layer names, shapes, parameter count, depth, pooling, preprocessing, the conv's VJP.

Shapes and structure are checked with ``jax.eval_shape``/``make_jaxpr`` (no compute); values use
small random params for the first layers only, so the file runs in a few seconds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import vgg, winograd


def abstract_params(layers=vgg.LAYER_NAMES) -> dict:
    shapes = vgg.param_shapes()
    return {
        "params": {
            name: {what: jax.ShapeDtypeStruct(shape, jnp.float32) for what, shape in shapes[name].items()}
            for name in layers
        }
    }


def random_params(layers, seed: int = 0) -> dict:
    """He-scaled random kernels and small biases for ``layers`` only."""
    rng = np.random.default_rng(seed)
    params = {}
    for name in layers:
        kernel_shape = vgg.param_shapes()[name]["kernel"]
        fan_in = 9 * kernel_shape[2]
        params[name] = {
            "kernel": jnp.asarray(rng.standard_normal(kernel_shape) * np.sqrt(2 / fan_in), jnp.float32),
            "bias": jnp.asarray(rng.standard_normal(kernel_shape[3]) * 0.1, jnp.float32),
        }
    return {"params": params}


def test_sixteen_layers_named_as_in_the_paper():
    assert vgg.LAYER_NAMES == (
        "conv1_1", "conv1_2",
        "conv2_1", "conv2_2",
        "conv3_1", "conv3_2", "conv3_3", "conv3_4",
        "conv4_1", "conv4_2", "conv4_3", "conv4_4",
        "conv5_1", "conv5_2", "conv5_3", "conv5_4",
    )  # fmt: skip


def test_param_count_is_vgg19s_convolutional_part():
    shapes = vgg.param_shapes()
    assert sum(int(np.prod(s)) for layer in shapes.values() for s in layer.values()) == 20_024_384
    initialized = jax.eval_shape(vgg.init_params, 0)["params"]
    assert {name: {w: tuple(a.shape) for w, a in layer.items()} for name, layer in initialized.items()} == shapes


def test_output_shapes_for_a_32px_input():
    x = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)
    out = jax.eval_shape(lambda p, x: vgg.features(p, x, vgg.LAYER_NAMES), abstract_params(), x)
    side = {1: 32, 2: 16, 3: 8, 4: 4, 5: 2}
    channels = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}
    assert list(out) == list(vgg.LAYER_NAMES)
    for name, activation in out.items():
        block = int(name[4])
        assert activation.shape == (2, side[block], side[block], channels[block]), name


def test_only_layers_up_to_the_deepest_asked_for_are_computed():
    x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
    up_to_conv2_1 = abstract_params(vgg.LAYER_NAMES[:3])  # params of deeper layers are not even needed
    jaxpr = jax.make_jaxpr(lambda p, x: vgg.features(p, x, ["conv1_1", "conv2_1"]))(up_to_conv2_1, x)
    assert str(jaxpr).count("conv_general_dilated") == 3
    full = str(jax.make_jaxpr(lambda p, x: vgg.features(p, x, ["conv5_4"]))(abstract_params(), x))
    assert full.count("conv_general_dilated") == 16


def test_max_and_average_pooling_differ_after_the_first_pool():
    params = random_params(vgg.LAYER_NAMES[:3])
    x = jnp.asarray(np.random.default_rng(1).uniform(size=(1, 16, 16, 3)), jnp.float32)
    by_max = vgg.features(params, x, ["conv1_2", "conv2_1"], pooling="max")
    by_mean = vgg.features(params, x, ["conv1_2", "conv2_1"], pooling="average")
    np.testing.assert_array_equal(by_max["conv1_2"], by_mean["conv1_2"])
    assert not np.allclose(by_max["conv2_1"], by_mean["conv2_1"])


def test_unknown_layer_or_pooling_is_refused():
    params = random_params(vgg.LAYER_NAMES[:1])
    x = jnp.zeros((1, 8, 8, 3))
    with pytest.raises(ValueError, match="conv6_1"):
        vgg.features(params, x, ["conv6_1"])
    with pytest.raises(ValueError, match="median"):
        vgg.features(params, x, ["conv1_1"], pooling="median")


def test_preprocess_gives_caffe_bgr_with_the_imagenet_mean_removed():
    red = jnp.array([[[[1.0, 0.0, 0.0]]]])
    np.testing.assert_allclose(vgg.preprocess(red)[0, 0, 0], [-103.939, -116.779, 255.0 - 123.68], rtol=1e-6)


def test_conv3x3_gradient_equals_autodiff_of_lax_conv():
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.standard_normal((2, 9, 7, 5)), jnp.float32)
    kernel = jnp.asarray(rng.standard_normal((3, 3, 5, 4)), jnp.float32)
    weight = jnp.asarray(rng.standard_normal((2, 9, 7, 4)), jnp.float32)

    def plain(x, k):
        return jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def loss(conv):
        return lambda x, k: jnp.sum(conv(x, k) * weight)

    np.testing.assert_allclose(vgg.conv3x3(x, kernel), plain(x, kernel), rtol=1e-5, atol=1e-5)
    got = jax.grad(loss(vgg.conv3x3), argnums=(0, 1))(x, kernel)
    want = jax.grad(loss(plain), argnums=(0, 1))(x, kernel)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)
    # The same inside a loop, where the custom form matters for speed.
    step = jax.jit(lambda x: jax.lax.fori_loop(0, 2, lambda _, y: y - 0.1 * jax.grad(loss(vgg.conv3x3))(y, kernel), x))
    step_plain = jax.jit(lambda x: jax.lax.fori_loop(0, 2, lambda _, y: y - 0.1 * jax.grad(loss(plain))(y, kernel), x))
    np.testing.assert_allclose(step(x), step_plain(x), rtol=1e-4, atol=1e-4)


def test_winograd_conv_equals_the_direct_conv_and_its_gradient():
    rng = np.random.default_rng(3)
    # Odd sizes: the last tile row and column are partly padding.
    x = jnp.asarray(rng.standard_normal((2, 9, 7, 6)), jnp.float32)
    kernel = jnp.asarray(rng.standard_normal((3, 3, 6, 5)), jnp.float32)
    weight = jnp.asarray(rng.standard_normal((2, 9, 7, 5)), jnp.float32)
    fast = (winograd.winograd_kernel(kernel), winograd.winograd_kernel(vgg.backward_kernel(kernel)))

    def plain(x, k):
        return jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    np.testing.assert_allclose(winograd.winograd_conv3x3(x, fast[0]), plain(x, kernel), rtol=1e-5, atol=1e-4)
    got = jax.grad(lambda x, k: jnp.sum(vgg.conv3x3(x, k, winograd=fast) * weight), argnums=(0, 1))(x, kernel)
    want = jax.grad(lambda x, k: jnp.sum(plain(x, k) * weight), argnums=(0, 1))(x, kernel)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)


def test_winograd_runs_the_deep_layers_of_small_images_only():
    assert winograd.uses_winograd((1, 48, 64, 256), (3, 3, 256, 256))
    assert not winograd.uses_winograd((1, 48, 64, 64), (3, 3, 64, 128))  # too few channels
    assert not winograd.uses_winograd((1, 192, 256, 256), (3, 3, 256, 256))  # too many pixels


def test_features_with_winograd_kernels_match_and_use_them():
    layers = vgg.LAYER_NAMES[: vgg.LAYER_NAMES.index("conv3_1") + 1]
    params = random_params(layers)
    x = jnp.asarray(np.random.default_rng(4).uniform(size=(1, 48, 64, 3)), jnp.float32)
    plain = vgg.with_backward_kernels(params)
    fast = vgg.with_backward_kernels(params, winograd=True)
    assert set(fast["winograd"]) == {"conv2_2", "conv3_1"}  # ≥ 128 channels in and out

    def loss(p, x):
        return sum(jnp.mean(f**2) for f in vgg.features(p, x, ["conv2_1", "conv3_1"]).values())

    want, got = vgg.features(plain, x, ["conv3_1"]), vgg.features(fast, x, ["conv3_1"])
    np.testing.assert_allclose(got["conv3_1"], want["conv3_1"], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(jax.grad(loss, 1)(fast, x), jax.grad(loss, 1)(plain, x), rtol=1e-3, atol=1e-4)

    def direct_convs(p):
        return str(jax.make_jaxpr(lambda p, x: vgg.features(p, x, ["conv3_1"]))(p, x)).count("conv_general_dilated")

    assert direct_convs(fast) == 5 - 2  # conv1_1, conv1_2, conv2_1 direct; conv2_2 and conv3_1 as Winograd
    assert direct_convs(vgg.without_winograd(fast)) == 5  # for one-off forward passes: every conv direct again
