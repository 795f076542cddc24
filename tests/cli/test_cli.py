"""Command line: bad input gives one `siamese-bench: error:` line and exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from siamese_bench.cli import main
from siamese_bench.data import DATASETS
from siamese_bench.models.heads import HEADS
from siamese_bench.models.losses import LOSSES


def run(capsys, *args):
    code = main(["train", "--no-progress", *args])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("siamese-bench: error:")
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("option,registry", [("--head", HEADS), ("--loss", LOSSES), ("--dataset", DATASETS)])
def test_unknown_name(capsys, option, registry):
    code, out, err = run(capsys, option, "no-such-name")
    assert code == 2 and out == ""
    line = one_error_line(err)
    assert "no-such-name" in line
    for name in registry.names():
        assert name in line


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--head", "euclidean", "--loss", "bce"], "abs-diff-dense"),
        (["--margin", "0"], "--margin"),
        (["--epochs", "0"], "--epochs"),
        (["--lr", "-1"], "--lr"),
        (["-E", "foo=1"], "'foo'"),
        (["-E", "dropout"], "KEY=VALUE"),
    ],
)
def test_bad_values(capsys, args, needle):
    code, out, err = run(capsys, *args)
    assert code == 2
    assert needle in one_error_line(err)


def test_unwritable_tracking_location(capsys, tmp_path):
    blocker = tmp_path / "a-regular-file"
    blocker.write_text("not a directory")
    uri = f"sqlite:///{blocker}/x.db"
    code, out, err = run(capsys, "--dataset", "digits", "--epochs", "1", "--tracking-uri", uri)
    assert code == 2
    line = one_error_line(err)
    assert uri in line
    assert not (tmp_path / "mlartifacts").exists()


def test_help_lists_heads(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    out = "".join(capsys.readouterr().out.split())  # argparse wraps lines, even at hyphens
    assert "--head" in out
    for name in HEADS.names():
        assert name in out


def test_missing_command_is_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2


@pytest.mark.slow  # a fresh interpreter importing torch: ~7 s on 2 cores
def test_subprocess_bad_head_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "siamese_bench", "train", "--head", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "siamese-bench: error:" in proc.stderr and "euclidean" in proc.stderr
    assert not (tmp_path / "mlruns.db").exists()


def test_bad_encoder_option_value(capsys):
    try:
        code = main(
            [
                "train",
                "--no-progress",
                "--no-track",
                "--dataset",
                "digits",
                "--epochs",
                "1",
                "-E",
                "final_activation=bogus",
            ]
        )
    except ValueError as err:
        pytest.fail(f"uncaught {err!r}")
    err = capsys.readouterr().err
    assert code == 2
    assert "bogus" in one_error_line(err)


@pytest.mark.parametrize(
    ("argv", "usage", "near"),
    [
        (["train", "--heads", "x"], "usage: siamese-bench train", "(did you mean --head?)"),
        (["docs", "--chek"], "usage: siamese-bench docs", "(did you mean --check?)"),
    ],
)
def test_an_unknown_option_is_refused_in_the_subcommands_usage_with_the_nearest(capsys, argv, usage, near):
    with pytest.raises(SystemExit) as err:
        main(argv)
    text = capsys.readouterr().err
    assert err.value.code == 2 and text.startswith(usage) and near in text.splitlines()[-1], text


def test_info_lines_only_with_verbose_except_a_sweeps_own():
    import logging

    from siamese_bench.cli import quiet_libraries

    root = logging.getLogger("siamese_bench")
    saved = {n: logging.getLogger(n).level for n in ("siamese_bench", "siamese_bench.sweep")}
    try:
        quiet_libraries(verbose=False, command="report")
        assert not logging.getLogger("siamese_bench.training.run").isEnabledFor(logging.INFO)
        assert logging.getLogger("siamese_bench.data.images").isEnabledFor(logging.WARNING)
        assert logging.getLogger("siamese_bench.sweep.runner").isEnabledFor(logging.INFO)  # its progress lines
        root.setLevel(logging.NOTSET)
        logging.getLogger("siamese_bench.sweep").setLevel(logging.NOTSET)
        quiet_libraries(verbose=True, command="report")
        assert logging.getLogger("siamese_bench.training.run").isEnabledFor(logging.INFO)
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
