# scx-slo front door. `make demo` and `make test` each install what is missing first (as root).
SHELL := /bin/bash
KERNEL_DIR = .cache/kernel/$(shell cat .cache/kernel/current 2>/dev/null)
VMLINUX_H = $(KERNEL_DIR)/vmlinux.h
BUILD := build

.PHONY: all setup deps build bpf native ts lint test test-unit test-vm demo bench vm clean

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
	npx tsc -p tsconfig.json

build: setup deps ts

lint: deps
	npx eslint .
	npx prettier --check .

## test: everything, the VM tests against the real sched_ext kernel included
test: build lint
	node --test --test-reporter=spec --test-concurrency=1 dist/test/

test-unit: build
	node --test --test-reporter=spec dist/test/unit/

test-vm: build
	node --test --test-reporter=spec --test-concurrency=1 dist/test/vm/

## demo: boot the sched_ext VM and show what is there
demo: build
	node dist/vm/cli.js -- 'echo "kernel $$(uname -r), sched_ext state: $$(cat /sys/kernel/sched_ext/state)"'

## vm CMD='...': run one command inside the sched_ext VM
vm: build
	node dist/vm/cli.js -- $(CMD)

clean:
	rm -rf dist $(BUILD) .cache/vm-runs
