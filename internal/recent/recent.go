// Package recent is a map bounded to the keys put most recently, for the
// memories that must not grow with traffic (calls seen, agents' outcomes,
// identities of released calls).
package recent

// Map keeps between Max/2 and Max of the keys put most recently, in two
// generations: when the current one holds Max/2 keys, the older is
// cleared and becomes the current. It never deletes a key, so its maps
// keep no tombstones, and a lookup costs at most two map reads. A key put
// again is refreshed (moved to the current generation). The zero value
// is not usable; make one with New. Not safe for concurrent use.
type Map[K comparable, V any] struct {
	half     int
	cur, old map[K]V
}

// New returns an empty Map that keeps up to n keys (at least 2).
func New[K comparable, V any](n int) *Map[K, V] {
	half := max(n/2, 1)
	return &Map[K, V]{half: half, cur: make(map[K]V), old: make(map[K]V)}
}

// Get returns the value of k and whether k is remembered.
func (m *Map[K, V]) Get(k K) (V, bool) {
	if v, ok := m.cur[k]; ok {
		return v, true
	}
	v, ok := m.old[k]
	return v, ok
}

// Put remembers v for k.
func (m *Map[K, V]) Put(k K, v V) {
	if _, ok := m.cur[k]; !ok && len(m.cur) >= m.half {
		clear(m.old)
		m.cur, m.old = m.old, m.cur
	}
	m.cur[k] = v
}

// Len is the number of keys remembered (a key refreshed since the last
// turn of generations may be counted twice).
func (m *Map[K, V]) Len() int { return len(m.cur) + len(m.old) }
