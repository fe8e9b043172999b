# Entry points named in the README.
.PHONY: test test-unit demo

# The whole suite, as CI runs it: installs what it needs (npm packages, the Traefik binary).
test:
	bash scripts/test.sh

# Unit tests only: compiled with -race and interpreted by Yaegi, about a minute and a half. The
# shared-cache tests start redis-server, which scripts/install-redis.sh installs if it is missing.
test-unit:
	bash scripts/install-redis.sh
	go test -race -count=1 ./...

# Starts the IdP, an echo backend and Traefik with this plugin on 127.0.0.1.
demo:
	$(MAKE) -C demo demo

# Load benchmark in a real Traefik (wrk, a Go IdP, the pass-through floor and the floors of a hit
# and a miss); prints one table and Traefik's profiles, about 9 minutes once Traefik is built.
.PHONY: bench bench-fill flood
bench:
	bash bench/run.sh

# The interpreted calls and frame slots of one request, per row and per function, counted by a
# patched copy of Yaegi v0.16.1 (bench/frames); about a minute.
.PHONY: bench-frames
bench-frames:
	bash bench/frames/run.sh

# Traefik's resident memory with the cache full at 10,000 and 1,000,000 entries, about 8 minutes.
bench-fill:
	bash bench/fill.sh

# A flood of random bogus tokens against the default in-flight bound and against none: what
# reaches the IdP, and Traefik's goroutines and memory. About 1 minute.
flood:
	bash bench/flood.sh

# Mutation testing of the security-critical files with the compiled tests (gremlins, pinned);
# prints killed/lived per file. Tens of minutes on two cores; not part of CI. See docs/mutation.md.
.PHONY: mutation
mutation:
	bash scripts/mutation.sh

# Chaos under load: wrk against the plugin while the IdP is killed and restarted every 5 s;
# fails if a request without a valid token gets through or Traefik goes down. About 80 s.
.PHONY: chaos
chaos:
	bash bench/chaos.sh
