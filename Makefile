# svcwatch — see README.md. `make lab` runs the demo, `make test` runs every test.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BIN     := bin/svcwatch
# A count, not a duration: a duration races the Go 1.26 fuzz coordinator
# (golang/go#75804: a spurious "context deadline exceeded" at the deadline).
FUZZTIME ?= 5000x

.PHONY: all build build-windows lab test lint unit pscheck fuzz bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/svcwatch

# For running from Windows Task Scheduler.
build-windows:
	CGO_ENABLED=0 GOOS=windows GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN).exe ./cmd/svcwatch

# The demo: a simulated domain, the real pipeline, a scripted attack.
lab: build
	./$(BIN) lab --duration 30s

# Everything CI runs. Tests that need the Samba AD DC read SAMBA_AD_* from the
# environment (.ci/run starts it); without them those tests skip.
test: lint unit pscheck fuzz

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Build every test binary in parallel, then run the packages one at a time:
# the lab-driven tests (soak, process, bench smoke) keep real-time deadlines
# and should not compete with each other for the machine's two cores.
unit:
	$(GO) test -race -count=1 -run '^$$' ./... >/dev/null
	$(GO) test -race -count=1 -p 1 -timeout 15m ./...

# Syntax-check the embedded PowerShell collector with the real PowerShell grammar.
pscheck:
	cd tools/pscheck && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && node pscheck.js ../../internal/winrm/*.ps1

# Short runs of the parsers' fuzz targets (seed corpora also run in `unit`).
fuzz:
	@set -e; for spec in $$($(GO) test -list '^Fuzz' ./... 2>/dev/null | awk '/^Fuzz/{n++; names[n]=$$1} /^ok/{for(i=1;i<=n;i++) print $$2":"names[i]; n=0}'); do \
		pkg=$${spec%%:*}; fn=$${spec##*:}; \
		echo "fuzz $$pkg $$fn"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

# The representative configuration whose results README.md shows.
bench: build
	./$(BIN) bench --hosts 5000 --cycles 3 --mode both --interval 60s

clean:
	rm -rf bin
