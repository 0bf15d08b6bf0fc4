# miniftp — `make help` lists the targets.
#
# Every target honours CARGO_TARGET_DIR (cargo's build directory, default
# ./target). Install locations follow the GNU conventions; packagers set
# DESTDIR (a staging root) and usually PREFIX=/usr.
PREFIX         ?= /usr/local
BINDIR         ?= $(PREFIX)/bin
DATADIR        ?= $(PREFIX)/share
MANDIR         ?= $(DATADIR)/man
# /etc whatever the PREFIX: the unit reads its config from here.
SYSCONFDIR     ?= /etc
# Directories systemd reads under /usr/local and /usr alike.
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR    ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR    ?= $(PREFIX)/lib/tmpfiles.d
DESTDIR        ?=
CARGO          ?= cargo
STRIP          ?= strip
# `release` for installs and benchmarks; PROFILE=debug installs the debug
# build (the packaging test does, to reuse what `cargo test` built).
PROFILE        ?= release
TARGET_DIR     := $(or $(CARGO_TARGET_DIR),target)
BIN             = $(TARGET_DIR)/$(PROFILE)/miniftp
DEBUG_BIN       = $(TARGET_DIR)/debug/miniftp
CARGO_PROFILE   = $(if $(filter release,$(PROFILE)),--release,)

.PHONY: quickstart help build test lint unit-and-integration bench-smoke check-unit install uninstall \
        run bench bench-ab bench-ftp bench-peers bench-s3 stress fuzz ftp-clients completions clean garage

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build the one binary (release; PROFILE=debug for the debug build)
	$(CARGO) build $(CARGO_PROFILE) --locked

test: lint unit-and-integration bench-smoke check-unit ## everything CI runs: fmt, clippy (warnings denied, functions of at most 80 lines), all tests, smoke bench, unit checks
	@echo "make test: all passed"

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings -W clippy::too_many_lines

unit-and-integration:
	$(CARGO) test --locked -- --test-threads=$${TEST_THREADS:-4}

bench-smoke: ## seconds-long bench run that checks digests and counts (part of make test)
	$(CARGO) build --locked
	MINIFTP_BIN=$(DEBUG_BIN) bash bench/run.sh --smoke

# The shipped unit must load cleanly and stay "OK" (exposure <= 2.0) in
# `systemd-analyze security`. `verify` wants ExecStart to exist, so it checks
# a copy that runs the binary just built (and the man page is not installed).
check-unit: ## systemd-analyze verify and security (<= 2.0) of etc/miniftp.service (skipped without systemd-analyze)
	@set -e; if ! command -v systemd-analyze >/dev/null; then \
	  echo "check-unit: no systemd-analyze here (package systemd), skipped"; exit 0; fi; \
	$(CARGO) build --locked; \
	dir=$$(mktemp -d); trap 'rm -rf "$$dir"' EXIT; \
	sed 's|^ExecStart=[^ ]*|ExecStart=$(abspath $(DEBUG_BIN))|' etc/miniftp.service > "$$dir/miniftp.service"; \
	systemd-analyze verify --man=no "$$dir/miniftp.service" && \
	systemd-analyze security --offline=true --threshold=20 "$$dir/miniftp.service" | tail -1 && \
	echo "check-unit: etc/miniftp.service verified, exposure at most 2.0"

# The S3 tests (tests/integration/s3) start a three-node Garage cluster. They
# look for the binary in $$MINIFTP_GARAGE, then `garage` on PATH, then
# $$CARGO_HOME/bin/garage (where this target installs it).
#
# The build is what CI pays for (a fresh 2-core machine, 90 minutes for
# everything). The published crate carries no [profile], so `cargo install`
# uses cargo's default release profile (opt-level 3, no LTO, 16 codegen
# units): the LTO and codegen-units settings below only pin that down.
# opt-level 1 is what saves compile time; Garage at opt-level 1 still
# serves the tests' few hundred MiB in seconds. Only the features the
# tests use (lmdb; bundled C libraries: no system packages needed).
GARAGE_VERSION ?= 2.5.0
CARGO_BIN      ?= $${CARGO_HOME:-$$HOME/.cargo}/bin

