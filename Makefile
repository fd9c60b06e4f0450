# gatehouse — build, run, test.
#
#   make run     the gateway on its embedded demo config (127.0.0.1:8080, admin :9901)
#   make test    install what the tests need, then gofmt, vet, staticcheck, go test -race
#   make bench   the hot-path benchmarks (not part of make test)
#   make fuzz    each fuzz target for FUZZTIME (default 30s)

GO          ?= go
GOBIN       := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck
# honnef.co/go/tools v0.8.2 is staticcheck 2026.1.x, which knows Go 1.26.
STATICCHECK_VERSION := v0.8.2
# Debian packages the tests drive as real components: Apache htpasswd
# (apache2-utils), mkpasswd (whois) and openssl for htpasswd interop; ipset,
# nftables, iptables and iproute2 for the kernel ban tests in namespaces.
APT_PACKAGES := apache2-utils whois openssl ipset nftables iptables iproute2
FUZZTIME    ?= 30s
BENCHTIME   ?= 1s
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X main.version=$(VERSION)

.PHONY: all build run test deps tools fmt-check vet lint bench fuzz clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/gatehouse ./cmd/gatehouse

run: build
	./bin/gatehouse serve

# deps installs the Debian packages the tests need; idempotent, and a no-op
# when they are all present.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# tools installs the pinned Go tools; idempotent.
tools:
	@$(STATICCHECK) -version 2>/dev/null | grep -q '$(STATICCHECK_VERSION)' || \
		$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

fmt-check:
	@out=$$(gofmt -l .); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

lint: tools fmt-check vet
	$(STATICCHECK) ./...

test: deps lint
	$(GO) test -race -count=1 -timeout 15m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) ./...

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
