#!/usr/bin/env bash
# How the shipped models were built: the build script on a GPU machine (students on its CPU),
# with a few alternative settings next to the defaults (the sweep in toyworld/README.md).
# Usage: OUT=/some/dir bash toyworld/gpu_sweep.sh   (writes $OUT/models.tgz and $OUT/log.txt)
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
L=/tmp/logs; mkdir -p $L
python3 -c "import torch, transformers, tokenizers; print(torch.__version__, transformers.__version__, tokenizers.__version__, torch.cuda.is_available())"
nproc
BUDGET_S=${BUDGET_S:-460}; END=$((SECONDS + BUDGET_S))  # everything stops by then; what is done still comes back
G="timeout $((BUDGET_S - 15)) python3 -m toyworld.build --device cuda --threads 2"
C="timeout $((BUDGET_S - 15)) python3 -m toyworld.build --device cpu --threads 2"
W=/tmp/w; mkdir -p $W/main $W/s200 $W/s800 $W/s4l $W/tb192
$G --only teacher-a --models-dir $W/main > $L/teacher-a.log 2>&1 & PA=$!
$G --only teacher-b --models-dir $W/main > $L/teacher-b.log 2>&1 &
$G --only teacher-b --size 192,3,384 --models-dir $W/tb192 > $L/teacher-b-192.log 2>&1 &
$C --only student --models-dir $W/main > $L/student.log 2>&1 & P1=$!
$C --only student --steps 200 --models-dir $W/s200 > $L/student-200.log 2>&1 & P2=$!
$C --only student --steps 800 --models-dir $W/s800 > $L/student-800.log 2>&1 & P3=$!
$C --only student --size 128,4,256 --models-dir $W/s4l > $L/student-4l.log 2>&1 & P4=$!
wait $PA $P1 $P2 $P3 $P4
for d in s200 s800 s4l; do cp -r $W/main/teacher-a $W/$d/; done
for d in main s200 s800 s4l; do timeout $((END - SECONDS)) python3 -m toyworld.build --device cuda --threads 2 --only sft-curve --models-dir $W/$d > $L/sft-$d.log 2>&1 & done
wait
for f in $L/*.log; do echo "=== $f"; grep -v -i warn $f | tail -25; done > $OUT/log.txt 2>&1
tar czf $OUT/models.tgz -C $W/main .  # the result files must stay under 16 MB
cat $OUT/log.txt | grep -E "^===|\[(teacher|student|sft|build)" | cut -c1-400
