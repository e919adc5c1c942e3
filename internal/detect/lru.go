package detect

import "container/list"

// lru is a bounded map that evicts the least recently used key.
type lru[V any] struct {
	max     int
	ll      *list.List
	m       map[string]*list.Element
	evicted uint64
	onEvict func()
}

type lruEntry[V any] struct {
	key string
	val V
}

func newLRU[V any](max int, onEvict func()) *lru[V] {
	return &lru[V]{max: max, ll: list.New(), m: map[string]*list.Element{}, onEvict: onEvict}
}

func (c *lru[V]) get(k string) (V, bool) {
	if el, ok := c.m[k]; ok {
		c.ll.MoveToFront(el)
		return el.Value.(*lruEntry[V]).val, true
	}
	var zero V
	return zero, false
}

// getB is get with a byte-slice key (no allocation).
func (c *lru[V]) getB(k []byte) (V, bool) {
	if el, ok := c.m[string(k)]; ok {
		c.ll.MoveToFront(el)
		return el.Value.(*lruEntry[V]).val, true
	}
	var zero V
	return zero, false
}

// setB updates an existing key (byte-slice key, no allocation) and
// reports whether it existed.
func (c *lru[V]) setB(k []byte, v V) bool {
	el, ok := c.m[string(k)]
	if !ok {
		return false
	}
	el.Value.(*lruEntry[V]).val = v
	c.ll.MoveToFront(el)
	return true
}

func (c *lru[V]) put(k string, v V) {
	if el, ok := c.m[k]; ok {
		el.Value.(*lruEntry[V]).val = v
		c.ll.MoveToFront(el)
		return
	}
	c.m[k] = c.ll.PushFront(&lruEntry[V]{key: k, val: v})
	for c.max > 0 && c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.m, old.Value.(*lruEntry[V]).key)
		c.evicted++
		if c.onEvict != nil {
			c.onEvict()
		}
	}
}

func (c *lru[V]) del(k string) {
	if el, ok := c.m[k]; ok {
		c.ll.Remove(el)
		delete(c.m, k)
	}
}

func (c *lru[V]) len() int { return c.ll.Len() }

// each visits entries from oldest to newest.
func (c *lru[V]) each(f func(k string, v V)) {
	for el := c.ll.Back(); el != nil; el = el.Prev() {
		en := el.Value.(*lruEntry[V])
		f(en.key, en.val)
	}
}
