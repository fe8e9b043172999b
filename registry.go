package oauthintrospection

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"time"
)

// shared is what all handlers of one middleware with one configuration share across reloads:
// Traefik builds one handler per router that uses the middleware, and builds them all again on every
// dynamic-configuration reload, even an unrelated one.
type shared struct {
	fingerprint string
	// settings are the compiled settings every handler of this state runs on. The cache's verdicts
	// were computed with them, so no handler may use settings of its own.
	settings *settings
	cache    *verdictCache
	idp      *idpClient
	log      *logger
	built    time.Time // the last New that used this state
}

// The registry remembers at most registryCap middleware names, beyond the names built within
// registryGrace. A renamed or deleted middleware would otherwise keep its cache and its IdP
// connections for the life of Traefik. The name built least recently goes first, once it has not
// been built for registryGrace: a reload builds every name in use again, so with more names in
// use than registryCap, evicting without the grace would empty the caches a reload is about to
// reuse. An evicted name only costs a cold cache at its next New.
const (
	registryCap   = 1024
	registryGrace = 10 * time.Minute
)

// The registry keeps the shared state of each middleware name: an unchanged configuration gets its
// warm cache back, a changed one replaces it.
var (
	registryMu sync.Mutex
	registry   = map[string]*shared{}
)

// sharedFor returns the shared state of the middleware name with configuration cfg, which compiles
// to s, and whether it was made now. A new state is made from s; a registered one keeps its own
// settings.
func sharedFor(name string, cfg *Config, s *settings) (*shared, bool) {
	fp := fingerprint(cfg)
	now := time.Now()
	registryMu.Lock()
	defer registryMu.Unlock()
	if sh := registered(name, fp); sh != nil {
		sh.built = now
		return sh, false
	}
	lg := newLogger(name)
	sh := &shared{fingerprint: fp, settings: s, cache: newVerdictCache(s.cache), idp: newIDPClient(s.client, lg), log: lg, built: now}
	sh.cache.keyed = len(s.client.templated) > 0
	registry[name] = sh
	if len(registry) > registryCap {
		evictLeastRecentlyBuilt(now.Add(-registryGrace))
	}
	return sh, true
}

// registeredCaches returns the cache of every registered middleware.
func registeredCaches() []*verdictCache {
	registryMu.Lock()
	defer registryMu.Unlock()
	out := make([]*verdictCache, 0, len(registry))
	for _, sh := range registry {
		out = append(out, sh.cache)
	}
	return out
}

// tierMarkers names where a shared tier keeps its revocation markers: a Redis client and a key prefix.
type tierMarkers struct {
	client  *redisClient
	revoked string
}

// registeredTiers returns the shared tier of every registered middleware that has one, once
// for each Redis client and key prefix, and for each prefix the longest markFor of its tiers:
// tiers with one prefix share their markers, and two clients (other options, or another
// spelling of the address) may reach one Redis, so every marker under a prefix must outlive the
// entries of all its tiers, whichever tier writes it last.
func registeredTiers() ([]*sharedTier, map[string]int64) {
	registryMu.Lock()
	defer registryMu.Unlock()
	seen := map[tierMarkers]bool{}
	longest := map[string]int64{}
	var out []*sharedTier
	for _, sh := range registry {
		t := sh.settings.shared
		if t == nil {
			continue
		}
		if id := (tierMarkers{client: t.client, revoked: t.revoked}); !seen[id] {
			seen[id] = true
			out = append(out, t)
		}
		if t.markFor > longest[t.revoked] {
			longest[t.revoked] = t.markFor
		}
	}
	return out, longest
}

// registered returns the registry's state for name when its fingerprint is fp. It is a function
// of its own so that no frame of sharedFor keeps a replaced state alive (seen under Yaegi).
func registered(name, fp string) *shared {
	if sh := registry[name]; sh != nil && sh.fingerprint == fp {
		return sh
	}
	return nil
}

// evictLeastRecentlyBuilt forgets the name whose state was built longest ago, if that was before
// cutoff. It runs with registryMu held, once per new name beyond registryCap.
func evictLeastRecentlyBuilt(cutoff time.Time) {
	oldest, at := "", cutoff
	for name, sh := range registry {
		if sh.built.Before(at) {
			oldest = name
			at = sh.built
		}
	}
	if oldest != "" {
		delete(registry, oldest)
	}
}

// fingerprint digests every option. fmt prints maps with sorted keys, so equal configurations give
// equal fingerprints.
func fingerprint(cfg *Config) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%#v", *cfg)))
	return string(sum[:])
}
