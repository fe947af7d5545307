# scx-slo front door. `make demo` and `make test` each install what is missing first (as root).
SHELL := /bin/bash
KERNEL_DIR = .cache/kernel/$(shell cat .cache/kernel/current 2>/dev/null)
VMLINUX_H = $(KERNEL_DIR)/vmlinux.h
BUILD := build

.PHONY: all setup deps build bpf native ts lint test test-unit test-vm soak soak-long demo bench bench-full bench-observe vm image install peers cluster clean

all: build

## setup: apt packages, the sched_ext kernel, vmlinux.h (idempotent; seconds when present)
setup:
	@./vm/setup.sh

## deps: node modules from package-lock.json (only when the lock changed)
deps: node_modules/.package-lock.json
node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

ts: deps
	rm -rf dist
	npx tsc -p tsconfig.json

## bpf: the scheduler object (clang-19, vmlinux.h from the cached kernel's BTF)
bpf: $(BUILD)/scx_slo.bpf.o
BPF_HEADERS := $(wildcard bpf/*.h)
$(BUILD)/scx_slo.bpf.o: bpf/scx_slo.bpf.c $(BPF_HEADERS) | setup
	@mkdir -p $(BUILD)
	clang-19 -g -O2 -target bpf -D__TARGET_ARCH_x86 -mcpu=v3 -I$(KERNEL_DIR) -Ibpf \
		-Wall -Wno-missing-declarations -Wno-unused-function -c $< -o $@

## the same scheduler with test hooks (watchdog tests); never loaded outside tests
bpf: $(BUILD)/scx_slo_test.bpf.o
$(BUILD)/scx_slo_test.bpf.o: bpf/scx_slo.bpf.c $(BPF_HEADERS) | setup
	@mkdir -p $(BUILD)
	clang-19 -g -O2 -target bpf -D__TARGET_ARCH_x86 -mcpu=v3 -DSCX_SLO_TEST_HOOKS -I$(KERNEL_DIR) -Ibpf \
		-Wall -Wno-missing-declarations -Wno-unused-function -c $< -o $@

## the observer (kernels without sched_ext): tracing programs, CO-RE. The same vmlinux.h as the
## scheduler, from the cached kernel's BTF: the build does not depend on the build host's kernel
## (which may have no BTF at all), and CO-RE relocates every field to the running kernel at load.
bpf: $(BUILD)/observe.bpf.o
$(BUILD)/observe.bpf.o: bpf/observe.bpf.c $(BPF_HEADERS) | setup
	@mkdir -p $(BUILD)
	clang-19 -g -O2 -target bpf -D__TARGET_ARCH_x86 -mcpu=v3 -I$(KERNEL_DIR) -Ibpf \
		-Wall -Wno-missing-declarations -Wno-unused-function -c $< -o $@

## the observer with every program returning at once: the benchmark's baseline (bench-observe)
bpf: $(BUILD)/observe_baseline.bpf.o
$(BUILD)/observe_baseline.bpf.o: bpf/observe.bpf.c $(BPF_HEADERS) | setup
	@mkdir -p $(BUILD)
	clang-19 -g -O2 -target bpf -D__TARGET_ARCH_x86 -mcpu=v3 -DOBSERVE_BASELINE -I$(KERNEL_DIR) -Ibpf \
		-Wall -Wno-missing-declarations -Wno-unused-function -c $< -o $@

## native: the loader, linked against Debian's libbpf 1.4.6 (no skeleton: opened at run time)
NATIVE_SRC := native/loader.c native/common.c native/serve.c native/abi.c native/observe.c \
	native/layout.c native/status.c native/libbpf_log.c
native: $(BUILD)/scx-slo-loader
$(BUILD)/scx-slo-loader: $(NATIVE_SRC) native/common.h bpf/scx_slo.h | setup
	@mkdir -p $(BUILD)
	gcc -O2 -g -Wall -Wextra -Wno-unused-parameter -Wno-format-truncation \
		-o $@ $(NATIVE_SRC) -lbpf -lelf -lz

## a second build whose shared structs are laid out otherwise (loader and object together), for
## the upgrade and downgrade tests; never loaded outside tests
bpf native: $(BUILD)/layout-b/scx_slo.bpf.o $(BUILD)/layout-b/scx-slo-loader
$(BUILD)/layout-b/scx_slo.bpf.o: bpf/scx_slo.bpf.c $(BPF_HEADERS) | setup
	@mkdir -p $(@D)
	clang-19 -g -O2 -target bpf -D__TARGET_ARCH_x86 -mcpu=v3 -DSCX_SLO_TEST_LAYOUT_B -I$(KERNEL_DIR) -Ibpf \
		-Wall -Wno-missing-declarations -Wno-unused-function -c $< -o $@
$(BUILD)/layout-b/scx-slo-loader: $(NATIVE_SRC) native/common.h bpf/scx_slo.h | setup
	@mkdir -p $(@D)
	gcc -O2 -g -Wall -Wextra -Wno-unused-parameter -Wno-format-truncation -DSCX_SLO_TEST_LAYOUT_B \
		-o $@ $(NATIVE_SRC) -lbpf -lelf -lz

build: setup deps bpf native ts

## lint: eslint, prettier, and the import rules of src/ (.dependency-cruiser.cjs: layers, no cycles)
lint: deps
	npx eslint .
	npx prettier --check .
	npx depcruise --config .dependency-cruiser.cjs src bench vm test

## test: everything, the VM tests against the real sched_ext kernel included
test: build lint cluster
	node --test --test-reporter=spec --test-concurrency=1 $$(find dist/test -name "*.test.js" | sort)

test-unit: build cluster
	node --test --test-reporter=spec $$(find dist/test/unit -name "*.test.js" | sort)

test-vm: build
	node --test --test-reporter=spec --test-concurrency=1 $$(find dist/test/vm -name "*.test.js" | sort)

## soak: the 2-minute watchdog soak in the VM; raw output to bench/results/<date>-soak/
soak: build
	d=bench/results/$$(date -u +%F)-soak && mkdir -p $$d && SOAK_S=120 SOAK_RESULTS_DIR=$$d \
	  node --test --test-reporter=spec --test-reporter-destination=stdout \
	  --test-reporter=spec --test-reporter-destination=$$d/test-output.txt dist/test/vm/watchdog.test.js

## soak-long [DURATION=7200]: churn, config rewrites, agent SIGKILLs and force-outs at once in the
## VM for 2 hours, judged against the targets; writes bench/results/<date>-soak-2h/
soak-long: build
	node dist/bench/soak.js --duration $(or $(DURATION),7200) $(if $(OUT),--out $(OUT))

## demo: boot the sched_ext VM, run the quick noisy-neighbour ladder (fair vs scx_slo), print the table
demo: build
	node dist/bench/run.js --quick

## bench: the quick noisy-neighbour benchmark in the VM (one boot, under 5 min; .cache/bench-quick/)
bench: build
	node dist/bench/run.js --quick

## bench-full [LABEL=x]: every arm and peer, 4 workloads, 4 hog kinds, steps 0,1,2,4,8, 3 reps;
## one VM boot per workload, hours (bench/results/<date>[-label]/; bench/README.md)
bench-full: build peers
	node dist/bench/run.js --full $(if $(LABEL),--label $(LABEL))

## peers: the sched-ext/scx schedulers the benchmark compares against (bench/peers/, cached)
peers: setup
	@./bench/peers/build.sh

## bench-observe [REPS=10] [LABEL=x]: the observer's overhead on this host's own CPUs, not in the VM
## (perf bench sched messaging/pipe, hackbench; bench/results/<date>-observe-overhead[-label]/)
bench-observe: build
	node dist/bench/observe-overhead.js $(if $(REPS),--reps $(REPS)) $(if $(LABEL),--label $(LABEL))

## vm CMD='...': run one command inside the sched_ext VM
vm: build
	node dist/vm/cli.js -- $(CMD)

## install [DESTDIR=] [PREFIX=/usr/local]: scx-slo and scx-slo-shed as commands, a systemd unit
install: build
	deploy/install.sh "$(DESTDIR)" "$(or $(PREFIX),/usr/local)"

## image: the agent's container image with podman, from a local Debian base (deploy/image/build.sh)
image: build
	deploy/image/build.sh

## cluster: etcd, kube-apiserver and kubectl built from source for the tests (test/cluster/build.sh;
## into ${SCX_SLO_CACHE_ROOT:-/var/cache/scx-slo}/k8s/<version>/bin; seconds when present)
cluster:
	@./test/cluster/build.sh

clean:
	rm -rf dist $(BUILD) .cache/vm-runs
