# scim-shadow — a Caddy module that shadows IdP SCIM provisioning traffic.
#   make build   ./caddy with the module, built by xcaddy (pinned)
#   make run     the example SCIM backend + Caddy with ./Caddyfile (Ctrl-C stops both)
#   make test    go vet + every test with the race detector (the reliability suite small)
#   make soak    the reliability suite at full size, with its table (≤ 20 minutes)
#   make bench   the load harness (bench/): ≤ 15 minutes, writes BENCHMARKS.md; scale via BENCH_*
#   make bench-smoke  every benchmark scenario at tiny scale (seconds); the numbers mean nothing

CADDY_VERSION ?= v2.11.9
MODULE        := github.com/scim-shadow/caddy-scim-shadow
GO_SOURCES    := $(shell find . -name '*.go' -not -path './examples/*' -not -path './bench/*' -not -name '*_test.go') go.mod go.sum

.PHONY: build run test soak fuzz clean bench bench-smoke

build: caddy

caddy: $(GO_SOURCES)
	go tool xcaddy build $(CADDY_VERSION) --output ./caddy --with $(MODULE)@v0.0.0=.

run: build
	./scripts/run-demo.sh

test:
	go vet ./...
	go test -race -timeout 20m ./...

# The reliability suite at full size (10,000-write loads, every fault) against the built
# Caddy, the example backend, SQLite and PostgreSQL (SCIM_SHADOW_TEST_POSTGRES). It stops
# and restarts the PostgreSQL cluster SOAK_PG_CTL names (default: the first of
# pg_lsclusters); SOAK_PG_CTL= skips that row. Prints the table, also left in soak-table.txt.
SOAK_PG_CTL ?= $(shell pg_lsclusters -h 2>/dev/null | awk 'NR==1{print "pg_ctlcluster "$$1" "$$2}')
SOAK_TESTS  := TestReliability|TestHostileInput|TestSecretsNeverShown|TestConnectionIsolation|TestPreview(CrashKeepsAnsweredRecords|ReloadUnderLoad|FailsClosedWhenStoreIsLocked|ClientAbort)
soak:
	@rm -f soak-table.txt
	SCIM_SHADOW_SOAK=1 SCIM_SHADOW_PG_CTL="$(SOAK_PG_CTL)" SCIM_SHADOW_SOAK_TABLE=$(CURDIR)/soak-table.txt \
	  go test -count=1 -timeout 20m -run '$(SOAK_TESTS)' ./integration; rc=$$?; \
	  cat soak-table.txt 2>/dev/null; exit $$rc

# Runs each fuzz target for FUZZTIME (CI runs only their seed corpora, through make test).
FUZZTIME ?= 30s
fuzz:
	@for pkg in ./rules ./shadow; do \
	  for f in $$(go test -list 'Fuzz.*' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; go test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# PostgreSQL runs use a fresh schema of this database (dropped after); unreachable: skipped.
BENCH_POSTGRES_DSN ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
export BENCH_POSTGRES_DSN

bench: caddy
	go run ./bench/cmd/scimbench

bench-smoke: caddy
	go run ./bench/cmd/scimbench -smoke

clean:
	rm -f ./caddy scim-shadow-demo.db* soak-table.txt
