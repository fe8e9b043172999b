package oauthintrospection

import (
	"crypto/sha256"
	"fmt"
	"sync"
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
	built    uint64 // the registry clock at the last New that used this state
}

// registryCap bounds the middleware names the registry remembers. A renamed or deleted middleware
// would otherwise keep its cache and its IdP connections for the life of Traefik. The names built
// least recently go first; an evicted name only costs a cold cache at its next New.
const registryCap = 1024

// The registry keeps the shared state of each middleware name: an unchanged configuration gets its
// warm cache back, a changed one replaces it.
var (
	registryMu    sync.Mutex
	registry      = map[string]*shared{}
	registryClock uint64
)

// sharedFor returns the shared state of the middleware name with configuration cfg, which compiles
// to s. A new state is made from s; a registered one keeps its own settings.
func sharedFor(name string, cfg *Config, s *settings) *shared {
	fp := fingerprint(cfg)
	registryMu.Lock()
	defer registryMu.Unlock()
	registryClock++
	if sh := registered(name, fp); sh != nil {
		sh.built = registryClock
		return sh
	}
	sh := &shared{fingerprint: fp, settings: s, cache: newVerdictCache(s.cache), idp: newIDPClient(s), log: newLogger(name), built: registryClock}
	registry[name] = sh
	if len(registry) > registryCap {
		evictLeastRecentlyBuilt()
	}
	return sh
}

// registered returns the registry's state for name when its fingerprint is fp. It is a function
// of its own so that no frame of sharedFor keeps a replaced state alive (seen under Yaegi).
func registered(name, fp string) *shared {
	if sh := registry[name]; sh != nil && sh.fingerprint == fp {
		return sh
	}
	return nil
}

// evictLeastRecentlyBuilt forgets the name whose state was built longest ago. It runs with
// registryMu held, once per new name beyond registryCap.
func evictLeastRecentlyBuilt() {
	oldest, at := "", registryClock
	for name, sh := range registry {
		if sh.built < at {
			oldest = name
			at = sh.built
		}
	}
	delete(registry, oldest)
}

// fingerprint digests every option. fmt prints maps with sorted keys, so equal configurations give
// equal fingerprints.
func fingerprint(cfg *Config) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%#v", *cfg)))
	return string(sum[:])
}