garage: ## install Garage $(GARAGE_VERSION) for the S3 tests, only if missing (a source build: ~870 s of CPU at opt-level 1)
	@if [ -n "$$MINIFTP_GARAGE" ] && [ -x "$$MINIFTP_GARAGE" ]; then echo "garage: $$MINIFTP_GARAGE"; \
	elif command -v garage >/dev/null 2>&1; then echo "garage: $$(command -v garage)"; \
	elif [ -x "$(CARGO_BIN)/garage" ]; then echo "garage: $(CARGO_BIN)/garage"; \
	else start=$$(date +%s); \
	  CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_LTO=false \
	  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_INCREMENTAL=0 nice -n 5 \
	    $(CARGO) install garage --version $(GARAGE_VERSION) --locked --no-default-features --features bundled-libs,lmdb; \
	  echo "garage: built in $$(( $$(date +%s) - start )) s"; \
	fi

bench: build ## the benchmark table (docs/BENCHMARKS.md), with vsftpd when installed
	MINIFTP_BIN=$(abspath $(BIN)) bash bench/run.sh

bench-ab: build ## OLD=PATH: rows 1, 2, 5, 7 of make bench for an older binary beside this one (bench/ab.sh)
	@test -x "$(OLD)" || { echo "make bench-ab OLD=path/to/older/miniftp"; exit 2; }
	bash bench/ab.sh "$(OLD)" $(abspath $(BIN))

bench-s3: build garage ## the S3 row of docs/BENCHMARKS.md: miniftp put/get through a Garage bucket against rclone (needs rclone: make bench-peers)
	bash bench/s3.sh

bench-ftp: build ## the FTP listener against vsftpd and pure-ftpd with their clients (docs/BENCHMARKS.ftp.md; needs root and make bench-peers)
	bash bench/ftp-peers.sh

bench-peers: ## install vsftpd, curl, lftp, rclone (and the other peers) for make bench
	bash ../shared/bench/install-peers.sh || { apt-get update -q && apt-get install -y -q vsftpd lftp curl hyperfine; }
	command -v rclone >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q rclone; }
	id benchuser >/dev/null 2>&1 || { useradd -m -d /dev/shm/ftpbench/home -s /bin/bash benchuser && echo benchuser:benchpw | chpasswd; }
	grep -qx /bin/bash /etc/shells || echo /bin/bash >> /etc/shells

stress: ## long adversarial runs (docs/STRESS.md): the hardening suite scaled up (STRESS=1), in release, ignored tests too
	STRESS=1 $(CARGO) test --release --locked --test integration hardening:: -- --include-ignored --test-threads=1

fuzz: ## run the four cargo-fuzz targets (docs/FUZZING.md); needs cargo-fuzz
	cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O frame -- -runs=10000000 -max_len=200000
	cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O message -- -runs=10000000 -max_len=4096
	cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O connection -- -max_total_time=1800 -max_len=70000
	mkdir -p fuzz/corpus/ftp_command
	cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O ftp_command corpus/ftp_command ../tests/integration/fuzz_regressions/ftp_command -- -max_total_time=600 -max_len=10000

ftp-clients: ## install lftp, rclone, curl and python3 (Debian) for the FTP client matrix (tests/ftp); quick when present
	@missing=""; for t in lftp rclone curl python3; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# The unit's ExecStart and --config follow BINDIR and SYSCONFDIR. The config
