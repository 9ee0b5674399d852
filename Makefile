# fleetkit's single entry point. `make demo` and `make test` are the two
# commands a fresh machine needs (see README.md).

PREFIX ?= /usr/local
# Where systemd finds units installed by the administrator under PREFIX.
SYSTEMD_UNIT_DIR ?= $(PREFIX)/lib/systemd/system
CARGO ?= cargo

.PHONY: all deps build release test man man-check completions completions-check demo bench install clean

all: build

deps:
	@bash .ci/deps

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release --workspace

## The README's test command: format, lint, every test, fresh man pages and completions.
test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test --workspace
	$(MAKE) man-check completions-check

## The README's main job: the tutorial on real machines (the lab) that it starts itself.
demo: deps
	$(CARGO) build --release -p clusterctl -p announce -p dockrun -p fleetkit-tests --bin clusterctl --bin announce --bin dockrun --bin fleetkit-lab
	bash scripts/demo.sh

man:
	$(CARGO) run -q -p fleetkit-man -- man

man-check:
	$(CARGO) run -q -p fleetkit-man -- --check man

## bash, zsh and fish completions, from the same clap definitions as the man pages.
completions:
	$(CARGO) run -q -p fleetkit-man -- --completions completions

completions-check:
	$(CARGO) run -q -p fleetkit-man -- --check --completions completions

bench: deps
	@set -e; for b in bench/*.sh; do echo "== $$b"; bash "$$b"; done

## announce runs beside every service instance and clusterctl's agent on every
## machine: both are built for size (profile small), as their benchmarks measure
## them. Completions go where bash-completion, zsh and fish look for them.
install: release
	$(CARGO) build --profile small -p announce -p clusterctl
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -d $(DESTDIR)$(PREFIX)/share/zsh/site-functions $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	for t in unitgen place dockrun; do install -m 0755 target/release/$$t $(DESTDIR)$(PREFIX)/bin/$$t; done
	for t in announce clusterctl; do install -m 0755 target/small/$$t $(DESTDIR)$(PREFIX)/bin/$$t; done
	install -m 0644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	for t in unitgen place dockrun announce clusterctl; do \
		install -m 0644 completions/$$t.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/$$t; \
		install -m 0644 completions/_$$t $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_$$t; \
		install -m 0644 completions/$$t.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/$$t.fish; \
	done
	# The agent and scheduler services, pointing at the binaries just installed.
	install -d $(DESTDIR)$(SYSTEMD_UNIT_DIR)
	for u in clusterctl/units/fleetkit-agent.service clusterctl/units/fleetkit-scheduler.service; do \
		sed 's|/usr/local/bin/|$(PREFIX)/bin/|' $$u > $(DESTDIR)$(SYSTEMD_UNIT_DIR)/$$(basename $$u); \
		chmod 0644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/$$(basename $$u); \
	done

clean:
	$(CARGO) clean
