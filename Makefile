# miniftp — `make help` lists the targets.
PREFIX  ?= /usr/local
DESTDIR ?=
CARGO   ?= cargo
BIN      = target/release/miniftp

.PHONY: quickstart help build test lint unit-and-integration bench-smoke install uninstall run bench bench-ab \
        bench-ftp bench-peers stress fuzz ftp-clients completions clean

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## release build of the one binary
	$(CARGO) build --release --locked

test: lint unit-and-integration bench-smoke ## everything CI runs: fmt, clippy (warnings denied, functions of at most 80 lines), all tests, smoke bench
	@echo "make test: all passed"

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings -W clippy::too_many_lines

unit-and-integration:
	$(CARGO) test --locked -- --test-threads=$${TEST_THREADS:-4}

bench-smoke: ## seconds-long bench run that checks digests and counts (part of make test)
	$(CARGO) build --locked
	MINIFTP_BIN=target/debug/miniftp bash bench/run.sh --smoke

bench: build ## the benchmark table (docs/BENCHMARKS.md), with vsftpd when installed
	bash bench/run.sh

bench-ab: build ## OLD=PATH: rows 1, 2, 5, 7 of make bench for an older binary beside this one (bench/ab.sh)
	@test -x "$(OLD)" || { echo "make bench-ab OLD=path/to/older/miniftp"; exit 2; }
	bash bench/ab.sh "$(OLD)" $(BIN)

bench-ftp: build ## the FTP listener against vsftpd and pure-ftpd with their clients (docs/BENCHMARKS.ftp.md; needs root and make bench-peers)
	bash bench/ftp-peers.sh

bench-peers: ## install vsftpd, curl, lftp (and the other peers) for make bench
	bash ../shared/bench/install-peers.sh || { apt-get update -q && apt-get install -y -q vsftpd lftp curl hyperfine; }
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

install: build completions ## install binary, man page, help text, sample config, completions
	install -Dm755 $(BIN) $(DESTDIR)$(PREFIX)/bin/miniftp
	install -Dm644 man/miniftp.1 $(DESTDIR)$(PREFIX)/share/man/man1/miniftp.1
	install -Dm644 share/help.txt $(DESTDIR)$(PREFIX)/share/miniftp/help.txt
	install -Dm644 etc/miniftp.toml $(DESTDIR)$(PREFIX)/share/miniftp/miniftp.toml.sample
	install -Dm644 etc/miniftp.service $(DESTDIR)$(PREFIX)/share/miniftp/miniftp.service
	install -Dm644 target/completions/miniftp.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/miniftp
	install -Dm644 target/completions/_miniftp $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_miniftp
	install -Dm644 target/completions/miniftp.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/miniftp.fish

uninstall: ## remove what install put in place
	rm -f $(DESTDIR)$(PREFIX)/bin/miniftp $(DESTDIR)$(PREFIX)/share/man/man1/miniftp.1
	rm -rf $(DESTDIR)$(PREFIX)/share/miniftp
	rm -f $(DESTDIR)$(PREFIX)/share/bash-completion/completions/miniftp \
	      $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_miniftp \
	      $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/miniftp.fish

completions: build ## bash, zsh and fish completions into target/completions
	$(BIN) generate bash target/completions
	$(BIN) generate zsh target/completions
	$(BIN) generate fish target/completions

run: build ## a server on 127.0.0.1:9000 with data in ./miniftp-data
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
