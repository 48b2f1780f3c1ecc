# Developer entry points. CI runs .ci/run, which ends with `make test`.
GO ?= go

.PHONY: demo test check vet-all staticcheck fuzz bench soak

FUZZTIME ?= 15s

demo:
	$(GO) run ./examples/wsdial -demo

# The README's test command.
test:
	$(GO) test -race -count=1 -timeout 20m ./...

vet-all:
	$(GO) vet ./...
	GOOS=windows $(GO) vet ./...
	GOOS=darwin $(GO) vet ./...

staticcheck:
	staticcheck ./...

check: vet-all staticcheck test
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

# Every fuzz target in turn, FUZZTIME each: make fuzz FUZZTIME=10m
fuzz:
	FUZZTIME=$(FUZZTIME) .ci/fuzz

# Go benchmarks of the hot paths.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The load soak with integrity checks (examples/soak): 2,000 bridged
# connections for 60 s by default. Flags pass through SOAKFLAGS:
# make soak SOAKFLAGS='-conns 500 -duration 10s -json'
soak:
	$(GO) run ./examples/soak $(SOAKFLAGS)
