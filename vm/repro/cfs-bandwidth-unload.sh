#!/bin/sh
# Reproduces a Linux 7.3 kernel crash that is not scx_slo's (docs/kernel-issues.md): a cgroup
# whose tasks were throttled by cpu.max under the fair class, cpu.max changed while a sched_ext
# scheduler is attached, tasks of that cgroup still running when the scheduler is unloaded ->
# WARNING in throttle_cfs_rq_work / dequeue_task_fair, then a divide error in the fair class.
# scx_slo is loaded with --no-enforce-cpu-max: its own cpu.max code plays no part.
# Run it in the VM; the guest dies within a cycle or two (with the default quiet console it just
# stops answering until the harness's time limit; loglevel=7 shows the warnings and the oops):
#   make build && node dist/vm/cli.js --timeout 120 --kernel-arg loglevel=7 -- sh vm/repro/cfs-bandwidth-unload.sh
set -u
L="$(pwd)/build/scx-slo-loader"
CG=/sys/fs/cgroup
echo "+cpu" > $CG/cgroup.subtree_control
mkdir -p $CG/lim
cd /tmp
spin() { sh -c 'echo $$ > /sys/fs/cgroup/lim/cgroup.procs; exec sh -c "while :; do :; done"' & }
echo "20000 100000" > $CG/lim/cpu.max
spin
spin
sleep 2 # throttled by the fair class
for i in 1 2 3 4 5; do
	$L load --no-enforce-cpu-max > /dev/null
	sleep 2
	echo "10000 100000" > $CG/lim/cpu.max
	sleep 2
	echo "20000 100000" > $CG/lim/cpu.max
	stress-ng -q --cpu 4 --timeout 3 &
	sleep 3
	echo "max 100000" > $CG/lim/cpu.max
	sleep 2
	$L unload > /dev/null
	sleep 1
	echo "cycle $i: $(dmesg | grep -c 'WARNING') kernel warnings"
	echo "20000 100000" > $CG/lim/cpu.max
	sleep 1
done
