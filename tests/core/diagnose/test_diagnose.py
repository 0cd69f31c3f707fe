"""gradcourse.core.diagnose.diagnose: one network per symptom, a healthy one, any model, and the model left untouched."""

import pytest
import torch
import torch.nn.functional as F
import torchvision
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import gradcourse
from gradcourse import ProgressBar
from gradcourse.core.diagnose.report import Report
from gradcourse.core.diagnose.symptoms import THRESHOLDS
from helpers import FAST


def _mlp(**kwargs):
    gradcourse.set_seed(0)
    return gradcourse.MLP(**kwargs)


def _sgd(model, lr=0.01):
    return torch.optim.SGD(model.parameters(), lr=lr)


def _dead_mlp():
    model = _mlp(depth=5, activation="relu", init="kaiming")
    with torch.no_grad():
        model.blocks[2].linear.bias.sub_(3.0)  # most of layer 3's units negative on every digit
    return model


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_untouched(model, before, X, output_before):
    after = model.state_dict()
    assert set(after) == set(before) and all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())
    torch.manual_seed(1)
    output = model(X)
    output = output[0] if isinstance(output, tuple) else output
    assert torch.equal(output.detach(), output_before)


CASES = {
    "healthy": (lambda: _mlp(depth=5, activation="relu", init="kaiming"), 0.01, []),
    "vanishing": (lambda: _mlp(depth=20, activation="sigmoid"), None, ["vanishing gradients"]),
    "exploding": (lambda: _mlp(depth=20, activation="relu", init="kaiming", init_scale=1.5), None, ["exploding gradients"]),
    "non-finite": (lambda: _mlp(depth=40, activation="relu", init="kaiming", init_scale=10.0), 0.01, ["non-finite loss"]),
    "saturated": (lambda: _mlp(depth=3, activation="tanh", init="normal", init_scale=1.0), None, ["saturated units"]),
    "dead": (_dead_mlp, None, ["dead units"]),
    "too slow": (lambda: _mlp(depth=5, activation="relu", init="kaiming"), 1e-6, ["updates too small"]),
    "too fast": (lambda: _mlp(depth=5, activation="relu", init="kaiming"), 10.0, ["updates too large"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_network_gets_exactly_its_symptoms(case, mnist_small):
    build, lr, expected = CASES[case]
    model = build()
    report = gradcourse.diagnose(model, *mnist_small, optimizer=None if lr is None else _sgd(model, lr))
    assert report.symptom_names == expected
    assert report.healthy == (expected == [])
    text = str(report)
    if expected:
        for symptom in report.symptoms:
            assert symptom.name.upper() in text and symptom.remedies and symptom.causes
            assert all(notebook.split("_")[0].isdigit() for _, notebook in symptom.remedies)
    else:
        assert "No symptom found" in text


def test_nonfinite_loss_names_the_layer(mnist_small):
    report = gradcourse.diagnose(CASES["non-finite"][0](), *mnist_small)
    assert report.symptoms[0].layers and report.symptoms[0].layers[0].startswith("hidden layer")


def test_report_is_plain_data(mnist_small):
    report = gradcourse.diagnose(_mlp(depth=20, activation="sigmoid"), *mnist_small)
    data = report.as_dict()
    assert isinstance(data, dict) and data["symptoms"][0]["name"] == "vanishing gradients"
    assert len(data["grad_norms"]) == len(data["layer_names"]) == 20
    assert data["update_ratios"] is None
    assert isinstance(report, Report)


def test_thresholds_can_be_overridden(mnist_small):
    model = _mlp(depth=5, activation="relu", init="default")
    assert gradcourse.diagnose(model, *mnist_small).healthy
    strict = gradcourse.diagnose(model, *mnist_small, thresholds={"vanishing_ratio": 10.0})
    assert strict.symptom_names == ["vanishing gradients"]


@pytest.mark.parametrize("kind", ["resnet18", "transformer", "lstm"])
def test_any_model_is_diagnosed_and_left_untouched(kind):
    torch.manual_seed(0)
    kwargs = {}
    if kind == "resnet18":
        model, X, y = torchvision.models.resnet18(weights=None, num_classes=10), torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
        model.eval()  # so that the output comparison does not depend on the batch statistics
    elif kind == "transformer":
        layer = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, batch_first=True, dropout=0.0)
        model, X, y = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False), torch.randn(4, 10, 16), torch.randn(4, 10, 16)
        kwargs["loss_fn"] = "mse"
    else:
        model, X, y = nn.LSTM(3, 8, num_layers=2, batch_first=True), torch.randn(5, 7, 3), torch.randn(5)
        kwargs["compute_loss"] = lambda m, X, y: F.mse_loss(m(X)[0][:, -1, 0], y)
    before = _state(model)
    torch.manual_seed(1)
    output = model(X)
    output_before = (output[0] if isinstance(output, tuple) else output).detach()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    report = gradcourse.diagnose(model, X, y, optimizer=optimizer, **kwargs)
    expected_layers = sum(1 for m in model.modules() if any(True for _ in m.parameters(recurse=False)))
    assert len(report.layer_names) == len(report.grad_norms) == len(report.update_ratios) == expected_layers
    assert all(g > 0 for g in report.grad_norms)
    assert not optimizer.state  # the learner's optimizer did not step either
    _assert_untouched(model, before, X, output_before)
    if kind == "transformer":
        assert any("as functions" in note for note in report.notes)


def test_batchnorm_statistics_of_a_training_model_stay_put(mnist_small):
    model = _mlp(depth=3, activation="relu", init="kaiming", norm="batch")
    before = _state(model)
    gradcourse.diagnose(model, *mnist_small, optimizer=_sgd(model))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_optimizer_state_is_carried_over(mnist_small):
    model = _mlp(depth=3, activation="relu", init="kaiming")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for _ in range(3):
        optimizer.zero_grad()
        F.cross_entropy(model(mnist_small[0]), mnist_small[1]).backward()
        optimizer.step()
    model.zero_grad(set_to_none=True)
    with_state = gradcourse.diagnose(model, *mnist_small, optimizer=optimizer).update_ratios
    fresh = gradcourse.diagnose(model, *mnist_small, optimizer=torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)).update_ratios
    assert with_state != fresh  # the momentum buffers moved the step


