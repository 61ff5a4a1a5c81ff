"""The pipeline with THREE age groups, end to end, with no code change: the count comes from the data."""
import torch

from course_utils import course
from course_utils.aging import age_face
from course_utils.train_encoder import train_encoder
from course_utils.train_gan import train_gan
from course_utils.widgets import AgeSliderApp

GROUPS = ((18, 25), (35, 45), (60, 70))


def test_three_age_groups_from_cache_to_slider(face_cache_factory, one_thread, tmp_path):
    faces = face_cache_factory(GROUPS)
    cpu = torch.device("cpu")
    gan_config = course.gan_config(faces, cpu, z_dim=8, width=4, batch_size=8, steps=3, sample_every=3,
                                   log_every=1, n_sample_noise=2, threads=1)
    assert (gan_config.n_classes, gan_config.image_size) == (3, 32)
    gan = train_gan(faces.images, faces.labels, gan_config, tmp_path, progress=False, device="cpu")
    assert gan.generator.n_classes == 3

    encoder_config = course.encoder_config(gan.generator, cpu, width=4, hidden=16, batch_size=8, steps=3,
                                           eval_every=3, eval_pairs=16, log_every=1, threads=1)
    assert encoder_config.n_classes == 3
    encoder = train_encoder(gan.generator, encoder_config, tmp_path, progress=False, device="cpu").encoder

    aged = age_face(faces.images[0], 2, gan.generator, encoder, source=0, refine_steps=2)
    between = age_face(faces.images[0], 1.5, gan.generator, encoder, source=0, refine_steps=2)
    assert aged.aged.shape == between.aged.shape == (32, 32, 3)

    means = course.group_means(faces)
    assert means.shape == (3, 3, 32, 32)
    app = AgeSliderApp(gan.generator, encoder, faces.images[:3], faces.labels[:3], faces.age_groups,
                       refine_steps=1, display_size=32, group_means=means)
    first = app.image.value
    app.slider.value = app.slider.max  # the oldest of the three groups
    assert app.last_result.target == 2.0
    assert app.image.value != first
