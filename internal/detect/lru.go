package detect

import "hash/maphash"

// lru is a bounded map that evicts the least recently used key.
//
// Keys are looked up by a 64-bit hash computed by the caller once per
// event and key (several rules share a group key; see Engine.stateKey), so
// the map itself hashes only a uint64. Entries with the same hash are
// chained and compared by their full key: results never depend on hash
// collisions. The recency list is intrusive (one allocation per entry).
type lru[V any] struct {
	max        int
	m          map[uint64]*lruNode[V]
	head, tail *lruNode[V] // head: most recently used
	n          int
	evicted    uint64
	onEvict    func()
}

type lruNode[V any] struct {
	key        string
	h          uint64
	val        V
	prev, next *lruNode[V] // recency list
	chain      *lruNode[V] // next entry with the same hash
}

// stateSeed seeds the hashes of state keys (one per process).
var stateSeed = maphash.MakeSeed()

func keyHash(k []byte) uint64  { return maphash.Bytes(stateSeed, k) }
func keyHashS(k string) uint64 { return maphash.String(stateSeed, k) }
func newLRU[V any](max int, onEvict func()) *lru[V] {
	return &lru[V]{max: max, m: map[uint64]*lruNode[V]{}, onEvict: onEvict}
}

// find returns the entry for key k with hash h (k as bytes: no allocation).
func (c *lru[V]) find(h uint64, k []byte) *lruNode[V] {
	for n := c.m[h]; n != nil; n = n.chain {
		if n.key == string(k) {
			return n
		}
	}
	return nil
}

func (c *lru[V]) findS(h uint64, k string) *lruNode[V] {
	for n := c.m[h]; n != nil; n = n.chain {
		if n.key == k {
			return n
		}
	}
	return nil
}

func (c *lru[V]) unlink(n *lruNode[V]) {
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		c.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		c.tail = n.prev
	}
	n.prev, n.next = nil, nil
}

func (c *lru[V]) pushFront(n *lruNode[V]) {
	n.prev, n.next = nil, c.head
	if c.head != nil {
		c.head.prev = n
	}
	c.head = n
	if c.tail == nil {
		c.tail = n
	}
}

func (c *lru[V]) touch(n *lruNode[V]) {
	if c.head != n {
		c.unlink(n)
		c.pushFront(n)
	}
}

// remove takes n out of the map and the list.
func (c *lru[V]) remove(n *lruNode[V]) {
	if p := c.m[n.h]; p == n {
		if n.chain != nil {
			c.m[n.h] = n.chain
		} else {
			delete(c.m, n.h)
		}
	} else {
		for ; p != nil; p = p.chain {
			if p.chain == n {
				p.chain = n.chain
				break
			}
		}
	}
	n.chain = nil
	c.unlink(n)
	c.n--
}

func (c *lru[V]) get(k string) (V, bool) {
	if n := c.findS(keyHashS(k), k); n != nil {
		c.touch(n)
		return n.val, true
	}
	var zero V
	return zero, false
}

// getB is get with a byte-slice key (no allocation).
func (c *lru[V]) getB(k []byte) (V, bool) { return c.getH(keyHash(k), k) }

// getH is getB with the key's hash (keyHash) precomputed.
func (c *lru[V]) getH(h uint64, k []byte) (V, bool) {
	if n := c.find(h, k); n != nil {
		c.touch(n)
		return n.val, true
	}
	var zero V
	return zero, false
}

// lookupH is getH returning the entry itself (touched), so that the
// caller can update its value without a second lookup; nil if absent.
func (c *lru[V]) lookupH(h uint64, k []byte) *lruNode[V] {
	n := c.find(h, k)
	if n != nil {
		c.touch(n)
	}
	return n
}

// setB updates an existing key (byte-slice key, no allocation) and
// reports whether it existed.
func (c *lru[V]) setB(k []byte, v V) bool { return c.setH(keyHash(k), k, v) }

func (c *lru[V]) setH(h uint64, k []byte, v V) bool {
	n := c.find(h, k)
	if n == nil {
		return false
	}
	n.val = v
	c.touch(n)
	return true
}

func (c *lru[V]) put(k string, v V) { c.putH(keyHashS(k), k, v) }

// putH is put with the key's hash precomputed.
func (c *lru[V]) putH(h uint64, k string, v V) {
	if n := c.findS(h, k); n != nil {
		n.val = v
		c.touch(n)
		return
	}
	n := &lruNode[V]{key: k, h: h, val: v, chain: c.m[h]}
	c.m[h] = n
	c.pushFront(n)
	c.n++
	for c.max > 0 && c.n > c.max {
		c.remove(c.tail)
		c.evicted++
		if c.onEvict != nil {
			c.onEvict()
		}
	}
}

func (c *lru[V]) del(k string) {
	if n := c.findS(keyHashS(k), k); n != nil {
		c.remove(n)
	}
}

// delH is del with a byte-slice key and its hash.
func (c *lru[V]) delH(h uint64, k []byte) {
	if n := c.find(h, k); n != nil {
		c.remove(n)
	}
}

func (c *lru[V]) len() int { return c.n }

// each visits entries from oldest to newest.
func (c *lru[V]) each(f func(k string, v V)) {
	for n := c.tail; n != nil; n = n.prev {
		f(n.key, n.val)
	}
}
