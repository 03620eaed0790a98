"""The scale benchmark's guards: a child past its memory cap is killed and reported, growth is a power law."""

from __future__ import annotations

import json
import sys

import pytest

from bench._scale_measure import growth_exponent, predict, run_capped

MIB = 1024**2
ALLOCATE = "import json, sys, time; block = bytearray({size}); block[::4096] = b'x' * len(block[::4096]); time.sleep({sleep}); open(sys.argv[1], 'w').write(json.dumps({{'done': True}}))"


def test_a_child_past_its_memory_cap_is_killed_and_reported_as_such(tmp_path):
    report = tmp_path / "report.json"
    result = run_capped([sys.executable, "-c", ALLOCATE.format(size=400 * MIB, sleep=30), str(report)], cap_bytes=150 * MIB, report_path=report)
    assert result.killed_at_cap and result.returncode != 0 and result.seconds < 30  # killed, not finished
    assert result.report == {}  # it never got to write its report


def test_a_child_under_its_cap_finishes_with_its_report_cpu_time_and_peak(tmp_path):
    report = tmp_path / "report.json"
    result = run_capped([sys.executable, "-c", ALLOCATE.format(size=60 * MIB, sleep=0.5), str(report)], cap_bytes=1024 * MIB, report_path=report)
    assert not result.killed_at_cap and result.returncode == 0
    assert result.report == {"done": True} == json.loads(report.read_text())
    assert 60 * MIB <= result.peak_rss < 1024 * MIB and result.cpu_seconds > 0


def test_growth_exponent_is_one_for_linear_growth_and_prediction_follows_the_two_largest_sizes():
    assert growth_exponent(1e6, 10.0, 2e6, 20.0) == pytest.approx(1.0)
    assert growth_exponent(1e6, 10.0, 2e6, 40.0) == pytest.approx(2.0)
    assert predict([1e6, 2e6, 4e6], [5.0, 10.0, 40.0], 8e6) == pytest.approx(160.0)  # b = 2 from the last two
    assert predict([1e6], [3.0], 20e6) == pytest.approx(60.0)  # one size: linear
    assert growth_exponent(1e6, 0.0, 2e6, 1.0) is None
