# skytools: see README.md. `make help` lists the targets.

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
DOCDIR     ?= $(PREFIX)/share/doc/skytools
DESTDIR    ?=

GO                  ?= go
TOOLS               := pgqd londisted walmgrd queue-mover dispatcher
STATICCHECK_VERSION ?= v0.8.2
TEST_TIMEOUT        ?= 80m
BENCH               ?= .
BENCHTIME           ?= 1x

.PHONY: help build test lint bench install clean demo

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build every binary into bin/
	@mkdir -p bin
	$(GO) build -o bin/ $(addprefix ./cmd/,$(TOOLS))

test: ## run every test against private PostgreSQL clusters (PGTEST_REQUIRE=1 to forbid skips)
	$(GO) test -timeout $(TEST_TIMEOUT) ./...

lint: ## gofmt, go vet and staticcheck
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

bench: ## run the Go benchmarks (BENCH=regexp, BENCHTIME=1x)
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -timeout 0 ./...

install: build ## install binaries, systemd units, example configs and docs (PREFIX, DESTDIR)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)/examples
	install -m 0755 $(addprefix bin/,$(TOOLS)) $(DESTDIR)$(BINDIR)/
	for u in deploy/systemd/*.service; do \
		sed -e 's#/usr/local/bin/#$(BINDIR)/#g' -e 's#/etc/skytools/#$(SYSCONFDIR)/skytools/#g' \
			-e 's#blob/main/docs/\([a-z-]*\)\.md#blob/main/docs/\1.md file:$(DOCDIR)/\1.md#' \
			$$u > $(DESTDIR)$(UNITDIR)/$$(basename $$u); \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename $$u); \
	done
	install -m 0644 deploy/examples/*.toml $(DESTDIR)$(DOCDIR)/examples/
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/skytools
	for t in londisted walmgrd queue-mover dispatcher; do install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/skytools/$$t; done

clean: ## remove build output and the demo cluster
	rm -rf bin demo

demo: build ## start a throwaway cluster, pgqd, a producer and a consumer; show progress and status
	$(GO) run ./pkg/demo
