"""The downstream benchmark's arms and table: every control the same size as what pairstream delivered, copies
made of the delivered anchors, the gate-off arm on the same anchors first; and a whole quick run (two small
real datasets standing for the gate-on and gate-off generations, few steps, 100 held-out pairs) prints every
arm for both students with the share of the way from copies to gold."""

from streams.training import downstream
from streams.training.stsb import read_pairs, split
from support.training import STSB_TRAIN, gold_dataset


def test_every_arm_has_as_many_rows_as_pairstream_delivered(tmp_path):
    gate = gold_dataset(tmp_path / "gate", rows=40)
    off = gold_dataset(tmp_path / "off", rows=60)
    arms = downstream.arm_data(split(read_pairs(STSB_TRAIN)), gate, off)
    n = len(arms["pairstream"])
    assert {name: len(d) for name, d in arms.items()} == {"pairstream": n, "copies": n, "gold": n, "gate off": n}
    assert arms["copies"]["anchor"] == arms["copies"]["positive"] == arms["pairstream"]["anchor"]
    assert set(arms["gate off"]["anchor"]) == set(arms["pairstream"]["anchor"])  # the same anchors first


def test_a_quick_run_reports_every_arm_for_both_students(tmp_path):
    gate = gold_dataset(tmp_path / "gate", rows=40)
    off = gold_dataset(tmp_path / "off", rows=40)
    result = downstream.run(40, tmp_path, seeds=(1,), epochs=1, batch_size=16, gate_dir=gate, off_dir=off,
                            log=lambda line: None, train_tsv=STSB_TRAIN, max_eval_pairs=100)
    assert {(r.student, r.arm) for r in result.results} == {
        (s.name, arm) for s in downstream.STUDENTS for arm in downstream.ARMS}
    text = "\n".join(downstream.table(result))
    placed = text.count("of the way from copies to gold") + text.count("copies and gold tie")
    assert placed == 2 and "gate off" in text
    weak = downstream.STUDENTS[1].name  # the student that moves with a few rows
    assert result.mean(weak, "base", "spearman")[0] != result.mean(weak, "gold", "spearman")[0]
