import pytest

from noiseda.config import config_from_dict, load_config
from noiseda.errors import NoisedaError


def test_packaged_configs_load():
    for name in ("denoise", "derain", "deblur", "tiny-cpu", "demo"):
        cfg = load_config(name)
        assert cfg.method.name == "noise-da"
    assert load_config("derain").data.value_range == [-1.0, 1.0]
    assert load_config("derain").train.lr == 5e-5
    assert load_config("denoise").train.lr == 1e-4


def test_overrides_are_typed():
    cfg = load_config("tiny-cpu", ["train.steps=12", "train.lr=1e-3", "method.options.noise-da.t_range=[5,50]", "data.real=/x"])
    assert cfg.train.steps == 12 and cfg.train.lr == 1e-3
    assert cfg.method.options["noise-da"]["t_range"] == [5, 50] and cfg.data.real == ["/x"]


def test_each_method_records_its_own_options_in_full():
    cfg = load_config("tiny-cpu", ["method.name=ne2ne", "method.options.ne2ne.gamma=3"])
    assert cfg.method.options == {"ne2ne": {"gamma": 3.0, "gamma_ramp": True}}  # typed, no other method's
    assert load_config("tiny-cpu", ["method.name=vanilla"]).method.options == {"vanilla": {}}
    with pytest.raises(NoisedaError, match=r"unknown config key 'method.options.ne2ne.t_range'"):
        load_config("tiny-cpu", ["method.name=ne2ne", "method.options.ne2ne.t_range=[1,2]"])
    with pytest.raises(NoisedaError, match=r"method.options.noise_da: unknown method .*did you mean 'noise-da'"):
        load_config("tiny-cpu", ["method.options.noise_da.t_range=[1,2]"])
    # a config may switch methods: another method's options are kept (checked), not used
    switched = load_config("denoise", ["method.name=vanilla"])
    assert switched.method.options["noise-da"]["t_range"] == [1, 999] and switched.method.options["vanilla"] == {}


def test_configs_of_earlier_versions_still_load():
    """A run's config.yaml from before per-method options: flat method keys move into the
    options of the method that has them; those of other methods (which did nothing) are dropped."""
    flat = {"name": "noise-da", "t_range": [1, 500], "margin": 0.2, "features": [], "ne2ne_gamma": 2.0,
            "mask_ratio": [0.75, 0.85], "lambda_weight": 0.1}
    cfg = config_from_dict({"method": flat, "data": {"cache": False}, "train": {"mixed_precision": False}})
    assert cfg.method.options["noise-da"]["t_range"] == [1, 500] and cfg.method.options["noise-da"]["margin"] == 0.2
    assert set(cfg.method.options) == {"noise-da"} and cfg.method.lambda_weight == 0.1
    assert cfg.data.cache == "none" and cfg.train.mixed_precision == "no"
    old_ne2ne = config_from_dict({"method": {**flat, "name": "ne2ne", "ne2ne_gamma": 1.5}})
    assert old_ne2ne.method.options == {"ne2ne": {"gamma": 1.5, "gamma_ramp": False}}  # it ran without the ramp


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.stpes=3", "did you mean 'steps'"),
        ("train.steps=abc", "train.steps: expected int"),
        ("train.steps=1.5", "train.steps: expected int"),
        ("method.options.noise-da.channel_shuffle=maybe", "expected bool"),
        ("method.options.noise-da.t_range=[0,1000]", "method.options.noise-da.t_range"),
        ("method.options.noise-da.condition=real", "channel_shuffle=false"),
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
