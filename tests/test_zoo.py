"""Every architecture id: built from its default config, one training step, prediction, safe-mode
reload with identical outputs and a named layer's embedding, on TensorFlow and on JAX and PyTorch
when they are installed; and the `tartarus architectures` table."""

import pytest

from tartarus.cli import main
from tartarus.config.families import PRETRAINED_IDS
from tartarus.models import ARCHITECTURES
from tartarus.pretrained import weights_installed
from tests.conftest import run_on_backend
from tests.zoo_check import check_architecture, expected

IDS = sorted(ARCHITECTURES, key=lambda i: (len(i), i))
# the pretrained architectures need the released weights (make pretrained)
BUILDABLE = [i for i in IDS if i not in PRETRAINED_IDS or weights_installed()]
NO_WEIGHTS = pytest.mark.skip(reason="musicnn weights not installed: make pretrained")


@pytest.mark.parametrize("arch_id", [pytest.param(i, marks=() if i in BUILDABLE else NO_WEIGHTS) for i in IDS])
def test_architecture_trains_predicts_reloads_and_embeds(arch_id, tmp_path):
    seen = check_architecture(arch_id, tmp_path)
    assert seen["reload_max_diff"] <= 1e-6, seen
    assert {k: seen[k] for k in expected(arch_id, "tensorflow")} == expected(arch_id, "tensorflow")


SCRIPT = r"""
import json, sys
from tests.zoo_check import check_architecture
for arch_id in sys.argv[2].split(","):
    print(json.dumps(check_architecture(arch_id, sys.argv[1])), flush=True)
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_every_architecture_on_other_backends(tmp_path, backend):
    seen = run_on_backend(backend, SCRIPT, tmp_path, ",".join(BUILDABLE), timeout=900)
    assert sorted(s["id"] for s in seen) == sorted(BUILDABLE)
    for s in seen:
        assert s["reload_max_diff"] <= 1e-5, s
        assert {k: s[k] for k in expected(s["id"], backend)} == expected(s["id"], backend)


def test_architectures_table_lists_every_id_and_its_layers(capsys):
    assert main(["architectures"]) == 0
    out = capsys.readouterr().out
    rows = [line.split()[0] for line in out.splitlines()[2:] if line.strip() and not line.strip().startswith(("-l", "parameters")) and line[:6].strip()]
    assert sorted(r for r in rows if r in ARCHITECTURES) == sorted(ARCHITECTURES)
    assert "9:logits" in out and "8:flat" in out  # architecture 1's seed indices
    assert main(["architectures", "51", "--no-layers"]) == 0
    single = capsys.readouterr().out
    assert "shufl" in single and "-l" not in single.replace("-l takes", "")


def test_forward_flops_by_hand():
    import keras
    from keras import layers

    from tartarus.models.catalog import forward_flops
    inp = keras.Input((10, 8, 1))
    x = layers.Conv2D(4, (3, 8))(inp)                     # out 8 x 1 x 4: 2*3*8*1*4 per position
    x = layers.Reshape((8, 4))(x)
    x = layers.GRU(5, return_sequences=False)(x)          # 8 steps: 2*3*(4+5)*5 per step
    out = layers.Dense(2)(x)                              # 2*5*2
    model = keras.Model(inp, out)
    assert forward_flops(model) == 2 * 3 * 8 * 4 * 8 + 2 * 3 * 9 * 5 * 8 + 2 * 5 * 2
