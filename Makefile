# Thin wrapper around CMake. `make run` and `make test` install what is missing first.
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=

.PHONY: all deps build run test test-asan fuzz bench format clean

all: build

deps:
	@scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null

build: deps $(BUILD)/CMakeCache.txt
	@cmake --build $(BUILD) -j$(JOBS) -- --no-print-directory

run: build
	@scripts/run.sh

test: build
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 600

# ASan + UBSan build of everything, running the same test suite.
test-asan: deps
	@cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DGS_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD_ASAN) -j$(JOBS) -- --no-print-directory
	@cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 GS_SANITIZED=1 \
	  ctest --output-on-failure -j$(JOBS) --timeout 900

# Coverage-guided fuzzing with libFuzzer (clang); FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 60
fuzz: deps
	@cmake -S . -B $(BUILD_FUZZ) -DCMAKE_C_COMPILER=clang -DGS_FUZZ=ON >/dev/null
	@cmake --build $(BUILD_FUZZ) -j$(JOBS) --target fuzz_gstp fuzz_comtrade_cfg
	@mkdir -p $(BUILD_FUZZ)/corpus-gstp $(BUILD_FUZZ)/corpus-comtrade
	@$(BUILD_FUZZ)/fuzz_gstp -max_total_time=$(FUZZ_SECONDS) $(BUILD_FUZZ)/corpus-gstp tests/fuzz/corpus/gstp
	@$(BUILD_FUZZ)/fuzz_comtrade_cfg -max_total_time=$(FUZZ_SECONDS) $(BUILD_FUZZ)/corpus-comtrade \
	  tests/fuzz/corpus/comtrade

bench: build
	@bench/run.sh

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
