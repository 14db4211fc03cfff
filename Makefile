# Pipewright — the two commands of the README:
#   make demo    install what is missing, build, run a pipeline that fails, retry it, succeed
#   make check   install what is missing, build, run every test (unit + end-to-end)
# Other targets: build, asan (ASan+UBSan: unit tests and the end-to-end tests of untrusted input
# and restarts; asan-full: every test), tsan (ThreadSanitizer:
# engine, store, http and auth tests), thread-safety (clang -Wthread-safety over the libraries),
# bench, fuzz (60 s for each libFuzzer target, clang: scripts/fuzz), format, lint, clean,
# deb (build/pipewright_<version>_<arch>.deb: scripts/make-deb).

JOBS ?= $(shell nproc)

.PHONY: all deps test-deps build check demo asan asan-full tsan thread-safety bench fuzz format lint clean deb

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

demo: deps
	@scripts/demo

# AddressSanitizer + UBSan: every unit test, and the end-to-end tests that feed the server
# untrusted input or kill and restart it (the crash campaign with fewer kills), which is what
# .ci/run can afford; `make asan-full` runs every test but the browser one (~25 min of tests).
# The asan and tsan presets build with clang at -O0 (from a clean tree: asan 356 s against g++'s
# 646 s, tsan's build and tests 257 s against 452 s), asan with clang's -Wthread-safety over every
# file, tests included; a build dir that an earlier g++ preset configured is started afresh
# rather than switched in place.
clang_dir = grep -qs '^CMAKE_CXX_COMPILER:[A-Z]*=.*clang++' $(1)/CMakeCache.txt || rm -rf $(1)
ASAN_E2E := test_security_http|test_security_input|test_security_data|test_auth|test_retry|test_shutdown|test_jobs|test_s3_endpoint|test_crash_campaign
asan: test-deps
	@$(call clang_dir,build-asan)
	@cmake --preset asan >/dev/null
	@cmake --build build-asan -j$(JOBS)
	@ctest --test-dir build-asan --output-on-failure -j2 -LE e2e
	@PW_CRASH_KILLS=12 ctest --test-dir build-asan --output-on-failure -j2 -R '^e2e\.($(ASAN_E2E))$$'

asan-full: test-deps
	@$(call clang_dir,build-asan)
	@cmake --preset asan >/dev/null
	@cmake --build build-asan -j$(JOBS)
	@ctest --test-dir build-asan --output-on-failure -j2 -E e2e.console

# ThreadSanitizer over the tests of the multi-threaded layers; the binaries and the label filter
# are the `tsan` build and test presets (CMakePresets.json). TSan wants its fixed shadow layout:
# on kernels with more mmap randomisation than its runtime expects it dies with "unexpected
# memory mapping", so the build (gtest discovery runs the binaries) and the tests run with ASLR
# off (setarch -R) wherever the personality call is allowed. TSan does not model Boost.Asio's
# atomic_thread_fence (g++ said so as a warning); Asio's queues are mutex-ordered, which TSan
# does see.
NO_ASLR := $(shell setarch $$(uname -m) -R true 2>/dev/null && echo setarch $$(uname -m) -R)
tsan: test-deps
	@$(call clang_dir,build-tsan)
	@cmake --preset tsan >/dev/null
	@$(NO_ASLR) cmake --build --preset tsan -j$(JOBS)
	@$(NO_ASLR) ctest --preset tsan

# Clang's -Wthread-safety (an error) over every file of src/: the GUARDED_BY/REQUIRES of
# common/thread_annotations.h are checked. Parse only (scripts/thread-safety), nothing is built.
thread-safety: test-deps
	@JOBS=$(JOBS) scripts/thread-safety

# One table (bench/bench_all.py): the binary `make build` gives users, beside the floor measured in
# the same run and the peers (Buildbot, moto_server); about 5-10 minutes. The detailed programs
# (build/bench/bench_orchestration, bench_retry, bench_sandbox) still run on their own.
bench: deps
	@bench/install-deps
	@cmake --preset dev >/dev/null
	@cmake --build build -j$(JOBS) --target pipewright bench_orchestration
	@/usr/bin/python3 bench/bench_all.py --binary-dir build

fuzz: test-deps
	@scripts/fuzz --time 60

format:
	@clang-format -i $$(git ls-files 'src/*.cc' 'src/*.h' 'bench/*.cc' 'bench/*.h' 'fuzz/*.cc')

lint:
	@scripts/lint

# The Debian package of the `make build` binary, with its systemd unit (packaging/).
deb: build
	@scripts/make-deb

clean:
	@rm -rf build build-asan build-release build-tsan build-ts build-fuzz
