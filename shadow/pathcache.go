package shadow

import (
	"sync"

	filter "github.com/scim2/filter-parser/v2"
)

// filter-parser takes ~100 µs and ~2,000 allocations per path (a combinator parser that
// allocates per character), and the same few paths ("members", "active", "name.givenName",
// "urn:…:department") come in every PATCH: parsed paths are cached. The cached values are
// shared, so nothing may change a parsed path (nothing does: they are only read).

// pathCacheMax bounds the cache; when full it starts over (unique paths, such as member
// filters with ids, would otherwise fill it).
const pathCacheMax = 4096

var pathCache struct {
	sync.RWMutex
	m map[string]filter.Path
}

// parseSCIMPath is parseSCIMPathUncached with a cache of the paths that parsed.
func parseSCIMPath(s string) (filter.Path, error) {
	pathCache.RLock()
	p, ok := pathCache.m[s]
	pathCache.RUnlock()
	if ok {
		return p, nil
	}
	p, err := parseSCIMPathUncached(s)
	if err != nil {
		return p, err
	}
	pathCache.Lock()
	if pathCache.m == nil || len(pathCache.m) >= pathCacheMax {
		pathCache.m = make(map[string]filter.Path, 64)
	}
	pathCache.m[s] = p
	pathCache.Unlock()
	return p, nil
}