def test_bad_arguments(mnist_small, raises_bad):
    X, y = mnist_small
    model = _mlp(depth=2)
    with raises_bad("model", "mlp"):
        gradcourse.diagnose("mlp", X, y)
    with raises_bad("optimizer", "adam"):
        gradcourse.diagnose(model, X, y, optimizer="adam")
    with raises_bad("thresholds key", "vanish"):
        gradcourse.diagnose(model, X, y, thresholds={"vanish": 1.0})
    with raises_bad("thresholds['dead_share']", -1):
        gradcourse.diagnose(model, X, y, thresholds={"dead_share": -1})
    with pytest.raises(ValueError, match="not the model's"):
        gradcourse.diagnose(model, X, y, optimizer=torch.optim.SGD(_mlp(depth=2).parameters(), lr=0.1))
    with pytest.raises(ValueError, match="y has 3"):
        gradcourse.diagnose(model, X, y[:3])
    assert set(THRESHOLDS) >= {"vanishing_ratio", "dead_share"}


@FAST
@given(st.floats(min_value=-1e6, max_value=1e6).filter(lambda v: not 0 < v <= 1))
def test_diagnose_thresholds_must_be_positive(value):
    X, y = torch.randn(8, 4), torch.zeros(8, dtype=torch.long)
    model = gradcourse.MLP(in_features=4, depth=1)
    if value <= 0:
        with pytest.raises(ValueError, match="thresholds\\['dead_share'\\]"):
            gradcourse.diagnose(model, X, y, thresholds={"dead_share": value})
    else:
        # a share is at most 1, so a threshold at or above 1 can never be crossed
        report = gradcourse.diagnose(model, X, y, thresholds={"dead_share": value})
        assert len(report.dead) == len(report.activation_names) and all(0 <= d <= 1 for d in report.dead)
        assert "dead units" not in report.symptom_names


def test_diagnose_leaves_torchs_random_generator_as_it_was():
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(16, 3))
    X, y = torch.randn(32, 4), torch.arange(32) % 3
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    gradcourse.diagnose(model, X, y)   # dropout in train mode draws from the generator
    assert torch.equal(torch.rand(3), expected)


