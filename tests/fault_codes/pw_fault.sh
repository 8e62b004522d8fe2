#!/bin/bash
# A stand-in pw.x for tests/test_faults.py: real pw.x for every candidate, except those containing an element named
# in NANOOS_FAULTS ("Ge=crash C=no_convergence ..."; the code's prepend_text sets it), which get that fault:
#   crash           runs pw.x, writes the first half of its output and dies with SIGSEGV
#   no_convergence  runs pw.x with electron_maxstep = 1 (it cannot reach self-consistency)
#   full_disk       stages the run into the scratch NANOOS_SCRATCH (a full tmpfs) first, as HPC jobs do
#   walltime        sleeps until the scheduler kills it
#   cancel          writes SLURM_JOB_ID to $NANOOS_FAULT_LOG/cancel, then sleeps until someone cancels it
# aiida-quantumespresso calls it as `pw.x -in aiida.in > aiida.out`.
set -u
PW=${NANOOS_REAL_PW:-/usr/bin/pw.x}
input="${@: -1}"
species=$(awk '/^ATOMIC_SPECIES/{on=1; next} on && (NF < 3) {exit} on {print $1}' "$input")
fault=""
for rule in ${NANOOS_FAULTS:-}; do
    if grep -qx "${rule%%=*}" <<< "$species"; then fault=${rule#*=}; fi
done
case "$fault" in
    crash)
        "$PW" "$@" > full.out 2> /dev/null
        head -c $(( $(wc -c < full.out) / 2 )) full.out
        rm -f full.out
        kill -SEGV $$
        ;;
    no_convergence)
        sed -i -e '/electron_maxstep/d' -e 's/^&ELECTRONS/&\n  electron_maxstep = 1/' "$input"
        exec "$PW" "$@"
        ;;
    full_disk)
        scratch="$NANOOS_SCRATCH/run-$$"
        mkdir -p "$scratch" && cp -r . "$scratch"/ || exit 1
        cd "$scratch" && exec "$PW" "$@"
        ;;
    walltime)
        sleep 3600
        ;;
    cancel)
        echo "${SLURM_JOB_ID:-none}" >> "$NANOOS_FAULT_LOG/cancel"
        sleep 3600
        ;;
    *)
        exec "$PW" "$@"
        ;;
esac
