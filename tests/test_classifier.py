"""The age classifier and its logistic baseline on a tiny synthetic two-group dataset."""
import numpy as np
import pytest
import torch

from course_utils.classifier import (
    AgeClassifier,
    LogisticBaseline,
    balanced_accuracy,
    balanced_class_weights,
    evaluate_classifier,
    group_recalls,
    load_classifier,
    predict_groups,
    save_classifier,
    train_classifier,
)
from course_utils.tensors import to_model_range

SIZE = 32


def banded_faces(n: int, seed: int, old_fraction: float = 0.35):
    """Noisy images; group 1 ("old") has a grey top band, group 0 a dark coloured one."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < old_fraction).astype(np.int64)
    images = rng.uniform(0, 255, size=(n, SIZE, SIZE, 3))
    band = np.where(labels[:, None] == 1, rng.uniform(170, 220, (n, 1)).repeat(3, 1),
                    rng.uniform(10, 110, (n, 3)))
    images[:, :6] = band[:, None, None, :]
    images += rng.normal(0, 20, images.shape)
    return images.clip(0, 255).astype(np.uint8), labels


@pytest.fixture(scope="module")
def data():
    train_images, train_labels = banded_faces(480, seed=1)
    val_images, val_labels = banded_faces(200, seed=2)
    return train_images, train_labels, val_images, val_labels


def small_cnn(seed: int = 0) -> AgeClassifier:
    torch.manual_seed(seed)
    return AgeClassifier(n_classes=2, image_size=SIZE, width=8)


def test_cnn_learns_the_age_cue(data):
    torch.set_num_threads(1)
    model, history = train_classifier(small_cnn(), *data, epochs=4, batch_size=64, lr=3e-3,
                                      progress=False)
    assert list(history.columns[:4]) == ["epoch", "train_loss", "train_acc", "val_acc"]
    assert history["epoch"].tolist() == [1, 2, 3, 4]
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert history["val_acc"].iloc[-1] > 0.95
    assert history["val_balanced_acc"].iloc[-1] > 0.95
    assert not model.training
    _, _, val_images, val_labels = data
    assert evaluate_classifier(model, val_images, val_labels)["accuracy"] == pytest.approx(history["val_acc"].iloc[-1])


def test_logistic_baseline_learns_a_linear_cue(data):
    torch.manual_seed(0)
    model = LogisticBaseline(n_classes=2, image_size=SIZE, pooled_size=8)
    model, history = train_classifier(model, *data, epochs=6, batch_size=64, lr=1e-2,
                                      progress=False)
    assert history["val_balanced_acc"].iloc[-1] > 0.9
    # The standardiser's running statistics are the training pixels' mean, not the init 0.
    train_mean = to_model_range(data[0]).mean().item()
    assert model.standardise.running_mean.mean().item() == pytest.approx(train_mean, abs=0.05)


def test_training_is_deterministic_and_leaves_the_caller_rng_alone(data):
    train_images, train_labels, _, _ = data
    subset = slice(0, 160)

    def train(seed):
        model, history = train_classifier(small_cnn(), train_images[subset], train_labels[subset],
                                          epochs=2, batch_size=32, seed=seed, progress=False)
        return model.state_dict(), history

    torch.manual_seed(123)
    first, first_history = train(seed=0)
    after_training = torch.rand(1)
    torch.manual_seed(123)
    second, second_history = train(seed=0)
    assert torch.equal(torch.rand(1), after_training)  # caller's RNG stream unaffected
    other, _ = train(seed=1)
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert first_history.equals(second_history)
    assert not all(torch.equal(first[key], other[key]) for key in first)


def test_balanced_accuracy_ignores_the_majority_group():
    labels = [0, 0, 0, 0, 1, 1]
    assert balanced_accuracy(labels, [0, 0, 0, 0, 0, 1]) == pytest.approx((1.0 + 0.5) / 2)
    assert balanced_accuracy(labels, [0] * 6) == pytest.approx(0.5)  # plain accuracy: 4/6
    assert balanced_accuracy(labels, labels) == 1.0
    np.testing.assert_allclose(group_recalls([0, 0, 1], [0, 1, 1], n_classes=3), [0.5, 1.0, np.nan])
    with pytest.raises(ValueError, match="differ in length"):
        balanced_accuracy([0, 1], [0])


def test_balanced_class_weights_equalise_the_groups():
    weights = balanced_class_weights(torch.tensor([0, 0, 0, 1]), n_classes=2)
    torch.testing.assert_close(weights, torch.tensor([4 / 6, 2.0]))
    counts = torch.tensor([3.0, 1.0])
    assert (weights * counts)[0] == pytest.approx((weights * counts)[1])
    with pytest.raises(ValueError, match="no examples of group"):
        balanced_class_weights([0, 0, 0], n_classes=2)


def test_predictions_accept_uint8_faces_and_float_tensors(data):
    model = small_cnn()
    model.train()
    images = data[2][:20]
    groups = predict_groups(model, images, batch_size=7)
    assert groups.shape == (20,)
    assert torch.equal(groups, predict_groups(model, to_model_range(images)))
    with torch.no_grad():
        assert torch.equal(groups, model.eval()(to_model_range(images)).argmax(1))
    model.train()
    assert model.training  # evaluation restores the mode it found
    scores = evaluate_classifier(model, images, data[3][:20])
    assert set(scores) == {"accuracy", "balanced_accuracy", "group_recall"}


def test_bad_inputs_raise_clear_errors(data):
    model = small_cnn()
    with pytest.raises(ValueError, match=r"shape \(N, 3, 32, 32\)"):
        model(torch.zeros(2, 3, 64, 64))
    with pytest.raises(ValueError, match="uint8 faces"):
        train_classifier(model, to_model_range(data[0][:8]), data[1][:8], progress=False)
    with pytest.raises(ValueError, match="labels"):
        train_classifier(model, data[0][:8], data[1][:7], progress=False)
    with pytest.raises(ValueError, match="multiple of 16"):
        AgeClassifier(2, image_size=40)


@pytest.mark.parametrize("architecture", [AgeClassifier, LogisticBaseline])
def test_save_and_load_round_trip(tmp_path, data, architecture):
    torch.manual_seed(0)
    model = small_cnn() if architecture is AgeClassifier else LogisticBaseline(2, image_size=SIZE)
    model, history = train_classifier(model, data[0][:64], data[1][:64], data[2][:32], data[3][:32],
                                      epochs=1, batch_size=32, progress=False)
    path = save_classifier(model, tmp_path / "classifier.pt", history=history)
    loaded, loaded_history = load_classifier(path, return_history=True)
    assert type(loaded) is architecture and not loaded.training
    assert loaded.config() == model.config()
    assert all(torch.equal(value, loaded.state_dict()[key]) for key, value in model.state_dict().items())
    assert torch.equal(predict_groups(loaded, data[2]), predict_groups(model, data[2]))
    assert loaded_history.equals(history)
    assert load_classifier(path).config() == model.config()


def test_load_classifier_defaults_to_the_run_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("FACE_AGING_HOME", str(tmp_path))
    model = small_cnn()
    path = save_classifier(model)
    assert path == tmp_path / "runs" / "mini-wiki" / "classifier.pt"
    assert load_classifier().config() == model.config()
