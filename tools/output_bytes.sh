#!/usr/bin/env bash
# Writes the outputs of the light commands on generated test data into OUT, so that two
# commits can be compared byte for byte (`diff -r`): evaluate (several option sets and
# layouts), compare, rank, regress, leaderboard. Used by the refactor of issue 20:
#   tools/output_bytes.sh /tmp/before   (on the old commit)
#   tools/output_bytes.sh /tmp/after    (on the new one)
#   diff -r /tmp/before/out /tmp/after/out
# Run-dependent fields (times, versions, host) are removed by tools/output_bytes_norm.py
# before the diff; everything else must be equal.
set -euo pipefail
OUT=${1:?usage: tools/output_bytes.sh OUT}
rm -rf "$OUT"; mkdir -p "$OUT/data" "$OUT/out"
D=$OUT/data; O=$OUT/out
E="e2net-eval"
$E datasets phantom "$D/lits" --cases 6 --seed 3 --size 96 --slices 20 32 >/dev/null
$E datasets phantom "$D/msd" --layout msd --cases 3 --seed 5 --size 64 --slices 16 24 >/dev/null
$E datasets phantom "$D/ircadb" --layout ircadb --cases 2 --seed 7 --size 64 --slices 16 20 >/dev/null
python3 - "$D" <<'PY'
import sys, pathlib, numpy as np, nibabel as nib
from scipy import ndimage
root = pathlib.Path(sys.argv[1])
def perturb(lab, k):
    rng = np.random.default_rng(k)
    out = lab.copy()
    out[ndimage.binary_erosion(lab > 0, iterations=1 + k % 2)] = out[ndimage.binary_erosion(lab > 0, iterations=1 + k % 2)]
    out = np.roll(out, shift=(k % 3) - 1, axis=0)
    flip = rng.random(out.shape) < 0.002
    out[flip] = rng.integers(0, 3, flip.sum())
    return out.astype(np.uint8)
for name, pat in (("lits", "segmentation-*.nii*"), ("msd", "labelsTr/liver_*.nii*")):
    pred = root / f"pred_{name}"; pred.mkdir()
    for k, f in enumerate(sorted(root.glob(f"{name}/{pat}"))):
        img = nib.load(str(f)); lab = np.asarray(img.dataobj)
        if name == "lits" and k == 5:
            continue  # one missing prediction (--allow-missing)
        cid = f.name.split(".")[0].split("-")[-1].split("_")[-1]
        nib.save(nib.Nifti1Image(perturb(lab, k), img.affine), str(pred / f"{cid}.nii.gz"))
PY
python3 - "$D" <<'PY'
import sys, pathlib, numpy as np, nibabel as nib
from e2net_eval.data.dataset import open_dataset
root = pathlib.Path(sys.argv[1]); out = root / "pred_ircadb"; out.mkdir()
ds = open_dataset(root / "ircadb")
for k, cid in enumerate(ds.case_ids()):
    case = ds.load(cid)
    lab = np.roll(case.label, 1 + k, axis=1).astype(np.uint8)
    nib.save(nib.Nifti1Image(lab, case.affine), str(out / f"{cid}.nii.gz"))
PY
mkdir -p "$D/pred_lits_b"; for f in "$D"/pred_lits/*.nii.gz; do cp "$f" "$D/pred_lits_b/"; done
python3 - "$D" <<'PY'
import sys, pathlib, numpy as np, nibabel as nib
from scipy import ndimage
for f in sorted(pathlib.Path(sys.argv[1], "pred_lits_b").glob("*.nii.gz")):
    img = nib.load(str(f)); lab = np.asarray(img.dataobj)
    lab = np.where(ndimage.binary_dilation(lab == 2), 2, lab).astype(np.uint8)
    nib.save(nib.Nifti1Image(lab, img.affine), str(f))
PY
run() { local name=$1; shift; { "$@"; echo "exit=$?"; } >"$O/$name.stdout" 2>"$O/$name.stderr" || echo "exit=$?" >>"$O/$name.stdout"; }
run eval_a $E evaluate "$D/pred_lits" "$D/lits" -o "$O/eval_a" --allow-missing --no-progress --protocol "test set A"
run eval_b $E evaluate "$D/pred_lits_b" "$D/lits" -o "$O/eval_b" --allow-missing --no-progress --connectivity 1 --lesion-connectivity 26 --nsd-tolerance 1.5 -j 2
run eval_c $E evaluate "$D/pred_lits" "$D/lits" -o "$O/eval_c" --allow-missing --no-progress --no-peer-metrics --case 0 --case 2
run eval_msd $E evaluate "$D/pred_msd" "$D/msd" -o "$O/eval_msd" --no-progress
run eval_missing $E evaluate "$D/pred_lits" "$D/lits" -o "$O/eval_missing" --no-progress
run eval_ircadb $E evaluate "$D/pred_ircadb" "$D/ircadb" -o "$O/eval_ircadb" --no-progress --allow-affine-mismatch
run compare $E compare "A=$O/eval_a" "B=$O/eval_b" -o "$O/compare"
run compare_mixed $E compare --allow-mixed "A=$O/eval_a" "B=$O/eval_b" "C=$O/eval_c" -o "$O/compare_mixed"
run rank $E rank "A=$O/eval_a" "B=$O/eval_b" -o "$O/rank"
run rank_mixed $E rank --allow-mixed "A=$O/eval_a" "B=$O/eval_b" -o "$O/rank_mixed"
run regress_ab $E regress "$O/eval_b" "$O/eval_a"
run regress_ab_mixed $E regress --allow-mixed "$O/eval_b" "$O/eval_a"
run regress_aa $E regress "$O/eval_a" "$O/eval_a"
run compare_base $E compare --baseline baseline $(for c in stage1 baseline edge dist edge_dcff dist_dcff; do echo "$c=leaderboards/phantom-baseline/eval/lits_val/$c"; done) -o "$O/compare_base"
run rank_base $E rank $(for c in baseline edge dist edge_dcff dist_dcff; do echo "$c=leaderboards/phantom-baseline/eval/lits_val/$c"; done) -o "$O/rank_base"
run regress_base $E regress leaderboards/phantom-baseline leaderboards/phantom-baseline
run leaderboard $E leaderboard
run report_base $E report leaderboards/phantom-baseline -o "$O/report_baseline"
python3 "$(dirname "$0")/output_bytes_norm.py" "$O"
