"""The networks: shapes at every image size, conditions, initialisation, shape traces."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.tensors import one_hot, soft_condition
from course_utils.models import (
    ConditionedConv2d,
    Discriminator,
    Encoder,
    Generator,
    init_dcgan_weights,
    shape_trace,
)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("image_size", [32, 64, 128])
def test_shapes_at_every_image_size(image_size):
    generator = Generator(z_dim=16, n_classes=3, image_size=image_size, width=4)
    discriminator = Discriminator(n_classes=3, image_size=image_size, width=4)
    encoder = Encoder(z_dim=16, image_size=image_size, width=4)
    condition = one_hot(torch.tensor([0, 1, 2]), 3)
    images = generator(torch.randn(3, 16), condition)
    assert images.shape == (3, 3, image_size, image_size)
    assert images.min() >= -1 and images.max() <= 1
    assert discriminator(images, condition).shape == (3,)
    assert encoder(images).shape == (3, 16)


def test_generator_layout_follows_dcgan():
    generator = Generator(z_dim=100, n_classes=2, image_size=64, width=32)
    convs = [m for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert convs[0].in_channels == 102 and convs[0].out_channels == 32 * 8
    assert (convs[0].kernel_size, convs[0].stride, convs[0].padding) == ((4, 4), (1, 1), (0, 0))
    assert all(c.stride == (2, 2) for c in convs[1:])
    assert convs[-1].out_channels == 3
    assert isinstance(list(generator.modules())[-1], nn.Tanh)
    batch_norms = [m for m in generator.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(batch_norms) == len(convs) - 1  # no BatchNorm on the output layer


def test_soft_condition_works_and_lies_between_groups():
    generator = Generator(z_dim=8, n_classes=2, image_size=32, width=4).eval()
    discriminator = Discriminator(n_classes=2, image_size=32, width=4).eval()
    z = torch.randn(1, 8)
    young, old = (generator(z, soft_condition(p, 2)[None]) for p in (0.0, 1.0))
    middle = generator(z, soft_condition(0.5, 2)[None])
    assert torch.isfinite(middle).all()
    assert not torch.equal(middle, young) and not torch.equal(middle, old)
    assert torch.isfinite(discriminator(middle, soft_condition(0.5, 2)[None])).all()


def test_conditioned_conv_equals_conv_over_appended_label_maps():
    layer = ConditionedConv2d(6, 3, 8, 4, 2, 1)
    features = torch.randn(5, 6, 16, 16)
    condition = torch.rand(5, 3)  # soft, not one-hot
    maps = condition[:, :, None, None].expand(-1, -1, 16, 16)
    expected = F.conv2d(torch.cat([features, maps], 1), layer.weight, None, 2, 1)
    torch.testing.assert_close(layer(features, condition), expected, rtol=1e-5, atol=1e-5)


def test_discriminator_output_depends_on_condition():
    discriminator = Discriminator(n_classes=2, image_size=32, width=4).eval()
    images = torch.randn(2, 3, 32, 32)
    young = discriminator(images, one_hot(torch.tensor([0, 0]), 2))
    old = discriminator(images, one_hot(torch.tensor([1, 1]), 2))
    assert not torch.allclose(young, old)


@torch.no_grad()
def test_dcgan_initialisation_statistics():
    generator = Generator(100, 2, width=32)
    conv_weights = torch.cat([m.weight.flatten() for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)])
    assert abs(conv_weights.mean()) < 1e-3
    assert float(conv_weights.std()) == pytest.approx(0.02, rel=0.02)
    bn_weights = torch.cat([m.weight for m in generator.modules() if isinstance(m, nn.BatchNorm2d)])
    assert float(bn_weights.mean()) == pytest.approx(1.0, abs=0.005)
    assert float(bn_weights.std()) == pytest.approx(0.02, rel=0.15)
    assert all(torch.all(m.bias == 0) for m in generator.modules() if isinstance(m, nn.BatchNorm2d))


def test_init_dcgan_weights_resets_a_module():
    layer = nn.Linear(500, 400)
    init_dcgan_weights(layer)
    assert float(layer.weight.detach().std()) == pytest.approx(0.02, rel=0.02)
    assert torch.all(layer.bias == 0)


def test_widths_are_balanced():
    generator = Generator(100, 2, width=32)
    discriminator = Discriminator(2, width=32)
    last_g = [m for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)][-1]
    first_d = discriminator.stem[0]
    assert last_g.in_channels == first_d.out_channels == 32


def test_encoder_ends_without_activation():
    encoder = Encoder(z_dim=10, image_size=32, width=4)
    last = list(encoder.modules())[-1]
    assert isinstance(last, nn.Linear) and last.out_features == 10
    convs = [m for m in encoder.modules() if isinstance(m, nn.Conv2d)]
    assert all((c.kernel_size, c.stride, c.padding) == ((5, 5), (2, 2), (2, 2)) for c in convs)
    with torch.no_grad():
        last.bias.fill_(-3.0)  # an unbounded output can go far below -1
    assert encoder.eval()(torch.randn(2, 3, 32, 32)).max() < -1


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="image_size"):
        Generator(100, 2, image_size=48)
    generator = Generator(z_dim=8, n_classes=2, image_size=32, width=4)
    with pytest.raises(ValueError, match="condition"):
        generator(torch.randn(2, 8), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="z must"):
        generator(torch.randn(2, 9), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="images must"):
        Discriminator(n_classes=2, image_size=32, width=4)(torch.randn(2, 3, 64, 64), torch.zeros(2, 2))


def test_shape_trace_lists_layers_and_leaves_statistics_alone():
    discriminator = Discriminator(n_classes=2, image_size=32, width=4)
    running_mean = discriminator.net[0].running_mean.clone()
    table = shape_trace(discriminator, torch.randn(2, 3, 32, 32), torch.eye(2))
    assert list(table.columns) == ["layer", "type", "output shape", "parameters"]
    assert table["parameters"].sum() == sum(p.numel() for p in discriminator.parameters())
    assert table.iloc[-1]["output shape"] == (2, 1, 1, 1)
    assert "ConditionedConv2d" in set(table["type"])
    assert discriminator.training
    assert torch.equal(discriminator.net[0].running_mean, running_mean)