def test_a_forward_hook_that_is_part_of_the_model_is_kept_in_the_diagnosis():
    gradcourse.set_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    model[2].register_forward_hook(lambda module, inputs, output: output * 1e6)
    X, y = torch.randn(16, 4), torch.arange(16) % 3
    real = F.cross_entropy(model(X), y).item()
    assert gradcourse.diagnose(model, X, y).loss == pytest.approx(real, rel=1e-5)


def test_an_active_monitor_of_the_model_does_not_record_the_diagnosis():
    gradcourse.set_seed(0)
    model = gradcourse.MLP(in_features=4, width=8, depth=2, out_features=3)
    X, y = torch.randn(16, 4), torch.arange(16) % 3
    with gradcourse.GradientMonitor(model) as monitor:
        gradcourse.diagnose(model, X, y)
    assert monitor.steps("grad_norm") == 0


def test_a_model_that_cannot_be_copied_is_diagnosed_in_place_and_left_as_it_was():
    from torch.nn.utils import prune

    gradcourse.set_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    prune.l1_unstructured(model[0], "weight", 0.5)      # deepcopy now fails inside torch
    X, y = torch.randn(16, 4), torch.arange(16) % 3
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = gradcourse.diagnose(model, X, y, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    assert report.update_ratios is not None and len(report.grad_norms) == 3
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert all(p.grad is None for p in model.parameters()) and model.training
    assert not model._forward_hooks and not model[0]._forward_hooks


def test_fit_stops_cleanly_on_a_model_that_cannot_be_copied(capsys):
    from torch.nn.utils import prune

    gradcourse.set_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    prune.l1_unstructured(model[0], "weight", 0.5)
    with torch.no_grad():
        model[2].weight.fill_(1e38)                      # the output layer overflows to inf
    X, y = torch.randn(16, 4) * 10, torch.arange(16) % 3
    history = gradcourse.fit(model, X, y, epochs=1, batch_size=8, lr=0.1, callbacks=[ProgressBar(show=False)])
    assert history.diverged and history.stop_layer == "2" and "Training stopped at step 1" in capsys.readouterr().out


# --- zero gradients, layers no gradient reaches, relative thresholds, labels ------------------------

def test_exactly_zero_gradients_are_reported_as_vanishing(mnist_small):
    from gradcourse.lessons.initialization import constant_init_

    zeros = constant_init_(_mlp(depth=4, width=32, activation="sigmoid"), 0.0)   # W_out = 0 passes back W^T delta = 0
    report = gradcourse.diagnose(zeros, *mnist_small, optimizer=_sgd(zeros))
    assert report.grad_norms == [0.0] * 4 and report.symptom_names == ["vanishing gradients"]
    assert report.symptoms[0].layers == report.layer_names and "exactly 0 at 4 of 4 layers" in str(report)
    # only the last layer's gradient is 0 (its ReLUs are dead; the skips carry the rest): the first/last ratio is undefined
    skipped = _mlp(depth=4, width=32, activation="relu", init="kaiming", residual=True)
    with torch.no_grad():
        skipped.blocks[-1].linear.bias.fill_(-100.0)
    report = gradcourse.diagnose(skipped, *mnist_small)
    assert report.grad_norms[0] > 0 and report.grad_norms[-1] == 0
    assert report.symptom_names == ["vanishing gradients", "dead units"]
    assert report.symptoms[0].layers == [report.layer_names[-1]]


class _WithUnusedHead(nn.Module):
    """A deep sigmoid MLP and a head that forward never calls."""

    def __init__(self):
        super().__init__()
        self.body = _mlp(depth=20, activation="sigmoid")
        self.head = nn.Linear(10, 10)

    def forward(self, x):
        return self.body(x)


class _NaNGradient(nn.Module):
    """sqrt(z - z) is 0 in the forward pass; its derivative 1 / (2 sqrt(0)) makes branch's gradient NaN."""

    def __init__(self):
        super().__init__()
        gradcourse.set_seed(0)
        self.trunk, self.branch, self.head = nn.Linear(784, 10), nn.Linear(784, 10), nn.Linear(784, 10)

    def forward(self, x):
        z = self.branch(x)
        return self.trunk(x) + torch.sqrt(z - z)


def test_a_layer_without_gradient_is_not_a_nan_gradient(mnist_small):
    model = _WithUnusedHead()
    report = gradcourse.diagnose(model, *mnist_small, optimizer=_sgd(model))
    assert report.symptom_names == ["no gradient", "vanishing gradients", "updates too small"]
    assert report.symptoms[0].layers == ["head"] and ".grad is None" in str(report)
    assert all("head" not in s.layers for s in report.symptoms[1:])   # the other checks ran without it
    assert all(p.grad is None for p in model.parameters())
    # a real NaN gradient is still one, and the head without a gradient is told apart from it
    report = gradcourse.diagnose(_NaNGradient(), *mnist_small)
    assert report.symptom_names == ["no gradient", "non-finite gradients"]
    assert report.symptoms[0].layers == ["head"] and report.symptoms[1].layers == ["branch"]


def test_a_model_diagnosed_in_place_ignores_the_gradients_it_already_holds(mnist_small):
    from torch.nn.utils import prune

    model = _WithUnusedHead()
    prune.l1_unstructured(model.body.output, "weight", 0.5)          # cannot be deep-copied: diagnosed in place
    X, y = mnist_small
    fresh = gradcourse.diagnose(model, X, y)
    F.cross_entropy(model(X) + model.head(model(X)), y).backward()  # a stale .grad everywhere, the head's too
    stale = gradcourse.diagnose(model, X, y)
    assert stale.grad_norms[:-1] == fresh.grad_norms[:-1] and stale.symptom_names == fresh.symptom_names
    assert model.head.weight.grad is not None                         # and the stale gradients are put back


def test_exploding_is_measured_against_the_layers_own_weights(mnist_small):
    from gradcourse.core.layers import layer_weights

    model = CASES["exploding"][0]()
    report = gradcourse.diagnose(model, *mnist_small)
    weights = [layer_weights(dict(model.named_modules())[n]) for n in report.layer_names]
    expected = [g / torch.cat([w.detach().flatten() for w in ws]).double().norm().item()
                for g, ws in zip(report.grad_norms, weights)]
    assert report.grad_weight_ratios == pytest.approx(expected, rel=1e-5)
    largest = max(report.grad_weight_ratios)
    line = str(report).splitlines()[1]
    assert f"largest {largest:.1e}" in line and "[threshold: ||dL/dW|| / ||W|| > 100]" in line
    assert gradcourse.diagnose(model, *mnist_small, thresholds={"exploding_grad_weight_ratio": 1.01 * largest}).healthy
    healthy = CASES["healthy"][0]()
    assert gradcourse.diagnose(healthy, *mnist_small).healthy
    strict = gradcourse.diagnose(healthy, *mnist_small, thresholds={"exploding_grad_weight_ratio": 0.01})
    assert strict.symptom_names == ["exploding gradients"]


def test_threshold_and_label_mistakes_are_value_errors(mnist_small):
    X, y = mnist_small
    model = _mlp(depth=2)
    with pytest.raises(ValueError, match="thresholds key='exploding_norm' is not allowed; choose one of: .*'exploding_grad_weight_ratio'"):
        gradcourse.diagnose(model, X, y, thresholds={"exploding_norm": 1e3})
    with pytest.raises(ValueError, match=r"thresholds=\[0\.001\] is not allowed; it must be a dict .*'vanishing_ratio'"):
        gradcourse.diagnose(model, X, y, thresholds=[1e-3])
    ten = y.clone()
    ten[7] = 10
    with pytest.raises(ValueError, match="y=<tensor shape=\\(256,\\) dtype=torch.int64> is not allowed: it holds the label 10, "
                                         "and the model's 10 outputs allow the labels 0 to 9"):
        gradcourse.diagnose(model, X, ten)
    with pytest.raises(ValueError, match=r"y=<tensor shape=\(256,\) dtype=torch.int32> is not allowed; .*y\.long\(\) converts"):
        gradcourse.diagnose(model, X, y.int())
    ignored = y.clone()
    ignored[0] = -100                                   # cross-entropy's ignore_index is a label it allows
    assert gradcourse.diagnose(model, X, ignored).loss == pytest.approx(F.cross_entropy(model(X), ignored).item(), rel=1e-5)
