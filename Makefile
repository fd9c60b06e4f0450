# gatehouse — build, run, test.
#
#   make run     the gateway on its embedded demo config (127.0.0.1:8080, admin and
#                dashboard 127.0.0.1:9901; PORT=8081 ADMIN_PORT=9902 move them)
#   make test    install what the tests need, then gofmt, vet, staticcheck, go test -race
#   make bench   the hot-path benchmarks (not part of make test)
#   make fuzz    each fuzz target for FUZZTIME (default 30s)

GO          ?= go
GOBIN       := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck
# honnef.co/go/tools v0.8.2 is staticcheck 2026.1.x, which knows Go 1.26.
STATICCHECK_VERSION := v0.8.2
# Pebble, Let's Encrypt's ACME test CA, for the certificate tests.
PEBBLE_VERSION := v2.10.1
# versitygw, an S3-compatible server that verifies SigV4, for the S3
# presigning tests (posix backend on loopback).
VERSITYGW_VERSION := v1.8.0
# h2spec, the HTTP/2 conformance suite run against the TLS listener.
H2SPEC_VERSION := v2.2.1+incompatible
# Debian packages the tests drive as real components: Apache htpasswd
# (apache2-utils), mkpasswd (whois) and openssl for htpasswd interop; ipset,
# nftables, iptables and iproute2 for the kernel ban tests in namespaces;
# systemd (systemd-analyze) and procps (/bin/kill, the unit's ExecReload)
# for the systemd unit's verify and security tests; nginx as the oracle of
# gatehouse import; slowhttptest for the slowloris and slow-body tests;
# wrk and h2load (nghttp2-client) for the benchmark tools' smoke tests
# (cmd/gatehouse-bench); chromium,
# driven headless, for the dashboard's browser test; redis-server for fleet
# mode's sync, shared jails and certificate storage tests; systemd-journal-remote
# writes the journal files that the journal source's test reads with journalctl.
# fail2ban gives the filter.d files and fail2ban-client that the import tests
# compare with. openssh-server, openssh-client and rsyslog: the sshd log-watch
# test runs a real sshd logging through rsyslog, each started by the test
# itself. haproxy: the PROXY protocol tests put it (mode tcp, send-proxy and
# send-proxy-v2) in front of gatehouse, started by the test itself. deps
# installs every package with policy-rc.d in place, so that no service
# starts, and disables the fail2ban, ssh and haproxy services it installed.
APT_PACKAGES := apache2-utils whois openssl ipset nftables iptables iproute2 systemd procps nginx slowhttptest wrk nghttp2-client chromium redis-server systemd-journal-remote openssh-server openssh-client rsyslog haproxy
FUZZTIME    ?= 30s
BENCHTIME   ?= 1s
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X main.version=$(VERSION)

.PHONY: all build run test deps tools fmt-check vet lint bench fuzz clean docs-screenshots
.PHONY: bench-deps bench-compare bench-attack bench-memory FORCE

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/gatehouse ./cmd/gatehouse

# The demo's ports (loopback only).
PORT        ?= 8080
ADMIN_PORT  ?= 9901

# As root the demo needs --allow-root: gatehouse refuses root otherwise.
# GATEHOUSE_CONFIG is cleared: make run is the embedded demo.
run: build
	GATEHOUSE_CONFIG= ./bin/gatehouse serve --port $(PORT) --admin-port $(ADMIN_PORT) $$([ "$$(id -u)" -ne 0 ] || echo --allow-root)

# deps installs the Debian packages the tests need; idempotent, and a no-op
# when they are all present.
deps:
	@missing=""; for p in $(APT_PACKAGES) fail2ban; do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing (their services kept from starting)"; \
		SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
		policy=; if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' | $$SUDO tee /usr/sbin/policy-rc.d >/dev/null && $$SUDO chmod 0755 /usr/sbin/policy-rc.d && policy=1; \
		fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
		rc=$$?; [ -z "$$policy" ] || $$SUDO rm -f /usr/sbin/policy-rc.d; [ $$rc -eq 0 ] || exit $$rc; \
		for p in $$missing; do case $$p in fail2ban) svc=fail2ban;; openssh-server) svc=ssh;; haproxy) svc=haproxy;; *) continue;; esac; \
			if [ -d /run/systemd/system ]; then $$SUDO systemctl disable --now $$svc 2>/dev/null || true; fi; \
		done; \
	fi

