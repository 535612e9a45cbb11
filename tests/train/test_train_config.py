import pytest

from tasks.train.config import TrainConfig, TrainError, resolve_device


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "qlora"}, "train.method"),
        ({"device": "tpu"}, "train.device"),
        ({"precision": "fp8"}, "train.precision"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"per_device_batch_size": 0}, "per_device_batch_size"),
        ({"max_steps": -1, "num_train_epochs": 0}, "max_steps"),
        ({"warmup_ratio": 1.0}, "warmup_ratio"),
    ],
)
def test_bad_values_name_the_field(kwargs, message):
    with pytest.raises(TrainError, match=message):
        TrainConfig(**kwargs)


def test_from_dict_rejects_unknown_keys_and_lists_valid_ones():
    with pytest.raises(TrainError, match=r"unknown key\(s\) \['lr'\].*learning_rate"):
        TrainConfig.from_dict({"lr": 1e-3}, where="recipe.train")


def test_fingerprint_names_method_and_changes_with_any_knob():
    a, b = TrainConfig(), TrainConfig(learning_rate=2e-3)
    assert str(a).startswith("sft-full-") and str(TrainConfig(method="lora")).startswith("sft-lora-")
    assert str(a) == str(TrainConfig()) and str(a) != str(b)


def test_lora_targets_from_yaml_list_become_a_tuple():
    assert TrainConfig.from_dict({"lora_target_modules": ["q_proj"]}).lora_target_modules == ("q_proj",)


def test_cpu_resolves_to_fp32_and_cuda_without_gpu_is_an_error():
    import torch

    assert resolve_device(TrainConfig(device="cpu")) == ("cpu", "fp32")
    if not torch.cuda.is_available():
        with pytest.raises(TrainError, match="no CUDA device"):
            resolve_device(TrainConfig(device="cuda"))
