# Pipewright — the two commands of the README:
#   make demo    install what is missing, build, run a pipeline that fails, retry it, succeed
#   make check   install what is missing, build, run every test (unit + end-to-end)
# Other targets: build, asan (ASan+UBSan: unit and API end-to-end tests), bench, fuzz (60 s for
# each libFuzzer target, clang: scripts/fuzz), format, lint, clean.

JOBS ?= $(shell nproc)

.PHONY: all deps test-deps build check demo asan bench fuzz format lint clean

all: build

deps:
	@scripts/install-deps

test-deps:
	@scripts/install-deps --test

build: deps
	@cmake --preset dev >/dev/null
	@cmake --build build -j$(JOBS)

check: test-deps build
	@ctest --test-dir build --output-on-failure -j2

demo: deps build
	@scripts/demo

asan: test-deps
	@cmake --preset asan >/dev/null
	@cmake --build build-asan -j$(JOBS)
	@ctest --test-dir build-asan --output-on-failure -j2 -E e2e.console

bench: deps
	@cmake --preset release >/dev/null
	@cmake --build build-release -j$(JOBS) --target pipewright bench_orchestration bench_retry
	@build-release/bench/bench_orchestration
	@build-release/bench/bench_retry

fuzz: test-deps
	@scripts/fuzz --time 60

format:
	@clang-format -i $$(git ls-files 'src/*.cc' 'src/*.h' 'bench/*.cc' 'bench/*.h' 'fuzz/*.cc')

lint:
	@scripts/lint

clean:
	@rm -rf build build-asan build-release