# tools installs the pinned Go tools; idempotent.
tools:
	@$(STATICCHECK) -version 2>/dev/null | grep -q '$(STATICCHECK_VERSION)' || \
		$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@$(GO) version -m $(GOBIN)/pebble 2>/dev/null | grep -q 'pebble/v2[[:space:]]*$(PEBBLE_VERSION)' || \
		$(GO) install github.com/letsencrypt/pebble/v2/cmd/pebble@$(PEBBLE_VERSION)
	@$(GO) version -m $(GOBIN)/h2spec 2>/dev/null | grep -q 'summerwind/h2spec[[:space:]]*$(H2SPEC_VERSION)' || \
		$(GO) install github.com/summerwind/h2spec/cmd/h2spec@$(H2SPEC_VERSION)
	@$(GO) version -m $(GOBIN)/versitygw 2>/dev/null | grep -q 'versity/versitygw[[:space:]]*$(VERSITYGW_VERSION)' || \
		$(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

fmt-check:
	@out=$$(gofmt -l .); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

lint: tools fmt-check vet
	$(STATICCHECK) ./...

# The million-ban paging tests hold 100,000 bans under -race; test runs
# them once more at full size without it.
test: deps lint
	$(GO) test -race -count=1 -timeout 15m ./...
	$(GO) test -count=1 -run 'Million' ./rules/ ./proxy/ui/

# docs-screenshots refreshes the README's dashboard pictures
# (docs/ui-*.png) from the browser test.
docs-screenshots: deps
	@dir=$$(mktemp -d) && \
	$(GO) test -count=1 -run '^TestDashboardBrowser$$' ./cmd/gatehouse -args -screenshots $$dir && \
	cp $$dir/ui-overview.png $$dir/ui-bans.png docs/ && rm -rf $$dir

bench:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) ./...

# The side-by-side benchmarks of docs/performance.md (cmd/gatehouse-bench).
# BENCH_FLAGS passes flags, e.g. BENCH_FLAGS='-sut-cpus 0,1' or '-runs 5'.
BENCH_APT := wrk nghttp2-client nginx haproxy caddy fail2ban python3-pyinotify ipset nftables iptables iproute2 util-linux
BENCH_FLAGS ?=

# bench-deps installs the programs the benchmarks run, from Debian;
# idempotent. Their services are kept from starting (policy-rc.d): the
# benchmarks start their own instances.
bench-deps:
	@missing=""; for p in $(BENCH_APT); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
		policy=; if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' | $$SUDO tee /usr/sbin/policy-rc.d >/dev/null && $$SUDO chmod 0755 /usr/sbin/policy-rc.d && policy=1; \
		fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
		rc=$$?; [ -z "$$policy" ] || $$SUDO rm -f /usr/sbin/policy-rc.d; exit $$rc; \
	fi

bin/gatehouse-bench: FORCE
	$(GO) build -trimpath -o $@ ./cmd/gatehouse-bench

# bench-compare: gatehouse (4 configs and paired auth hosts), bare Go, nginx, Caddy,
# HAProxy on loopback; HTTP/2 (h2load) and TLS handshakes beside nginx.
bench-compare: bin/gatehouse-bench
	./bin/gatehouse-bench compare $(BENCH_FLAGS)

# bench-attack: the scanner flood in network namespaces (root).
bench-attack: bin/gatehouse-bench
	./bin/gatehouse-bench attack $(BENCH_FLAGS)

# bench-memory: bytes per client of every per-client table; gatehouse RSS idle, loaded, full.
bench-memory: bin/gatehouse-bench
	./bin/gatehouse-bench memory $(BENCH_FLAGS)

FORCE:

# fuzz runs every fuzz target of every package for FUZZTIME each.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

clean:
	rm -rf bin
