"""C4's pre-encoded vector pairs: the CSV reader's errors, the generator, training on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from siamese_bench.cli import main
from siamese_bench.core.config import ConfigError, TrainConfig
from siamese_bench.data import CSVFormatError, PairedData, load_dataset
from siamese_bench.data.make_pairs import C4_TEST, C4_TRAIN, make_pairs_csv
from siamese_bench.data.vectors import read_pairs_csv
from siamese_bench.training.build import check_config
from siamese_bench.training.run import run_training

HEADER = "v0,v1,v2,v3,class"
GOOD = [HEADER, "0.1,0.2,0.3,0.4,1.0", "1,2,3,4,0", "5,6,7,8,1"]


def write(tmp_path: Path, lines: list[str], name: str = "pairs.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_reads_left_and_right_halves(tmp_path):
    table = read_pairs_csv(write(tmp_path, GOOD))
    np.testing.assert_allclose(table.left.numpy(), [[0.1, 0.2], [1, 2], [5, 6]], rtol=1e-6)
    np.testing.assert_allclose(table.right.numpy(), [[0.3, 0.4], [3, 4], [7, 8]], rtol=1e-6)
    assert table.y.tolist() == [1.0, 0.0, 1.0]


def test_class_column_may_stand_anywhere(tmp_path):
    table = read_pairs_csv(write(tmp_path, ["class,v0,v1", "1,0.5,0.25", "0,1,2"]))
    assert table.left.tolist() == [[0.5], [1.0]] and table.y.tolist() == [1.0, 0.0]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "empty file"),
        (["v0,v1,v2,v3", "1,2,3,4"], "no 'class' column"),
        (["v0,v1,class,class", "1,2,1,1"], "more than one 'class' column"),
        (["v0,v1,v2,v3,class,extra", "1,2,3,4,1,9"], "line 1, column 6: unexpected column 'extra'"),
        (["v0,v1,v2,class", "1,2,3,1", "1,2,3,0"], "odd number of vector columns (3)"),
        (["v0,v2,v1,v3,class", "1,2,3,4,1"], "line 1, column 2: header 'v2' where 'v1' was expected"),
        ([HEADER], "no data rows"),
        ([HEADER, "1,2,3,4,1", "1,2,3,4"], "line 3: 4 fields, the header has 5"),
        ([HEADER, "1,2,3,4,1", "1,,3,4,0"], "line 3, column 2 ('v1'): empty cell"),
        ([HEADER, "1,2,3,4,1", "1,abc,3,4,0"], "line 3, column 2 ('v1'): not a number: 'abc'"),
        ([HEADER, "1,2,nan,4,1", "1,2,3,4,0"], "line 2, column 3 ('v2'): nan is not a finite number"),
        ([HEADER, "1,2,3,inf,1", "1,2,3,4,0"], "line 2, column 4 ('v3'): inf is not a finite number"),
        ([HEADER, "1,2,3,4,1", "1,2,3,4,2"], "line 3, column 5 ('class'): label 2 is neither 1"),
        ([HEADER, "1,2,3,4,1", "1,2,3,4,1"], "every row has class 1"),
    ],
)
def test_bad_files_name_file_line_and_column(tmp_path, lines, message):
    path = write(tmp_path, lines)
    with pytest.raises(CSVFormatError) as err:
        read_pairs_csv(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_missing_file_and_mismatched_test_file(tmp_path):
    with pytest.raises(CSVFormatError, match="no such file"):
        read_pairs_csv(tmp_path / "nope.csv")
    train = write(tmp_path, GOOD, "train.csv")
    test = write(tmp_path, ["v0,v1,class", "1,2,1", "3,4,0"], "test.csv")
    with pytest.raises(CSVFormatError, match="vectors of 1 values, but .* has 2"):
        load_dataset(f"csv:{train},{test}")


def test_cli_reports_bad_csv_in_one_line_and_trains_nothing(tmp_path, capsys):
    train = write(tmp_path, [HEADER, "1,2,3,4,1", "1,x,3,4,0"], "train.csv")
    test = write(tmp_path, GOOD, "test.csv")
    assert main(["train", "--dataset", f"csv:{train},{test}", "--no-track", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("siamese-bench: error:") and "line 3, column 2" in err[0]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"dataset": "csv"}, "expected --dataset csv:TRAIN.csv,TEST.csv"),
        ({"dataset": "digits:x"}, "expected --dataset digits"),
        ({"dataset": "csv:a.csv,b.csv", "loss": "triplet"}, "needs class labels"),
    ],
)
def test_config_errors_for_pair_datasets(changes, message):
    with pytest.raises(ConfigError, match=message):
        check_config(TrainConfig(**changes))


@pytest.fixture(scope="module")
def c4_files(tmp_path_factory):
    return make_pairs_csv("digits", tmp_path_factory.mktemp("c4") / "pairs", dims=16, seed=0)


def test_make_pairs_csv_has_c4_shape(c4_files):
    train, test = (read_pairs_csv(p) for p in c4_files)
    for table, (same, diff) in ((train, C4_TRAIN), (test, C4_TEST)):
        assert len(table.y) == same + diff
        assert int(table.y.sum()) == same
        assert table.left.shape == table.right.shape == (same + diff, 16)
    header = c4_files[0].read_text().splitlines()[0].split(",")
    assert header == [f"v{i}" for i in range(32)] + ["class"]
    again = make_pairs_csv("digits", c4_files[0].parent / "again", dims=16, seed=0)
    assert again[0].read_text() == c4_files[0].read_text()  # the seed fixes the file


def test_make_pairs_csv_rejects_too_many_dims(tmp_path):
    with pytest.raises(ConfigError, match="--dims 500"):
        make_pairs_csv("digits", tmp_path / "p", dims=500)


@pytest.mark.slow
def test_training_on_pairs_csv_learns(c4_files):
    data = load_dataset(f"csv:{c4_files[0]},{c4_files[1]}")
    assert isinstance(data, PairedData) and data.input_shape == (16,)
    cfg = check_config(TrainConfig(dataset=f"csv:{c4_files[0]},{c4_files[1]}", epochs=8, val_fraction=0.5))
    result = run_training(cfg, data=data, progress=False)
    assert result.metrics["test/auc"] > 0.75  # digit pairs through PCA are far from chance
    assert np.isfinite(result.metrics["val/acc"])