# is installed only where none exists (an upgrade keeps the operator's); the
# sample beside the unit always shows the current keys and defaults.
install: build completions ## install the stripped binary, man page, config, systemd unit, sysusers/tmpfiles, completions
	install -Dm755 -s --strip-program=$(STRIP) $(BIN) $(DESTDIR)$(BINDIR)/miniftp
	install -Dm644 man/miniftp.1 $(DESTDIR)$(MANDIR)/man1/miniftp.1
	install -Dm644 share/help.txt $(DESTDIR)$(DATADIR)/miniftp/help.txt
	install -Dm644 etc/miniftp.toml $(DESTDIR)$(DATADIR)/miniftp/miniftp.toml.sample
	test -e $(DESTDIR)$(SYSCONFDIR)/miniftp.toml || install -Dm644 etc/miniftp.toml $(DESTDIR)$(SYSCONFDIR)/miniftp.toml
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	sed -e 's|/usr/local/bin/miniftp|$(BINDIR)/miniftp|' -e 's|/etc/miniftp.toml|$(SYSCONFDIR)/miniftp.toml|' \
	  etc/miniftp.service > $(DESTDIR)$(SYSTEMDUNITDIR)/miniftp.service
	chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/miniftp.service
	install -Dm644 etc/sysusers.conf $(DESTDIR)$(SYSUSERSDIR)/miniftp.conf
	install -Dm644 etc/tmpfiles.conf $(DESTDIR)$(TMPFILESDIR)/miniftp.conf
	install -Dm644 $(TARGET_DIR)/completions/miniftp.bash $(DESTDIR)$(DATADIR)/bash-completion/completions/miniftp
	install -Dm644 $(TARGET_DIR)/completions/_miniftp $(DESTDIR)$(DATADIR)/zsh/site-functions/_miniftp
	install -Dm644 $(TARGET_DIR)/completions/miniftp.fish $(DESTDIR)$(DATADIR)/fish/vendor_completions.d/miniftp.fish
	@if [ -z "$(DESTDIR)" ]; then \
	  echo "installed. As root, create the miniftp user and data directory, then start:"; \
	  echo "  systemd-sysusers && systemd-tmpfiles --create $(TMPFILESDIR)/miniftp.conf"; \
	  echo "  systemctl daemon-reload && systemctl enable --now miniftp"; fi

uninstall: ## remove what install put in place (the config, the data and the miniftp user stay)
	rm -f $(DESTDIR)$(BINDIR)/miniftp $(DESTDIR)$(MANDIR)/man1/miniftp.1
	rm -rf $(DESTDIR)$(DATADIR)/miniftp
	rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/miniftp.service $(DESTDIR)$(SYSUSERSDIR)/miniftp.conf \
	      $(DESTDIR)$(TMPFILESDIR)/miniftp.conf
	rm -f $(DESTDIR)$(DATADIR)/bash-completion/completions/miniftp \
	      $(DESTDIR)$(DATADIR)/zsh/site-functions/_miniftp \
	      $(DESTDIR)$(DATADIR)/fish/vendor_completions.d/miniftp.fish

completions: build ## bash, zsh and fish completions into $(CARGO_TARGET_DIR)/completions
	$(BIN) generate bash $(TARGET_DIR)/completions
	$(BIN) generate zsh $(TARGET_DIR)/completions
	$(BIN) generate fish $(TARGET_DIR)/completions

run: build ## a server on 127.0.0.1:9000 with data in ./miniftp-data (the built-in defaults)
	$(BIN) serve

clean: ## remove build output
	$(CARGO) clean

quickstart: build ## build, add user "demo" with a random password (saved in miniftp-data/demo.password), serve on 127.0.0.1:9000
	@mkdir -p miniftp-data && chmod 700 miniftp-data
	@if ! grep -q '^name = "demo"' miniftp-data/users.toml 2>/dev/null; then \
	  umask 077; head -c 18 /dev/urandom | base64 | tr '+/' '-_' > miniftp-data/demo.password; \
	  $(BIN) useradd demo --quota 1G --password-stdin --root miniftp-data < miniftp-data/demo.password; \
	  echo "user demo, password: $$(cat miniftp-data/demo.password) (also in miniftp-data/demo.password)"; \
	fi
	$(BIN) serve --root miniftp-data
