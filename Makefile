# Tessera: `make demo` and `make test` are the two commands; both install what is missing first.
SWIFT ?= swift
RELEASE_BIN := .build/release/tessera
DEMO_OUT ?= out/demo

.PHONY: deps tools-deps build build-debug test demo bench sanitize clean

deps:
	@tools/install-deps

tools-deps:
	@tools/install-deps --tools

build: deps
	$(SWIFT) build -c release --product tessera

build-debug: deps
	$(SWIFT) build --build-tests

# The training tests run the release binary: a few hundred training steps take minutes in a debug build.
test: deps
	$(SWIFT) build -c release --product tessera
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

demo: build
	@tools/demo $(RELEASE_BIN) $(DEMO_OUT)

bench: build tools-deps
	@tools/bench/run-all $(RELEASE_BIN)

# AddressSanitizer (and UBSan on the C targets) over every fixture and the main job; ~12 minutes, not in `test`.
sanitize: deps
	@tools/sanitize

clean:
	rm -rf .build out
