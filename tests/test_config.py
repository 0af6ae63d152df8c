import pytest

from noiseda.config import load_config
from noiseda.errors import NoisedaError


def test_packaged_configs_load():
    for name in ("denoise", "derain", "deblur", "tiny-cpu", "demo"):
        cfg = load_config(name)
        assert cfg.method.name == "noise-da"
    assert load_config("derain").data.value_range == [-1.0, 1.0]
    assert load_config("derain").train.lr == 5e-5
    assert load_config("denoise").train.lr == 1e-4


def test_overrides_are_typed():
    cfg = load_config("tiny-cpu", ["train.steps=12", "train.lr=1e-3", "method.options.t_range=[5,50]", "data.real=/x"])
    assert cfg.train.steps == 12 and cfg.train.lr == 1e-3
    assert cfg.method.t_range == [5, 50] and cfg.data.real == ["/x"]


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.stpes=3", "did you mean 'steps'"),
        ("train.steps=abc", "train.steps: expected int"),
        ("train.steps=1.5", "train.steps: expected int"),
        ("method.options.channel_shuffle=maybe", "expected bool"),
        ("method.options.t_range=[0,1000]", "method.options.t_range"),
        ("method.options.condition=real", "channel_shuffle=false"),
        ("nope.x=1", "unknown config key 'nope'"),
    ],
)
def test_bad_values_name_the_key(override, message):
    with pytest.raises(NoisedaError, match=message.replace("[", r"\[")):
        load_config("tiny-cpu", [override])


def test_data_cache_modes_and_the_old_boolean_values():
    assert load_config(None, ["data.cache=disk"]).data.cache == "disk"
    # configs saved by earlier versions (a run's config.yaml) said true/false
    assert load_config(None, ["data.cache=true"]).data.cache == "memory"
    assert load_config(None, ["data.cache=false"]).data.cache == "none"
    with pytest.raises(NoisedaError, match=r"data.cache: expected memory\|disk\|none, got .disc."):
        load_config(None, ["data.cache=disc"])


def test_a_bare_no_means_fp32_for_mixed_precision():
    # YAML 1.1 reads `no` as false; the README's `--set train.mixed_precision=no` must still mean fp32.
    assert load_config(None, ["train.mixed_precision=no"]).train.mixed_precision == "no"
    with pytest.raises(NoisedaError, match="train.channels_last: expected bool"):
        load_config(None, ["train.channels_last=maybe"])
